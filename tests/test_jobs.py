import threading
import time

import pytest

from cce_demo.checkpoints import RunWriter
from cce_demo.jobs import MAX_STEP_POINTS, JobManager, QueueFullError, UnknownJobError


def wait_until(manager, job_id, predicate, timeout=60.0):
    """Wait on the manager's change notifications (no sleeps) until `predicate(snapshot)` holds."""
    deadline = time.monotonic() + timeout
    version = -1
    while True:
        snapshot = manager.wait_for_change(job_id, version, timeout=max(0.0, deadline - time.monotonic()))
        if predicate(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last snapshot status {snapshot.status}")
        version = snapshot.version


@pytest.fixture
def manager(tmp_path):
    manager = JobManager(tmp_path / "runs", allow_download=False, max_queue=2, worker_niceness=0)
    yield manager
    manager.shutdown()


@pytest.fixture
def long_config(tiny_config):
    # Enough steps that it is still running when the test acts on it.
    return tiny_config.replace(epochs=200)


def test_submit_to_done_writes_a_run_directory(manager, tiny_config):
    job_id = manager.submit(tiny_config)
    snapshot = manager.wait(job_id, timeout=120)
    assert snapshot.status == "done" and snapshot.progress == 1.0
    assert (manager.runs_dir / job_id / "run.json").exists()
    assert len(snapshot.epochs) == tiny_config.epochs and set(snapshot.latest) == {"ce", "cce"}
    assert snapshot.comparisons[0]["other"] == "cce" and snapshot.steps[-1]["losses"].keys() == {"ce", "cce"}
    assert snapshot.class_counts and snapshot.version > 1


def test_cancel_while_running_stops_within_a_second(manager, long_config):
    job_id = manager.submit(long_config)
    wait_until(manager, job_id, lambda s: s.status == "running" and len(s.steps) > 0)
    started = time.monotonic()
    assert manager.cancel(job_id)
    snapshot = manager.wait(job_id, timeout=30)
    latency = time.monotonic() - started
    assert snapshot.status == "cancelled", snapshot.error
    assert latency < 1.0, f"stop took {latency:.2f} s"
    from cce_demo.checkpoints import load_models, read_run

    record = read_run(manager.runs_dir / job_id)
    assert record.status == "cancelled"
    assert set(load_models(record)) == {"ce", "cce"}  # what was trained so far is kept


def test_cancel_while_queued(manager, long_config, tiny_config):
    first = manager.submit(long_config)
    second = manager.submit(tiny_config)
    assert manager.snapshot(second).status == "queued"
    assert manager.cancel(second)
    snapshot = manager.snapshot(second)
    assert snapshot.status == "cancelled" and snapshot.queue_position is None and snapshot.run_dir is None
    manager.cancel(first)
    assert manager.wait(first, timeout=30).status == "cancelled"
    assert not manager.cancel(first)  # already finished


def test_failures_are_isolated(manager, tiny_config):
    diverging = manager.submit(tiny_config.replace(learning_rate=1e6, epochs=3))
    missing_data = manager.submit(tiny_config.replace(dataset="cifar10"))
    diverged = manager.wait(diverging, timeout=120)
    assert diverged.status == "failed" and "learning rate" in diverged.error
    failed = manager.wait(missing_data, timeout=120)
    assert failed.status == "failed" and "not available" in failed.error
    healthy = manager.submit(tiny_config)
    assert manager.wait(healthy, timeout=120).status == "done"


def test_a_raising_job_fails_and_the_worker_goes_on(manager, tiny_config, monkeypatch):
    from cce_demo import jobs

    calls = {"count": 0}
    real = jobs.train_paired

    def explode_once(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 1:
            raise RuntimeError("simulated crash inside training")
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "train_paired", explode_once)
    broken = manager.submit(tiny_config)
    fine = manager.submit(tiny_config)
    snapshot = manager.wait(broken, timeout=60)
    assert snapshot.status == "failed" and "simulated crash" in snapshot.error
    assert manager.wait(fine, timeout=120).status == "done"


def test_full_queue_refuses_clearly_and_starts_nothing(manager, long_config):
    running = manager.submit(long_config)
    wait_until(manager, running, lambda s: s.status == "running")
    queued = [manager.submit(long_config) for _ in range(2)]
    before = len(manager.list_jobs())
    with pytest.raises(QueueFullError, match="queue is full"):
        manager.submit(long_config)
    assert len(manager.list_jobs()) == before
    assert [manager.snapshot(job_id).queue_position for job_id in queued] == [1, 2]
    for job_id in [running, *queued]:
        manager.cancel(job_id)


def test_restart_lists_finished_and_interrupted_runs(tmp_path, tiny_config):
    runs = tmp_path / "runs"
    first = JobManager(runs, allow_download=False)
    done_id = first.submit(tiny_config)
    assert first.wait(done_id, timeout=120).status == "done"
    first.shutdown()
    # A run another process left "running" when it died.
    writer = RunWriter(runs, tiny_config, "crashed-run")
    import json

    metadata = json.loads((writer.run_dir / "run.json").read_text())
    metadata["owner"] = {"token": "dead", "pid": 2**22 + 4321, "start_time": "7"}
    (writer.run_dir / "run.json").write_text(json.dumps(metadata))

    second = JobManager(runs, allow_download=False)
    try:
        restored = second.snapshot(done_id)
        assert restored.status == "done" and len(restored.epochs) == tiny_config.epochs and restored.latest
        assert second.snapshot("crashed-run").status == "interrupted"
        with pytest.raises(UnknownJobError):
            second.snapshot("never-existed")
    finally:
        second.shutdown()


def test_finished_jobs_are_evicted_and_read_back(tmp_path, tiny_config):
    manager = JobManager(tmp_path / "runs", allow_download=False, keep_finished=1)
    try:
        first = manager.submit(tiny_config)
        second = manager.submit(tiny_config.replace(seeds=(1,)))
        live = manager.wait(first, timeout=120)
        manager.wait(second, timeout=120)
        assert first not in {snapshot.job_id for snapshot in manager.list_jobs()}
        from_disk = manager.snapshot(first)
        assert from_disk.status == "done" and from_disk.epochs == live.epochs
    finally:
        manager.shutdown()


def test_concurrent_readers_see_consistent_snapshots(manager, tiny_config):
    job_id = manager.submit(tiny_config.replace(epochs=6))
    problems = []

    def read():
        last_version = -1
        while True:
            snapshot = manager.snapshot(job_id)
            if snapshot.version < last_version:
                problems.append("version went backwards")
            steps = [point["global_step"] for point in snapshot.steps]
            if len(steps) > MAX_STEP_POINTS or steps != sorted(set(steps)):
                problems.append("steps out of order")
            if len(snapshot.epochs) > 0 and snapshot.epochs[-1]["global_step"] > (steps[-1] if steps else 0):
                problems.append("an epoch ahead of its steps")
            last_version = snapshot.version
            if snapshot.is_finished:
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=120)
    assert not problems and manager.snapshot(job_id).status == "done"


def test_step_history_stays_bounded(tmp_path, tiny_config):
    from cce_demo import jobs

    state = jobs._Job("x", tiny_config, "cpu")
    for step in range(1, 10 * MAX_STEP_POINTS):
        state.apply({"kind": "step", "global_step": step, "losses": {}})
    assert len(state.steps) <= MAX_STEP_POINTS
    steps = [point["global_step"] for point in state.steps]
    assert steps == sorted(steps) and steps[0] == 1


def test_invalid_submissions(manager, tiny_config, tmp_path):
    with pytest.raises(ValueError, match="TrainConfig"):
        manager.submit({"epochs": 3})
    with pytest.raises(ValueError, match="imbalance_ratio"):  # no class would keep an image: refused at submit
        manager.submit(tiny_config.replace(imbalance_ratio=100.0))
    with pytest.raises(ValueError, match="max_queue"):
        JobManager(tmp_path / "other", max_queue=0)


def test_queued_jobs_see_their_position_move(manager, long_config, tiny_config):
    running = manager.submit(long_config)
    wait_until(manager, running, lambda s: s.status == "running")
    first, second = manager.submit(tiny_config), manager.submit(tiny_config)
    before = manager.snapshot(second)
    assert before.queue_position == 2
    manager.cancel(first)
    after = manager.snapshot(second)
    assert after.queue_position == 1 and after.version > before.version  # a redraw is due
    manager.cancel(second)
    manager.cancel(running)


def test_jobs_cancelled_before_starting_still_answer_after_eviction(tmp_path, long_config, tiny_config):
    manager = JobManager(tmp_path / "runs", allow_download=False, keep_finished=1, max_queue=4, worker_niceness=0)
    try:
        first = manager.submit(long_config)
        queued = [manager.submit(tiny_config) for _ in range(3)]
        for job_id in queued:
            manager.cancel(job_id)
        manager.cancel(first)
        manager.wait(first, timeout=30)
        for job_id in queued:  # evicted from memory, never had a run directory
            assert manager.snapshot(job_id).status == "cancelled"
            assert manager.cancel(job_id) is False
    finally:
        manager.shutdown()
