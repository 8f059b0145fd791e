"""Bounded disk: small fake run directories (valid run.json from RunWriter) with controlled ages and sizes."""
import json

import pytest

from cce_demo.run_directory import RunWriter, list_runs
from cce_demo.config import TrainConfig
from cce_demo.retention import REMOVING_PREFIX, apply_retention, choose_removals, runs_on_disk

CONFIG = TrainConfig(dataset="synthetic", device="cpu")


def make_run(runs_dir, run_id, minute, size_bytes=0, status="done"):
    """A finished run created at 12:<minute>, with a payload file of `size_bytes`."""
    writer = RunWriter(runs_dir, CONFIG, run_id)
    writer.metadata.update(status=status, created_at=f"2026-01-01T12:{minute:02d}:00+0000")
    writer._write_metadata()
    (writer.run_dir / "payload.bin").write_bytes(b"x" * size_bytes)
    return writer.run_dir


def remaining(runs_dir):
    return sorted(path.name for path in runs_dir.iterdir())


def test_keeps_the_newest_runs(tmp_path):
    for minute in range(5):
        make_run(tmp_path, f"run-{minute}", minute)
    assert apply_retention(tmp_path, keep_runs=2, max_runs_mb=None) == ["run-0", "run-1", "run-2"]
    assert remaining(tmp_path) == ["run-3", "run-4"]
    assert apply_retention(tmp_path, keep_runs=2, max_runs_mb=None) == []  # already within the bound


def test_a_pass_stops_between_removals_when_asked(tmp_path):
    for minute in range(5):
        make_run(tmp_path, f"run-{minute}", minute)
    asked = []

    def stop_after_two():  # read before each removal: the third read says stop
        asked.append(True)
        return len(asked) > 2

    assert apply_retention(tmp_path, keep_runs=1, max_runs_mb=None, should_stop=stop_after_two) == ["run-0", "run-1"]
    assert remaining(tmp_path) == ["run-2", "run-3", "run-4"]  # whole runs only: nothing half removed
    assert apply_retention(tmp_path, keep_runs=1, max_runs_mb=None) == ["run-2", "run-3"]  # the next pass finishes


def test_size_bound_removes_the_oldest_first(tmp_path):
    for minute in range(4):
        make_run(tmp_path, f"run-{minute}", minute, size_bytes=400_000)
    # Four runs of ~0.4 MB each; 1 MB leaves room for two.
    assert apply_retention(tmp_path, keep_runs=None, max_runs_mb=1.0) == ["run-0", "run-1"]
    assert remaining(tmp_path) == ["run-2", "run-3"]


def test_running_queued_and_live_runs_are_never_removed(tmp_path):
    make_run(tmp_path, "old-protected", 0)
    make_run(tmp_path, "old", 1)
    live = make_run(tmp_path, "live-elsewhere", 2)
    metadata = json.loads((live / "run.json").read_text())
    metadata["status"] = "running"  # owned by this very process, so read_run sees it as alive
    (live / "run.json").write_text(json.dumps(metadata))
    make_run(tmp_path, "new", 3)
    assert apply_retention(tmp_path, keep_runs=1, max_runs_mb=None, protected_ids={"old-protected"}) == ["old"]
    assert remaining(tmp_path) == ["live-elsewhere", "new", "old-protected"]
    # A size bound nothing can meet removes every unprotected run, and still no protected one.
    assert apply_retention(tmp_path, keep_runs=None, max_runs_mb=1e-6, protected_ids={"old-protected"}) == ["new"]
    assert remaining(tmp_path) == ["live-elsewhere", "old-protected"]


def test_an_interrupted_run_is_an_ordinary_old_run(tmp_path):
    dead = make_run(tmp_path, "dead", 0)
    metadata = json.loads((dead / "run.json").read_text())
    metadata.update(status="running", owner={"token": "gone", "pid": 2**22 + 99, "start_time": "1"})
    (dead / "run.json").write_text(json.dumps(metadata))
    make_run(tmp_path, "new", 1)
    assert apply_retention(tmp_path, keep_runs=1, max_runs_mb=None) == ["dead"]


def test_unknown_and_invalid_directories_are_left_alone(tmp_path):
    for minute in range(3):
        make_run(tmp_path, f"run-{minute}", minute)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "big.bin").write_bytes(b"x" * 2_000_000)  # not a run: not counted, not removed
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "run.json").write_text("{not json")
    (tmp_path / "loose-file.txt").write_text("hello")
    renamed = make_run(tmp_path, "original-name", 0)
    renamed.rename(tmp_path / "renamed-copy")  # run.json names another run: not this directory's to manage
    (tmp_path / "link").symlink_to(tmp_path / "run-0")
    removed = apply_retention(tmp_path, keep_runs=1, max_runs_mb=1.0)
    assert removed == ["run-0", "run-1"]
    assert remaining(tmp_path) == ["corrupt", "link", "loose-file.txt", "notes", "renamed-copy", "run-2"]


def test_no_limits_remove_nothing_and_leftovers_are_cleaned(tmp_path):
    for minute in range(3):
        make_run(tmp_path, f"run-{minute}", minute, size_bytes=10)
    leftover = tmp_path / f"{REMOVING_PREFIX}run-x-abc123"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"partial")
    assert apply_retention(tmp_path, keep_runs=None, max_runs_mb=None) == []
    assert remaining(tmp_path) == ["run-0", "run-1", "run-2"]
    assert apply_retention(tmp_path / "missing", keep_runs=1, max_runs_mb=None) == []


def test_removed_runs_vanish_from_listings(tmp_path):
    for minute in range(3):
        make_run(tmp_path, f"run-{minute}", minute)
    apply_retention(tmp_path, keep_runs=1, max_runs_mb=None)
    records, problems = list_runs([tmp_path])
    assert [record.run_id for record in records] == ["run-2"] and not problems


def test_choose_removals_counts_protected_runs_towards_the_bounds(tmp_path):
    make_run(tmp_path, "a", 0, size_bytes=300_000)
    make_run(tmp_path, "b", 1, size_bytes=300_000)
    make_run(tmp_path, "c", 2, size_bytes=300_000)
    runs = runs_on_disk(tmp_path, protected_ids={"c"})
    assert [run.run_id for run in runs] == ["c", "b", "a"] and runs[0].protected
    # The protected newest run fills the one slot and most of the 0.5 MB: both older runs go.
    assert [run.run_id for run in choose_removals(runs, keep_runs=1, max_runs_mb=None)] == ["a", "b"]
    assert [run.run_id for run in choose_removals(runs, keep_runs=None, max_runs_mb=0.5)] == ["a", "b"]
    assert [run.run_id for run in choose_removals(runs, keep_runs=None, max_runs_mb=0.7)] == ["a"]


@pytest.mark.parametrize("keep_runs", [1, 3])
def test_ties_in_creation_time_are_broken_by_id(tmp_path, keep_runs):
    for name in ("x", "y", "z", "w"):
        make_run(tmp_path, name, 5)
    removed = apply_retention(tmp_path, keep_runs=keep_runs, max_runs_mb=None)
    assert removed == ["w", "x", "y", "z"][: 4 - keep_runs]


# ---------------------------------------------------------------- issue 18: who decides what is newest


def test_an_imported_run_counts_from_when_the_server_received_it(tmp_path):
    """A run dated 2099 by its uploader was always the newest, so other visitors' runs went first."""
    make_run(tmp_path, "a-old", 1)
    make_run(tmp_path, "b-mine", 3)
    future = make_run(tmp_path, "c-future", 2)
    metadata = json.loads((future / "run.json").read_text())
    metadata.update(created_at="2099-01-01T00:00:00+0000", imported={"imported_at": "2026-01-01T12:02:00+0000"})
    (future / "run.json").write_text(json.dumps(metadata))
    assert [run.run_id for run in runs_on_disk(tmp_path)] == ["b-mine", "c-future", "a-old"]
    assert apply_retention(tmp_path, keep_runs=2, max_runs_mb=None) == ["a-old"]
    assert apply_retention(tmp_path, keep_runs=1, max_runs_mb=None) == ["c-future"]


def test_imports_within_one_second_are_ordered_by_when_they_arrived(tmp_path):
    """Imports stamped to the whole second tied, the tie fell back to the run id, and a run just received
    under a reused low id ("-imported-1") sorted as the oldest: it was protected, so nothing was removed
    and the directory grew past its bound (seen in CI)."""
    from cce_demo.retention import received_stamp

    for run_id, microsecond in (("z-imported-3", 100), ("y-imported-2", 200), ("x-imported-1", 300)):
        run_dir = make_run(tmp_path, run_id, 1)
        metadata = json.loads((run_dir / "run.json").read_text())
        metadata["imported"] = {"imported_at": f"2026-01-01T12:01:07.{microsecond:06d}+0000"}
        (run_dir / "run.json").write_text(json.dumps(metadata))
    assert [run.run_id for run in runs_on_disk(tmp_path)] == ["x-imported-1", "y-imported-2", "z-imported-3"]
    assert apply_retention(tmp_path, keep_runs=2, max_runs_mb=None, protected_ids={"x-imported-1"}) == ["z-imported-3"]
    assert "." in received_stamp()  # the stamp written by import carries the fraction of a second


def test_disk_rules_say_when_a_new_run_cannot_fit(tmp_path):
    from cce_demo.retention import DiskRules

    make_run(tmp_path, "busy", 1, size_bytes=400_000, status="running")
    make_run(tmp_path, "old", 2, size_bytes=400_000)
    runs = runs_on_disk(tmp_path)
    assert DiskRules(keep_runs=2).room_for(runs, 10) is None  # "old" can make room
    assert "already holds 1 runs that are training" in DiskRules(keep_runs=1).room_for(runs, 10)
    assert DiskRules(max_runs_mb=1.0).room_for(runs, 500_000) is None
    assert "does not fit beside the runs that are training" in DiskRules(max_runs_mb=1.0).room_for(runs, 700_000)
    assert "more than the 1 MB kept" in DiskRules(max_runs_mb=1.0).room_for(runs, 2_000_000)
    assert not DiskRules().bounded and DiskRules().room_for(runs, 10**12) is None


def test_a_failed_removal_leaves_no_empty_run_folder(tmp_path, monkeypatch):
    """Delete and retention hide a run with one rename first: a failing rmtree leaves only a hidden leftover."""
    from cce_demo import retention

    run = make_run(tmp_path, "to-delete", 1)
    rmtree = retention.shutil.rmtree
    monkeypatch.setattr(retention.shutil, "rmtree", lambda *args, **kwargs: None)  # the removal "fails"
    retention.remove_run(run)
    assert not run.exists() and list_runs([tmp_path]) == ([], [])
    monkeypatch.setattr(retention.shutil, "rmtree", rmtree)
    apply_retention(tmp_path, None, None)  # the next pass finishes it
    assert list(tmp_path.iterdir()) == []
