"""Where the app keeps its runs: a folder the operator names, a Space's or a volume's persistent storage, or the
app's own runs/ folder; whether the runs there survive a restart of the app or its container; and the one
sentence that says so, for the server log (with the full path) and for visitors (without any server path).
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

# The app's own folder (the repository or the image's /app): its runs/ folder is the default.
APP_ROOT = Path(__file__).resolve().parent.parent
# Where Hugging Face Spaces mount persistent storage once it is turned on (Settings -> Persistent storage).
PERSISTENT_STORAGE = Path("/data")
# A part of a runs-location sentence for the server log only: " (the folder: /tmp/...)".
SERVER_ONLY_START = " (the folder: "
# An absolute folder as the runs-location sentences write one (up to a comma, space or closing bracket).
ABSOLUTE_FOLDER = re.compile(r"(/[^\s,()]+[^\s,().:])")


@dataclass(frozen=True)
class RunsLocation:
    """Where the app keeps its runs, and whether they survive a restart of the app (or of its container)."""

    path: Path
    survives_restart: bool
    description: str  # one sentence for the server log and the public-mode panel

    @property
    def visitor_description(self) -> str:
        """The sentence as visitors see it (Runs tab, public-mode panel): the server's own folders are named as
        "the runs folder" or by their path inside the app, never by an absolute path."""
        text = re.sub(re.escape(SERVER_ONLY_START) + r"[^)]*\)", "", self.description)
        for folder in sorted({self.path, *(Path(part) for part in ABSOLUTE_FOLDER.findall(text))}, key=lambda path: -len(str(path))):
            if folder == PERSISTENT_STORAGE or PERSISTENT_STORAGE in folder.parents:
                continue  # the documented mount point of persistent storage (/data), the same on every host
            if folder.is_relative_to(APP_ROOT):
                name = f"the app's {folder.relative_to(APP_ROOT).as_posix()}/ folder"
            else:
                name = "the runs folder" if folder == self.path else "the configured runs folder"
            text = text.replace(str(folder), name)
        return text

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path) or not self.path.is_absolute():
            raise ValueError(f"path: expected an absolute Path, got {self.path!r}")
        if not self.description:
            raise ValueError("description: expected a sentence, got an empty string")


def is_mount_point(path: Path) -> bool:
    """Whether `path` is where a file system is mounted: a Space's persistent storage, a Docker volume. A bind
    mount from the same file system is not seen by os.path.ismount, so /proc/self/mountinfo is asked too.
    A mere folder of that name (the Docker image creates an empty /data, owned by the app's user, so that a
    volume mounted there is writable) is not persistent storage."""
    if os.path.ismount(path):
        return True
    try:
        mount_points = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines() if len(line.split()) > 4}
    except OSError:
        return False
    return str(path) in mount_points


def _writable(folder: Path) -> str | None:
    """None if the app can create `folder` and write in it, else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        return None
    except OSError as error:
        return str(error)


def running_in_container() -> bool:
    """Whether this process runs in a Docker (or Podman) container: both engines leave a marker file at the
    root of the container's file system."""
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def _on_a_mount(path: Path, is_mounted: Callable[[Path], bool]) -> bool:
    """Whether `path` lies on a file system mounted into the container (a volume or bind mount), not on the
    container's own disk."""
    return any(is_mounted(folder) for folder in (path, *path.parents) if folder != Path(folder.anchor))


def choose_runs_location(
    environ: Mapping[str, str] = os.environ,
    persistent_storage: Path = PERSISTENT_STORAGE,
    default: Path = APP_ROOT / "runs",
    is_mounted: Callable[[Path], bool] = is_mount_point,
    in_container: Callable[[], bool] = running_in_container,
) -> RunsLocation:
    """CCE_RUNS_DIR if set; else /data/runs where persistent storage is mounted at /data and writable; else
    ./runs. A folder that cannot be written is replaced by a temporary one (lost on restart), with a warning.
    On a Space (SPACE_ID set) only persistent storage survives a restart: the container's disk is fresh each
    time. In a container, only a folder on a mounted volume outlives it: a new container (and `docker run
    --rm` at every stop) starts from the image's disk. Elsewhere, a folder on this machine's disk does."""
    on_space = bool(environ.get("SPACE_ID"))
    storage_mounted = is_mounted(persistent_storage)
    explicit = environ.get("CCE_RUNS_DIR")
    if explicit:
        wanted = Path(explicit).absolute()
    elif storage_mounted and (storage_problem := _writable(persistent_storage / "runs")) is None:
        wanted = persistent_storage / "runs"
    else:
        wanted = default.absolute()
    problem = _writable(wanted)
    if problem is not None:
        fallback = Path(tempfile.mkdtemp(prefix="cce_demo_runs_"))
        logging.getLogger("cce_demo").warning("runs directory %s is not writable (%s); using %s", wanted, problem, fallback)
        return RunsLocation(fallback, False, f"Runs are kept in a temporary folder because {wanted} cannot be written: "
                                             f"they are lost when the app restarts{SERVER_ONLY_START}{fallback}).")
    on_storage = storage_mounted and wanted.is_relative_to(persistent_storage)
    if storage_mounted and not explicit and not on_storage:
        # Storage is there but refused us (a root-owned bind mount, a read-only volume): say so, not "mount one".
        survives = not on_space and not in_container()  # ./runs on this machine's own disk
        return RunsLocation(wanted, survives, f"Runs are kept in {wanted}, not on the storage mounted at {persistent_storage}, "
                                           f"which this app (uid {os.getuid()}) cannot write ({storage_problem}): make "
                                           f"{persistent_storage} writable for it to keep runs across restarts.")
    if on_storage:
        return RunsLocation(wanted, True, f"Runs are kept in {wanted}, on the persistent storage mounted at "
                                          f"{persistent_storage}: they survive restarts (the retention limits still apply).")
    if on_space:
        return RunsLocation(wanted, False, f"Runs are kept in {wanted}, inside this Space's container, which a restart "
                                           "wipes: download the runs you want to keep, or turn on the Space's persistent "
                                           f"storage (runs then go to {persistent_storage / 'runs'}).")
    if in_container() and not _on_a_mount(wanted, is_mounted):
        return RunsLocation(wanted, False, f"Runs are kept in {wanted}, on this container's own disk: they are lost "
                                           "when the container is removed (docker run --rm removes it when it stops). "
                                           f"Mount a volume at {persistent_storage} to keep them (runs then go to "
                                           f"{persistent_storage / 'runs'}).")
    return RunsLocation(wanted, True, f"Runs are kept in {wanted}, on this machine's disk: they survive restarts.")
