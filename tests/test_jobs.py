import os
import threading
import time

import pytest

from cce_demo import jobs
from cce_demo.budget import Limits, ModelCost, calibration
from cce_demo.run_directory import RunWriter, list_runs, load_models, read_run
from cce_demo.config import preset
from cce_demo.jobs import (
    BudgetExceededError, ClientLimitError, JobManager, QueueFullError, UnknownJobError,
)
from cce_demo.run_state import MAX_STEP_POINTS
from cce_demo.schema import EpochMetrics, RunStarted, StepMetrics
from cce_demo.status import JobStatus


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
    assert snapshot.status == JobStatus.DONE and snapshot.progress == 1.0 and snapshot.eta_seconds is None
    assert snapshot.estimate_seconds == manager.estimate(tiny_config).total_seconds > 0
    assert snapshot.estimate_text.startswith("about ") and snapshot.time_limit_seconds is None
    assert (manager.runs_dir / job_id / "run.json").exists()
    assert len(snapshot.epochs) == tiny_config.epochs and set(snapshot.latest) == {"ce", "cce"}
    assert snapshot.comparisons[0].other == "cce" and snapshot.steps[-1].losses.keys() == {"ce", "cce"}
    assert snapshot.class_counts and snapshot.version > 1


def test_cancel_while_running_stops_at_the_next_step(manager, long_config):
    # The worker checks the stop flag after every optimiser step, so once cancel() has returned at most the
    # step already under way may finish. Counting steps, not seconds, keeps this true on a loaded machine;
    # the latency in seconds is a benchmark figure (bench/cancel_latency.py).
    job_id = manager.submit(long_config)
    wait_until(manager, job_id, lambda s: s.status == "running" and len(s.steps) > 0)
    assert manager.cancel(job_id)
    at_cancel = manager.snapshot(job_id)
    assert at_cancel.status == "cancelled"  # at once, before the worker has reached the end of its step
    step_at_cancel = at_cancel.steps[-1].global_step
    snapshot = manager.wait(job_id, timeout=120)
    assert snapshot.status == "cancelled" and snapshot.is_finished and not snapshot.recording, snapshot.error
    assert snapshot.steps[-1].global_step <= step_at_cancel + 1
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
            steps = [point.global_step for point in snapshot.steps]
            if len(steps) > MAX_STEP_POINTS or steps != sorted(set(steps)):
                problems.append("steps out of order")
            if len(snapshot.epochs) > 0 and snapshot.epochs[-1].global_step > (steps[-1] if steps else 0):
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


def step_event(step):
    """A training step as the engine emits it (only its number matters to the state's progress)."""
    return StepMetrics(seed=0, step=step, global_step=step, epoch=0.0, losses={}, cross_entropy={}, learning_rate=0.1,
                       images_per_second=0.0)


def test_step_history_stays_bounded(tmp_path, tiny_config):
    from cce_demo import jobs

    state = jobs._Job("x", tiny_config, "cpu")
    for step in range(1, 10 * MAX_STEP_POINTS):
        state.apply(step_event(step))
    assert len(state.steps) <= MAX_STEP_POINTS
    steps = [point.global_step for point in state.steps]
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


# ---------------------------------------------------------------- limits: time, visitors, disk


class SteppableClock:
    """The real monotonic clock plus an offset the test moves forward, so a job "runs for half an hour" at once."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        return time.monotonic() + self.offset


def uniform_calibration(model, seconds_per_image, seconds_per_step=0.0):
    return calibration(
        costs={("cpu", model): ModelCost(seconds_per_image, seconds_per_step, seconds_per_image)},
        data_seconds={}, measured={"cpu"}, where={"cpu": "on this machine"},
    )


def test_a_job_over_the_time_limit_is_refused_before_taking_a_slot(tmp_path, tiny_config):
    manager = JobManager(tmp_path / "runs", allow_download=False, max_queue=1, worker_niceness=0,
                         limits=Limits(max_job_minutes=20))
    try:
        long_run = preset("ldam-drw", device="cpu")
        with pytest.raises(BudgetExceededError) as refused:
            manager.submit(long_run, client_id="visitor")
        message = str(refused.value)
        assert isinstance(refused.value, ValueError)
        assert manager.estimate(long_run).text in message and "hours" in message and "20 min per job" in message
        assert "python -m cce_demo.train" in message and "python -m cce_demo.reproduce" in message
        assert manager.list_jobs() == []
        job_id = manager.submit(tiny_config, client_id="visitor")  # the only queue slot is still free
        assert manager.wait(job_id, timeout=120).status == JobStatus.DONE
    finally:
        manager.shutdown()


def test_a_job_estimated_at_years_says_so(tmp_path):
    huge = preset("authors", device="cpu", epochs=1000, batch_size=1, seeds=tuple(range(10)))
    manager = JobManager(tmp_path / "runs", allow_download=False, limits=Limits(max_job_minutes=20),
                         calibration=uniform_calibration(huge.model, 0.01, 0.1))
    try:
        with pytest.raises(BudgetExceededError, match=r"would take about \d+\.\d years on this machine"):
            manager.submit(huge)
    finally:
        manager.shutdown()


def test_a_job_whose_estimate_was_wrong_is_stopped_as_timed_out(tmp_path, long_config):
    # The calibration under-reports the cost a millionfold, so the job is accepted under a 20-minute limit;
    # the clock then says it has run 31 minutes, past 1.5 x 20.
    clock = SteppableClock()
    manager = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0, clock=clock,
                         limits=Limits(max_job_minutes=20), calibration=uniform_calibration(long_config.model, 1e-9))
    try:
        job_id = manager.submit(long_config)
        running = wait_until(manager, job_id, lambda s: s.status == JobStatus.RUNNING and len(s.steps) > 0)
        assert running.estimate_seconds < 1 and running.time_limit_seconds == 30 * 60
        clock.offset = 31 * 60
        snapshot = manager.wait(job_id, timeout=60)
        assert snapshot.status == JobStatus.TIMED_OUT, snapshot.error
        assert snapshot.error == (
            "stopped after 31 min: over its budget of 20 min by more than 50 %; the models trained so far are kept"
        )
        assert snapshot.message == "Timed out" and snapshot.steps
        record = read_run(manager.runs_dir / job_id)
        assert record.status == "timed out" and record.metadata["reason"] == snapshot.error
        assert set(load_models(record)) == {"ce", "cce"}  # what was trained is kept
    finally:
        manager.shutdown()
    restarted = JobManager(tmp_path / "runs", allow_download=False)
    try:
        from_disk = restarted.snapshot(job_id)
        assert from_disk.status == JobStatus.TIMED_OUT and from_disk.message == "Timed out"
        assert from_disk.error == snapshot.error
    finally:
        restarted.shutdown()


def test_no_time_limit_without_a_budget(manager, tiny_config):
    job_id = manager.submit(tiny_config)
    assert manager.snapshot(job_id).time_limit_seconds is None
    assert manager.wait(job_id, timeout=120).status == JobStatus.DONE


def test_one_job_per_visitor(tmp_path, long_config, tiny_config):
    manager = JobManager(tmp_path / "runs", allow_download=False, max_queue=4, worker_niceness=0,
                         limits=Limits(max_jobs_per_client=1))
    try:
        first = manager.submit(long_config, client_id="visitor-a")
        with pytest.raises(ClientLimitError) as refused:
            manager.submit(tiny_config, client_id="visitor-a")
        assert str(refused.value) == (
            "You already have 1 job queued or running (limit 1 per visitor); wait for it to finish or stop it."
        )
        assert isinstance(refused.value, QueueFullError)  # code that reports a full queue reports this too
        other = manager.submit(tiny_config, client_id="visitor-b")
        trusted = manager.submit(tiny_config)  # no client id: the command line, a local caller
        assert manager.snapshot(first).status in (JobStatus.QUEUED, JobStatus.RUNNING)  # the first job stays
        assert [snapshot.job_id for snapshot in manager.client_jobs("visitor-a")] == [first]
        assert manager.snapshot(other).client_id == "visitor-b" and manager.snapshot(trusted).client_id is None
        manager.cancel(first)
        manager.wait(first, timeout=30)
        again = manager.submit(tiny_config, client_id="visitor-a")  # a finished job frees the visitor's slot
        for job_id in (other, trusted, again):
            manager.cancel(job_id)
    finally:
        manager.shutdown()


def test_old_runs_are_removed_after_each_job_but_never_a_running_one(tmp_path, long_config, tiny_config):
    runs = tmp_path / "runs"
    old = RunWriter(runs, tiny_config, "old-run")
    old.metadata.update(status="done", created_at="2020-01-01T00:00:00+0000")
    old._write_metadata()
    (runs / "not-a-run").mkdir()
    manager = JobManager(runs, allow_download=False, max_concurrent=2, worker_niceness=0, limits=Limits(keep_runs=1))
    try:
        assert (runs / "old-run").exists()  # within the limit at start-up: one run
        running = manager.submit(long_config)
        wait_until(manager, running, lambda s: s.status == JobStatus.RUNNING and s.run_dir is not None)
        quick = manager.submit(tiny_config)
        assert manager.wait(quick, timeout=120).status == JobStatus.DONE
        # Three runs, limit 1: the old one goes; the running one and the one just finished stay.
        assert not (runs / "old-run").exists()
        assert (runs / running).is_dir() and (runs / quick).is_dir() and (runs / "not-a-run").is_dir()
        assert manager.snapshot(running).status == JobStatus.RUNNING
        manager.cancel(running)
        assert manager.wait(running, timeout=30).status == JobStatus.CANCELLED
        # The job that just finished is kept; the older finished one (quick was created later) may go.
        assert (runs / running).is_dir()
    finally:
        manager.shutdown()


def test_progress_and_eta_include_evaluation(tiny_config):
    # 100 training images, batch 50: 2 steps per epoch; 2 epochs; 2 models. In estimated seconds: a step is
    # 2 x 50 x 10 ms = 1 s, an evaluation 2 x 100 x 5 ms = 1 s, the run 2 x (2 + 1) = 6 s.
    config = tiny_config.replace(epochs=2, batch_size=50)
    job = jobs._Job("x", config, "cpu", status=JobStatus.RUNNING, cost=ModelCost(0.01, 0.0, 0.005))
    job.apply(RunStarted(config={}, class_names=("a", "b"), class_counts=(50, 50), total_steps=4, num_train=100,
                         num_test=100, steps_per_epoch=2, device="cpu", data_source="test"), now=100.0)
    assert job.plan.total_seconds == pytest.approx(6.0)
    assert job.progress() == 0 and job.eta_seconds(100.0) == pytest.approx(6.0)  # the estimate, nothing measured
    for step, now in ((1, 101.0), (2, 102.0)):
        job.apply(step_event(step), now=now)
    assert job.progress() == pytest.approx(2 / 6)
    assert job.eta_seconds(102.0) == pytest.approx(4.0)  # on schedule
    # During the evaluation the ETA counts down with the clock instead of climbing.
    assert job.eta_seconds(102.5) == pytest.approx(3.5)
    job.apply(EpochMetrics(seed=0, epoch=1, global_step=2, evaluations={}), now=103.0)
    assert job.progress() == pytest.approx(3 / 6) and job.eta_seconds(103.0) == pytest.approx(3.0)
    # The second epoch runs twice as slowly as estimated: the ETA follows the measured pace (5 s for 4 s of
    # work), blended with the estimate's (1) as 5 s of measurement against the estimate's 10.
    job.apply(step_event(3), now=105.0)
    assert job.eta_seconds(105.0) == pytest.approx(2.0 * (5 / 15 * 5 / 4 + 10 / 15))
    job.status = JobStatus.DONE
    assert job.progress() == 1.0 and job.eta_seconds(106.0) is None


def test_eta_before_the_data_is_loaded_is_the_estimate(manager, tiny_config):
    estimate = manager.estimate(tiny_config)
    job = jobs._Job("x", tiny_config, "cpu", status=JobStatus.RUNNING, estimate=estimate, started_clock=50.0)
    assert job.eta_seconds(50.0) == pytest.approx(estimate.total_seconds)
    # Loading slower than estimated: the training and evaluation still lie ahead.
    assert job.eta_seconds(50.0 + 1e6) == pytest.approx(estimate.training_seconds + estimate.evaluation_seconds)
    assert job.snapshot(None).estimate_seconds == estimate.total_seconds


# ---------------------------------------------------------------- stopping: at once, within a step, recorded


class HeldStop:
    """Wraps the engine's stop callback: once it answers True the worker is held there until `release`, so a
    test sees the moment between Stop and the worker's recording without racing it."""

    def __init__(self, monkeypatch):
        self.held = threading.Event()
        self.released = threading.Event()
        self.niceness = None
        real = jobs.train_paired

        def training(config, on_event, should_stop, *args, **kwargs):
            def held_stop():
                self.niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
                stop = should_stop()
                if stop and not self.released.is_set():
                    self.held.set()
                    self.released.wait(120)
                return stop

            return real(config, on_event, held_stop, *args, **kwargs)

        monkeypatch.setattr(jobs, "train_paired", training)


def test_stop_reads_cancelled_at_once_and_the_run_settles_when_recorded(tmp_path, long_config, monkeypatch):
    held = HeldStop(monkeypatch)
    manager = JobManager(tmp_path / "runs", allow_download=False, limits=Limits(max_jobs_per_client=1))
    try:
        job_id = manager.submit(long_config, client_id="visitor")
        wait_until(manager, job_id, lambda s: s.status == "running" and len(s.steps) > 0)
        assert manager.cancel(job_id)
        assert held.held.wait(120)  # the worker has seen the stop and is held before it records anything
        stopping = manager.snapshot(job_id)
        assert stopping.status == "cancelled" and stopping.recording and not stopping.is_finished
        assert stopping.error == "stopped by request" and manager.cancel(job_id)  # a second Stop is fine
        assert read_run(manager.runs_dir / job_id).status == "running"  # not written yet: hence `recording`
        assert manager.wait(job_id, timeout=0.01).recording  # wait() waits for the recording, not the status
        # The visitor's slot is free at once: their next job queues behind the one being recorded.
        follow_up = manager.submit(long_config.replace(epochs=1), client_id="visitor")
        held.released.set()
        settled = manager.wait(job_id, timeout=120)
        assert settled.status == "cancelled" and settled.is_finished and not settled.recording
        record = read_run(manager.runs_dir / job_id)
        assert (record.status, record.metadata["reason"]) == ("cancelled", settled.error)  # disk agrees
        assert set(load_models(record)) == {"ce", "cce"}  # what it trained is recorded
        assert manager.wait(follow_up, timeout=120).status == "done"
    finally:
        held.released.set()
        manager.shutdown()


def test_the_worker_runs_niced(tmp_path, tiny_config, monkeypatch):
    held = HeldStop(monkeypatch)
    manager = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=jobs.WORKER_NICENESS)
    try:
        assert manager.wait(manager.submit(tiny_config), timeout=120).status == "done"
        # Read by the training thread itself; niceness only rises, so it is at least the configured value.
        assert held.niceness >= jobs.WORKER_NICENESS
    finally:
        manager.shutdown()


def test_shutdown_cancels_a_running_job_and_records_it(tmp_path, long_config):
    manager = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0)
    job_id = manager.submit(long_config)
    queued = manager.submit(long_config)
    wait_until(manager, job_id, lambda s: s.status == "running" and len(s.steps) > 0)
    manager.begin_shutdown()
    assert manager.snapshot(job_id).status == "cancelled" and manager.snapshot(queued).status == "cancelled"
    assert manager.join(timeout=120) and manager.threads_left() == []
    record = read_run(manager.runs_dir / job_id)
    assert (record.status, record.metadata["reason"]) == ("cancelled", "the app shut down")
    assert set(load_models(record)) == {"ce", "cce"}
    assert not (manager.runs_dir / queued).exists()
    with pytest.raises(RuntimeError, match="shut down"):
        manager.submit(long_config)


def _unwritable_finish(monkeypatch):
    """The run folder cannot be written once training is over (a full disk): finish and fail both raise."""
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunWriter, "finish", disk_full)
    monkeypatch.setattr(RunWriter, "fail", disk_full)


def test_a_run_that_cannot_be_recorded_is_not_left_running_on_disk(tmp_path, tiny_config, monkeypatch):
    _unwritable_finish(monkeypatch)
    manager = JobManager(tmp_path / "runs", allow_download=False, keep_finished=1, worker_niceness=0)
    try:
        job_id = manager.submit(tiny_config)
        snapshot = manager.wait(job_id, timeout=120)
        assert snapshot.status == "failed" and "No space left" in snapshot.error and "removed" in snapshot.error
        assert snapshot.run_dir is None and not (manager.runs_dir / job_id).exists()
        records, problems = list_runs([manager.runs_dir])
        assert records == [] and problems == []  # nothing on disk says "running" (or anything else)
        monkeypatch.undo()
        manager.wait(manager.submit(tiny_config), timeout=120)  # evicts the failed job from memory...
        assert job_id not in {job.job_id for job in manager.list_jobs()}
        assert manager.snapshot(job_id).status == "failed"  # ...whose final snapshot still answers
    finally:
        manager.shutdown()


def test_a_run_that_cannot_be_recorded_nor_removed_still_reads_failed(tmp_path, tiny_config, monkeypatch):
    _unwritable_finish(monkeypatch)

    def cannot_remove(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(jobs, "remove_run", cannot_remove)
    manager = JobManager(tmp_path / "runs", allow_download=False, keep_finished=1, worker_niceness=0)
    try:
        job_id = manager.submit(tiny_config)
        assert manager.wait(job_id, timeout=120).status == "failed"
        monkeypatch.undo()
        manager.wait(manager.submit(tiny_config), timeout=120)  # evicted: never read back from its folder
        assert manager.snapshot(job_id).status == "failed"
    finally:
        manager.shutdown()


def test_a_run_folder_that_cannot_be_created_leaves_nothing_behind(tmp_path, tiny_config, monkeypatch):
    from cce_demo import run_directory

    def read_only(path, value):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(run_directory, "write_json_atomic", read_only)
    manager = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0)
    try:
        job_id = manager.submit(tiny_config)
        snapshot = manager.wait(job_id, timeout=120)
        assert snapshot.status == "failed" and "Permission denied" in snapshot.error
        assert list(manager.runs_dir.iterdir()) == []  # no empty folder listed as an unreadable run
    finally:
        manager.shutdown()
