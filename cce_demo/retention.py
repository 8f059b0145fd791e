"""Bounded disk: remove the oldest runs of a runs directory beyond a count and/or a total size.

Only valid run directories (a readable run.json whose run id is the folder's name) are counted and removed;
anything else in the folder is left alone, since it is not ours to judge. Runs are ordered by when this
server received them (`received_at`), never by a date an uploader could write: an imported run dated 2099
must not count as the newest and push everyone else's runs out. Runs that are queued or running in
this app (`protected_ids`) and runs another live process is writing are never removed. Shipped runs live in
another directory, which is never passed here.
"""
from __future__ import annotations

import datetime
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .run_directory import METADATA_FILE, RunCorruptError, read_run
from .status import JobStatus

MEGABYTE = 1_000_000
# A run being removed is first renamed to a hidden name (list_runs skips names starting with "."), so a
# reader never sees half a run; leftovers of an interrupted removal are finished off on the next pass.
REMOVING_PREFIX = ".removing-"
# Deleted from the Runs tab: kept under a hidden name for TRASH_SECONDS, so the person can undo it, then removed
# by the next retention pass. ".trash-<deleted at, epoch seconds>-<token>-<run id>".
TRASH_PREFIX = ".trash-"
TRASH_SECONDS = 600


@dataclass(frozen=True)
class DiskRules:
    """The bounds of a runs directory (budget.Limits' keep_runs and max_runs_mb; None: no bound)."""

    keep_runs: int | None = None
    max_runs_mb: float | None = None

    @property
    def bounded(self) -> bool:
        return self.keep_runs is not None or self.max_runs_mb is not None

    def room_for(self, runs: "list[RunOnDisk]", new_bytes: int) -> str | None:
        """Why a new run of `new_bytes` cannot be added to `runs` and stay within the bounds once retention
        has removed what it may (only unprotected runs), or None when it can. Pure."""
        protected = [run for run in runs if run.protected]
        if self.keep_runs is not None and len(protected) >= self.keep_runs:
            return (f"the runs directory already holds {len(protected)} runs that are training (at most "
                    f"{self.keep_runs} runs are kept here); try again when they have finished")
        if self.max_runs_mb is not None:
            limit = self.max_runs_mb * MEGABYTE
            if new_bytes > limit:
                return f"this run is {new_bytes / MEGABYTE:.1f} MB, more than the {self.max_runs_mb:g} MB kept for runs here"
            held = sum(run.size_bytes for run in protected)
            if held + new_bytes > limit:
                return (f"this run ({new_bytes / MEGABYTE:.1f} MB) does not fit beside the runs that are training "
                        f"({held / MEGABYTE:.1f} MB of the {self.max_runs_mb:g} MB kept for runs here)")
        return None


@dataclass(frozen=True)
class RunOnDisk:
    run_id: str
    path: Path
    created: float  # seconds since the epoch
    size_bytes: int
    protected: bool


def directory_size(path: Path) -> int:
    """Bytes of the regular files under `path`, symbolic links not followed."""
    total = 0
    for root, _, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                status = os.lstat(os.path.join(root, name))
            except OSError:  # removed meanwhile
                continue
            total += status.st_size
    return total


STAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")


def received_stamp() -> str:
    """Now, to the microsecond: several imports can arrive within one second, and retention must still know
    which came last (with whole seconds, a tie fell back to the run id, and the run just received could
    sort as the oldest)."""
    return datetime.datetime.now().astimezone().strftime(STAMP_FORMATS[0])


def _timestamp(text: object) -> float | None:
    for stamp_format in STAMP_FORMATS:
        try:
            return datetime.datetime.strptime(str(text), stamp_format).timestamp()
        except ValueError:
            continue
    return None


def received_at(metadata: dict, path: Path | None = None) -> float:
    """When this server received the run: an import's `imported.imported_at` (written here by transfer.py,
    which replaces whatever the upload said), else its `created_at` (written here by the trainer, so an
    imported run's own created_at is never used), else run.json's modification time (0 without a path)."""
    imported = metadata.get("imported")
    stamp = _timestamp(imported.get("imported_at")) if isinstance(imported, dict) else _timestamp(metadata.get("created_at"))
    if stamp is not None:
        return stamp
    try:
        return (path / METADATA_FILE).stat().st_mtime if path is not None else 0.0
    except OSError:
        return 0.0


def _created(metadata: dict, path: Path) -> float:
    return received_at(metadata, path)


def runs_on_disk(runs_dir: Path, protected_ids: Iterable[str] = ()) -> list[RunOnDisk]:
    """The valid runs directly under `runs_dir`, newest first."""
    protected_ids = set(protected_ids)
    runs = []
    for path in sorted(Path(runs_dir).iterdir()) if Path(runs_dir).is_dir() else ():
        if path.name.startswith(".") or path.is_symlink() or not path.is_dir():
            continue
        try:
            record = read_run(path)
        except (RunCorruptError, OSError):
            continue
        if record.run_id != path.name:  # a copied or renamed folder: not a run this directory owns
            continue
        # read_run reports "running" only while the owning process lives (this app or another one).
        busy = record.status == JobStatus.RUNNING or path.name in protected_ids
        runs.append(RunOnDisk(path.name, path, _created(record.metadata, path), directory_size(path), busy))
    runs.sort(key=lambda run: (run.created, run.run_id), reverse=True)
    return runs


def choose_removals(runs: list[RunOnDisk], keep_runs: int | None, max_runs_mb: float | None) -> list[RunOnDisk]:
    """Which runs (given newest first) to remove, oldest first: every unprotected run past the newest
    `keep_runs`, then more of the oldest unprotected ones while the total is over `max_runs_mb`. Protected
    runs count towards both bounds but are never chosen. Pure."""
    chosen: list[RunOnDisk] = []
    if keep_runs is not None:
        chosen = [run for run in runs[keep_runs:] if not run.protected]
    if max_runs_mb is not None:
        total = sum(run.size_bytes for run in runs) - sum(run.size_bytes for run in chosen)
        for run in reversed(runs):  # oldest first
            if total <= max_runs_mb * MEGABYTE:
                break
            if not run.protected and run not in chosen:
                chosen.append(run)
                total -= run.size_bytes
    return sorted(chosen, key=lambda run: (run.created, run.run_id))


def remove_run(path: Path) -> None:
    """Hide the run under a temporary name in one rename, then delete it. The rename is atomic: readers see
    the whole run or nothing, and a delete that fails half-way leaves only a hidden leftover that the next
    retention pass finishes (never an empty folder that lists as an unreadable run)."""
    hidden = path.with_name(f"{REMOVING_PREFIX}{path.name}-{secrets.token_hex(3)}")
    os.rename(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def move_to_trash(path: Path, now: float | None = None) -> str:
    """Hide the run in one atomic rename (readers see it whole or not at all) and return the token that
    `restore_from_trash` takes to put it back. It stays restorable for TRASH_SECONDS."""
    deleted_at = int(time.time() if now is None else now)
    token = f"{deleted_at}-{secrets.token_hex(4)}"
    os.rename(path, path.with_name(f"{TRASH_PREFIX}{token}-{path.name}"))
    return token


def _trashed(runs_dir: Path, token: str) -> Path | None:
    if not re.fullmatch(r"\d+-[0-9a-f]{8}", token or ""):
        return None
    matches = [path for path in runs_dir.glob(f"{TRASH_PREFIX}{token}-*") if path.is_dir() and not path.is_symlink()]
    return matches[0] if matches else None


def restore_from_trash(runs_dir: str | os.PathLike, token: str) -> str:
    """Put a deleted run back under its own id and return the id. Raises FileNotFoundError when the trash no
    longer holds it (its time ran out) and FileExistsError when a run of that id was made meanwhile."""
    runs_dir = Path(runs_dir)
    trashed = _trashed(runs_dir, token)
    if trashed is None:
        raise FileNotFoundError(f"the deleted run is no longer in the trash (runs stay there {TRASH_SECONDS // 60} minutes)")
    run_id = trashed.name[len(TRASH_PREFIX) + len(token) + 1:]
    target = runs_dir / run_id
    if target.exists():
        raise FileExistsError(f"a run named {run_id} exists again; the deleted one cannot take its place")
    os.rename(trashed, target)
    return run_id


def empty_trash(runs_dir: str | os.PathLike, max_age_seconds: float = TRASH_SECONDS, now: float | None = None) -> list[str]:
    """Remove the runs deleted more than `max_age_seconds` ago; returns their ids."""
    runs_dir, now = Path(runs_dir), time.time() if now is None else now
    removed = []
    for path in runs_dir.glob(f"{TRASH_PREFIX}*") if runs_dir.is_dir() else ():
        match = re.fullmatch(re.escape(TRASH_PREFIX) + r"(\d+)-[0-9a-f]{8}-(.+)", path.name)
        if match is None or not path.is_dir() or path.is_symlink() or now - int(match.group(1)) < max_age_seconds:
            continue
        remove_run(path)
        removed.append(match.group(2))
    return removed


def apply_retention(
    runs_dir: str | os.PathLike,
    keep_runs: int | None,
    max_runs_mb: float | None,
    protected_ids: Iterable[str] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Keep the newest `keep_runs` runs and at most `max_runs_mb` megabytes of runs in `runs_dir` (None: no
    bound); returns the ids removed, oldest first. Never removes a protected or live run, nor anything that
    is not a valid run directory. `should_stop` is read before each removal, so that a shutdown need not wait
    for a long pass: every removal is whole or not begun, and the next pass finishes the job."""
    runs_dir = Path(runs_dir)
    empty_trash(runs_dir)
    for leftover in runs_dir.glob(f"{REMOVING_PREFIX}*") if runs_dir.is_dir() else ():
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
    if keep_runs is None and max_runs_mb is None:
        return []
    removed = []
    for run in choose_removals(runs_on_disk(runs_dir, protected_ids), keep_runs, max_runs_mb):
        if should_stop():
            break
        try:
            remove_run(run.path)
        except FileNotFoundError:  # removed by someone else meanwhile
            continue
        removed.append(run.run_id)
    return removed
