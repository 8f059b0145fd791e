"""Where the app keeps its runs (runs_location.choose_runs_location): CCE_RUNS_DIR, else persistent storage mounted at
/data (a Space with persistent storage, a Docker volume), else ./runs; and whether they survive a restart."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from cce_demo import runs_location  # noqa: E402


def mounted(path: Path) -> bool:
    return True


def not_mounted(path: Path) -> bool:
    return False


def no_container() -> bool:
    return False


def container() -> bool:
    return True


@pytest.fixture
def storage(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_persistent_storage_is_the_default_when_mounted(tmp_path, storage):
    for environ in ({}, {"SPACE_ID": "someone/cce-demo"}):
        location = runs_location.choose_runs_location(environ, storage, tmp_path / "app" / "runs", mounted, no_container)
        assert location.path == storage / "runs" and location.path.is_dir() and location.survives_restart
        assert "persistent storage" in location.description and "retention limits still apply" in location.description


def test_cce_runs_dir_overrides_persistent_storage(tmp_path, storage):
    chosen = tmp_path / "elsewhere"
    location = runs_location.choose_runs_location({"CCE_RUNS_DIR": str(chosen)}, storage, tmp_path / "app" / "runs", mounted, no_container)
    assert location.path == chosen and location.survives_restart  # a folder on this machine's disk
    on_space = runs_location.choose_runs_location({"CCE_RUNS_DIR": str(chosen), "SPACE_ID": "x/y"}, storage, tmp_path / "r", mounted, no_container)
    assert on_space.path == chosen and not on_space.survives_restart  # outside /data a Space forgets it
    inside = runs_location.choose_runs_location({"CCE_RUNS_DIR": str(storage / "mine"), "SPACE_ID": "x/y"}, storage, tmp_path / "r", mounted, no_container)
    assert inside.path == storage / "mine" and inside.survives_restart


def test_a_folder_named_data_is_not_persistent_storage(tmp_path, storage):
    # The Docker image creates an empty /data for volumes to inherit its owner; without a volume it is just
    # the container's disk, so the runs stay in ./runs.
    default = tmp_path / "app" / "runs"
    location = runs_location.choose_runs_location({}, storage, default, not_mounted, no_container)
    assert location.path == default and location.survives_restart and not (storage / "runs").exists()
    on_space = runs_location.choose_runs_location({"SPACE_ID": "x/y"}, storage, default, not_mounted, no_container)
    assert on_space.path == default and not on_space.survives_restart
    assert "turn on the Space's persistent storage" in on_space.description and "download" in on_space.description


def test_a_container_without_a_volume_says_its_runs_are_lost_with_it(tmp_path, storage):
    # `docker run --rm IMAGE` with no volume: the runs live on the container's own disk.
    default = tmp_path / "app" / "runs"
    location = runs_location.choose_runs_location({}, storage, default, not_mounted, container)
    assert location.path == default and not location.survives_restart
    assert "lost when the container is removed" in location.description and f"volume at {storage}" in location.description
    # A volume mounted at /data takes the runs, and they outlive the container.
    on_volume = runs_location.choose_runs_location({}, storage, default, mounted, container)
    assert on_volume.path == storage / "runs" and on_volume.survives_restart
    # CCE_RUNS_DIR on some other mounted folder (a bind mount) outlives the container too.
    bind = tmp_path / "bind"
    chosen = bind / "runs"
    on_bind = runs_location.choose_runs_location({"CCE_RUNS_DIR": str(chosen)}, storage, default, lambda path: path == bind, container)
    assert on_bind.path == chosen and on_bind.survives_restart


def test_storage_that_cannot_be_written_is_passed_over_and_named(tmp_path):
    blocked = tmp_path / "data"
    blocked.write_text("a file where the storage folder should be")  # mkdir data/runs fails, as unwritable
    default = tmp_path / "app" / "runs"
    for in_container in (no_container, container):
        location = runs_location.choose_runs_location({}, blocked, default, mounted, in_container)
        assert location.path == default and location.path.is_dir()
        assert location.survives_restart == (in_container is no_container)  # ./runs on this machine's disk does
        assert f"not on the storage mounted at {blocked}" in location.description and "cannot write" in location.description


def test_an_unwritable_runs_folder_falls_back_to_a_temporary_one(tmp_path, storage):
    blocked = tmp_path / "file"
    blocked.write_text("")
    location = runs_location.choose_runs_location({"CCE_RUNS_DIR": str(blocked / "runs")}, storage, tmp_path / "r", not_mounted, no_container)
    assert location.path != blocked / "runs" and location.path.is_dir() and not location.survives_restart
    assert "lost when the app restarts" in location.description


def test_runs_location_is_validated(tmp_path):
    with pytest.raises(ValueError, match="absolute"):
        runs_location.RunsLocation(Path("runs"), True, "a sentence")
    with pytest.raises(ValueError, match="description"):
        runs_location.RunsLocation(tmp_path, True, "")


def test_mount_points_are_recognised(tmp_path):
    assert runs_location.is_mount_point(Path("/"))
    assert not runs_location.is_mount_point(tmp_path)  # a plain folder


def test_visitors_never_see_an_absolute_server_path(tmp_path, storage):
    """The Runs tab and the public-mode panel show `visitor_description`: the runs folder by name (or its path
    inside the app), the documented /data mount point at most; the server log keeps the full sentence."""
    import re

    blocked = tmp_path / "file"
    blocked.write_text("")
    locations = [
        runs_location.choose_runs_location({"CCE_RUNS_DIR": str(blocked / "runs")}, storage, tmp_path / "r", not_mounted, no_container),
        runs_location.choose_runs_location({}, storage, tmp_path / "r", not_mounted, no_container),
        runs_location.choose_runs_location({"SPACE_ID": "me/space"}, storage, tmp_path / "r", not_mounted, no_container),
        runs_location.choose_runs_location({}, storage, runs_location.APP_ROOT / "runs", not_mounted, no_container),
    ]
    for location in locations:
        visitor = location.visitor_description
        assert str(tmp_path) not in visitor and str(runs_location.APP_ROOT) not in visitor, visitor
        assert not re.search(r"(?<![\w.])/(?!data\b)\w[\w.-]*/", visitor), visitor
        assert str(location.path) in location.description  # the operator's log still names it
    assert "the app's runs/ folder" in locations[-1].visitor_description
