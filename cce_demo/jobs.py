"""The background training worker: a bounded FIFO queue, worker threads per device, cancel, live snapshots
and persisted run directories. The only module that owns threads; the UI and the API talk to it through
`estimate`, `submit`, `cancel`, `snapshot`, `list_jobs`, `client_jobs`, `wait` and `wait_for_change`.

It also keeps a public deployment safe (`budget.Limits`): a job estimated over the time limit is refused
before it takes a queue slot, a running job past its time limit is stopped as "timed out", a visitor holds
at most a few queued or running jobs, and old runs are removed after each job (`retention`).

Stopping. Stop shows at once: `cancel` marks a running job cancelled in memory right away, because on a busy
host the worker (niced, so that request handlers keep the CPU) may take seconds to reach the end of its step.
The job is then *recording* (`JobSnapshot.recording`): the worker stops after the step under way and writes
what it trained; only then is the snapshot `is_finished` and the run directory settled. Whatever the memory
says, the run directory ends up saying too (a failed write ends the job failed in both; a run directory that
cannot be written at all is removed rather than left reading "running"). `shutdown` stops the start-up speed
probe and every job and joins their threads, so the process can exit while no thread is inside torch.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .budget import CALIBRATION, Calibration, CostEstimate, Limits, describe_duration, estimate_seconds
from .config import TrainConfig
from .data import DataUnavailableError
from .engine import RunResult, resolve_device, train_paired
from .retention import apply_retention, remove_run
from .run_directory import RUN_ID_PATTERN, RunCorruptError, RunWriter, new_run_id
from .run_state import JobSnapshot, RunState, finished_message, snapshot_from_run_dir
from .schema import Event
from .speed_probe import ProbeStopped, drifted, probe
from .status import FINISHED, JobStatus, recorded_status

TERMINAL = FINISHED  # kept as a name: the job states after which nothing changes
DEFAULT_MAX_QUEUE = 8
DEFAULT_KEEP_FINISHED = 16  # finished jobs kept in memory; older ones are read back from disk
MAX_TOMBSTONES = 1000  # final snapshots of evicted jobs that never started (no run directory to read back)
WORKER_NICENESS = 10  # training threads yield the CPU to request handlers, so the UI stays responsive
PROBE_THREAD = "speed-probe"
MIN_DRIFT_WORK_SECONDS = 20.0
STOP_REASON = "stopped by request"  # the engine's own words for a stop, kept so that memory and disk agree
SHUTDOWN_REASON = "the app shut down"

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """Raised by `submit` when the queue already holds `max_queue` waiting jobs; nothing was started."""


class ClientLimitError(QueueFullError):
    """Raised by `submit` when the visitor already has `max_jobs_per_client` jobs queued or running: their
    share of the queue is full (a QueueFullError, so code that reports a full queue reports this too)."""


class BudgetExceededError(ValueError):
    """Raised by `submit` when the job's estimate is over `max_job_minutes`; nothing was queued. A ValueError:
    the config asks for more than this deployment allows."""


class UnknownJobError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; this message is meant for people
        return str(self.args[0])


@dataclass
class _Job(RunState):
    """One job of the worker: its run state (run_state.py) plus what only the worker uses to stop it and to
    settle its run directory; guarded by the manager's lock."""

    stop: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False  # set (by the worker, under the lock) when the time limit stopped it
    # Set by `cancel` / `shutdown` with the status: why it was stopped (recorded on disk with these words),
    # while `recording` says the worker has not yet written what it trained.
    stop_reason: str | None = None
    # The run directory could not be written, so what it says is wrong or gone: this job's final snapshot is
    # kept in memory for good (a tombstone) instead of being read back from disk.
    disk_unreliable: bool = False

    @property
    def settled(self) -> bool:
        """A final status and nothing left for the worker to write."""
        return self.status in TERMINAL and not self.recording


class JobManager:
    """Runs training jobs in background threads: `max_concurrent` at a time per device, up to `max_queue`
    more waiting in submission order. One manager is shared by the whole app. `limits` bounds job time, jobs
    per visitor and the runs kept (none by default); `calibration` holds the cost figures of the estimate
    and the ETA; `clock` (seconds, monotonic) times jobs against the time limit. Tests pass their own."""

    def __init__(
        self,
        runs_dir: str | os.PathLike,
        *,
        data_dir: str | os.PathLike | None = None,
        allow_download: bool = True,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_concurrent: int = 1,
        keep_finished: int = DEFAULT_KEEP_FINISHED,
        torch_threads: int | None = None,
        worker_niceness: int = WORKER_NICENESS,
        limits: Limits = Limits(),
        calibration: Calibration = CALIBRATION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queue < 1 or max_concurrent < 1:
            raise ValueError(f"max_queue and max_concurrent must be >= 1, got {max_queue} and {max_concurrent}")
        self.runs_dir = Path(runs_dir)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.allow_download = allow_download
        self.max_queue = max_queue
        self.max_concurrent = max_concurrent
        self.keep_finished = keep_finished
        self.worker_niceness = worker_niceness
        if not isinstance(limits, Limits):
            raise ValueError(f"limits: expected a Limits, got {type(limits).__name__}")
        self.limits = limits
        self.calibration = calibration
        self._clock = clock
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[str, _Job] = {}
        self._queue: list[str] = []  # waiting job ids, oldest first
        self._finished_order: list[str] = []
        self._tombstones: OrderedDict[str, JobSnapshot] = OrderedDict()
        self._workers: dict[str, list[threading.Thread]] = {}
        self._closed = False
        # Set by `shutdown`: read (without the lock) by the speed probe after each of its steps.
        self._stopping = threading.Event()
        self._probe_thread: threading.Thread | None = None
        self._probed_devices: set[str] = set()  # where the probe has timed this host: those re-probe on drift
        self._retention_lock = threading.Lock()  # one pass at a time when several workers finish together
        self._apply_retention(keep=None)  # limits lowered since the last start take effect now

    # ------------------------------------------------------------ public API

    def time_this_host(self, device: str = "cpu") -> float | None:
        """Scale the estimate's cost table for `device` to this host with the start-up speed probe
        (`speed_probe.py`: eight real training steps, one to two seconds). Returns the factor, or None when the
        probe failed or was stopped by `shutdown`, in which case the table stays as it was. The app runs this
        once at start-up in the background (`start_speed_probe`); estimates made before it finishes use the
        table."""
        logger.info("speed probe on %s: timing a few training steps", device)
        try:
            self.calibration, factor, seconds = probe(self.calibration, device, should_stop=self._stopping.is_set)
        except ProbeStopped as stopped:
            logger.info("%s: the app is shutting down", stopped)
            return None
        except Exception as error:  # a failed probe must not stop the app: the table still holds
            logger.warning("speed probe on %s failed (%s); estimates use the calibration table", device, error)
            return None
        logger.info("speed probe on %s: %.3f s per probe step, %.2f times the calibration table", device, seconds, factor)
        self._probed_devices.add(torch.device(device).type)
        return factor

    def reprobe_if_drifted(self, device: str, pace: float | None, work_seconds: float) -> float | None:
        """Time the host again when a job's measured pace (real seconds per estimated second, `RunState.
        measured_pace`) strayed more than `speed_probe.DRIFT_TOLERANCE` from the probe's prediction (1): the
        host got busier or quieter since the probe, and every estimate made from it is off by as much. Only
        after a probe has run on this device (a manager that never probed keeps its table), and only for a
        job with at least `MIN_DRIFT_WORK_SECONDS` of measured work (a shorter one is mostly start-up cost).
        Returns the new factor, or None when nothing was re-timed."""
        if (torch.device(device).type not in self._probed_devices or pace is None or work_seconds < MIN_DRIFT_WORK_SECONDS
                or self._stopping.is_set() or not drifted(1.0, 1.0 / pace)):
            return None
        logger.info("job pace on %s was %.2f times the estimate's: timing the host again", device, pace)
        return self.time_this_host(device)

    def start_speed_probe(self, device: str = "cpu") -> None:
        """Run `time_this_host` in a background thread (the page is served meanwhile); `shutdown` stops it
        within a probe step and joins it."""
        with self._lock:
            if self._closed or self._probe_thread is not None:
                return
            # Not a daemon: should anything skip `shutdown`, the interpreter still waits for it at exit
            # instead of tearing torch down under it.
            self._probe_thread = threading.Thread(target=self.time_this_host, args=(device,), name=PROBE_THREAD)
            self._probe_thread.start()

    def estimate(self, config: TrainConfig) -> CostEstimate:
        """How long `config` should take here (what `submit` checks against `limits.max_job_minutes`). Raises
        ValueError for an unusable config (e.g. a ratio that leaves a class without images)."""
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
        return estimate_seconds(config, resolve_device(config.device).type, calibration=self.calibration)

    def submit(self, config: TrainConfig, client_id: str | None = None) -> str:
        """Queue a job; returns its id (also its run directory's name). `client_id` names the visitor (a
        browser session, a client address); None is a trusted caller to whom the per-visitor limit does not
        apply. Starting nothing and taking no queue slot, it raises `ValueError` for an unusable config,
        `BudgetExceededError` when the estimate is over the time limit, `ClientLimitError` when the visitor
        already has their share of jobs, and `QueueFullError` when the queue is full."""
        if client_id is not None and not isinstance(client_id, str):
            raise ValueError(f"client_id: expected a string or None, got {type(client_id).__name__}")
        # Refuse here, not in the worker, what could never run: it would only take a queue slot.
        estimate = self.estimate(config)
        self._check_budget(estimate)
        device = resolve_device(config.device).type
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            self._check_client(client_id)
            if len(self._queue) >= self.max_queue:
                raise QueueFullError(
                    f"The training queue is full ({len(self._queue)} jobs waiting, limit {self.max_queue}). "
                    "Try again when a job has finished."
                )
            job_id = new_run_id(config)
            job = _Job(
                job_id, config, device, client_id=client_id, estimate=estimate,
                time_limit_seconds=self.limits.job_time_limit_seconds,
                cost=self.calibration.cost(device, config.model),  # known: the estimate used it
            )
            self._jobs[job_id] = job
            self._queue.append(job_id)
            self._ensure_workers(device)
            self._touch(job)
        return job_id

    def client_jobs(self, client_id: str) -> list[JobSnapshot]:
        """The visitor's queued and running jobs, oldest first (what counts against `max_jobs_per_client`)."""
        with self._lock:
            jobs = sorted(self._active_of(client_id), key=lambda job: job.submitted_at)
            return [job.snapshot(self._queue_position(job.job_id)) for job in jobs]

    def cancel(self, job_id: str) -> bool:
        """Drop a queued job, or stop a running one: it reads cancelled at once, and the worker stops after
        the step under way and records what it trained (`JobSnapshot.recording` until then). True if this
        job was queued or running (also when it was already being stopped); False if it had finished."""
        with self._lock:
            job = self._jobs.get(job_id)
            known_elsewhere = job is None and job_id in self._tombstones
            if job is not None and job.recording:
                return True
            if job is not None and job.status not in TERMINAL:
                self._stop_job(job, STOP_REASON)
                return True
        if job is None and not known_elsewhere:
            self._snapshot_from_disk(job_id)  # outside the lock; raises UnknownJobError for an unknown id
        return False

    def snapshot(self, job_id: str) -> JobSnapshot:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return job.snapshot(self._queue_position(job_id))
            if job_id in self._tombstones:
                return self._tombstones[job_id]
        return self._snapshot_from_disk(job_id)

    def list_jobs(self) -> list[JobSnapshot]:
        """Jobs held in memory (queued, running and recently finished), newest first."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda job: job.submitted_at, reverse=True)
            return [job.snapshot(self._queue_position(job.job_id)) for job in jobs]

    def active_jobs(self) -> list[JobSnapshot]:
        return [snapshot for snapshot in self.list_jobs() if not snapshot.is_finished]

    def wait(self, job_id: str, timeout: float | None = None) -> JobSnapshot:
        """Block until the job has finished (or `timeout` seconds passed); returns its latest snapshot."""
        return self._wait_until(job_id, lambda job: False, timeout)

    def wait_for_change(self, job_id: str, after_version: int, timeout: float) -> JobSnapshot:
        """Block until the job's version exceeds `after_version`, it finished, or `timeout` passed."""
        return self._wait_until(job_id, lambda job: job.version > after_version, timeout)

    def _wait_until(self, job_id: str, changed: Callable[[_Job], bool], timeout: float | None) -> JobSnapshot:
        """Wait on the change notifications until `changed(job)`, the job finished or left memory, or timeout."""

        def settled() -> bool:
            job = self._jobs.get(job_id)
            return job is None or job.settled or changed(job)

        with self._lock:
            self._changed.wait_for(settled, timeout)
        return self.snapshot(job_id)

    def shutdown(self, timeout: float = 10.0) -> bool:
        """`begin_shutdown`, then `join` for up to `timeout` seconds; True when every thread has ended."""
        self.begin_shutdown()
        return self.join(timeout)

    def begin_shutdown(self) -> None:
        """Stop everything, without waiting: no new jobs; the speed probe stops after its step under way;
        queued jobs are dropped; running jobs read cancelled at once, stop after their step under way and
        record what they trained. Idempotent."""
        with self._lock:
            self._closed = True
            self._stopping.set()
            for job in list(self._jobs.values()):
                if job.status not in TERMINAL:
                    self._stop_job(job, SHUTDOWN_REASON)
            self._changed.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds in all for the speed probe and the workers to end (after
        `begin_shutdown`). True when none is left: the process may exit with no thread inside torch."""
        deadline = time.monotonic() + timeout
        for thread in self._threads():
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        left = self.threads_left()
        if left:
            logger.warning("shutdown: still running after %.1f s: %s", timeout, ", ".join(left))
        return not left

    def threads_left(self) -> list[str]:
        """Names of the background threads still running: PROBE_THREAD, or a worker ("cce-train-…"), which
        after `begin_shutdown` is still stopping or recording its job. Only the probe's work is disposable:
        a job left unrecorded reads as interrupted after the next start."""
        return [thread.name for thread in self._threads() if thread.is_alive()]

    def _threads(self) -> list[threading.Thread]:
        with self._lock:
            threads = [thread for threads in self._workers.values() for thread in threads]
            return ([self._probe_thread] if self._probe_thread is not None else []) + threads

    # ------------------------------------------------------------ internals (call with the lock held)

    def _stop_job(self, job: _Job, reason: str) -> None:
        """Cancel `job` now, as far as anyone reading it can tell. A queued one is simply dropped; a running
        one keeps `recording` until the worker has written what it trained, with the same reason."""
        job.stop.set()
        if job.status == JobStatus.RUNNING and job.timed_out:
            return  # already stopping over its time limit: it ends timed out, as it was going to
        job.status, job.error, job.finished_at = JobStatus.CANCELLED, reason, time.time()
        if job.job_id in self._queue:
            self._queue.remove(job.job_id)
            job.error = "cancelled before it started" if reason == STOP_REASON else reason
            job.message = finished_message(job.status)
            self._retire(job)
            self._touch_queue()
        else:
            job.stop_reason, job.recording = reason, True
            job.message = "Stopped: saving what it trained…"
        self._touch(job)

    def _touch(self, job: _Job) -> None:
        job.version += 1
        self._changed.notify_all()

    def _touch_queue(self) -> None:
        """The queue moved: every waiting job's position changed, so each gets a new version to redraw."""
        for job_id in self._queue:
            self._jobs[job_id].version += 1
        self._changed.notify_all()

    def _active_of(self, client_id: str) -> list[_Job]:
        return [job for job in self._jobs.values() if job.client_id == client_id and job.status not in TERMINAL]

    def _check_client(self, client_id: str | None) -> None:
        limit = self.limits.max_jobs_per_client
        if limit is None or client_id is None:
            return
        held = len(self._active_of(client_id))
        if held >= limit:
            noun = "job" if held == 1 else "jobs"
            which = "it" if held == 1 else "one"
            raise ClientLimitError(
                f"You already have {held} {noun} queued or running (limit {limit} per visitor); "
                f"wait for {which} to finish or stop {which}."
            )

    def _check_budget(self, estimate: CostEstimate) -> None:
        """Refuse a job estimated over the time limit (no lock needed: it reads only the estimate)."""
        limit_minutes = self.limits.max_job_minutes
        if limit_minutes is None or estimate.total_seconds <= limit_minutes * 60:
            return
        raise BudgetExceededError(
            f"This job would take {estimate.text}, over the limit of {describe_duration(limit_minutes * 60)} per "
            "job here. Make it smaller (fewer epochs, seeds or losses, a smaller model, larger batches), or run "
            "long jobs on your own machine from the command line: `python -m cce_demo.train` for one run, "
            "`python -m cce_demo.reproduce` for the paper's grids."
        )

    def _queue_position(self, job_id: str) -> int | None:
        return self._queue.index(job_id) + 1 if job_id in self._queue else None

    def _ensure_workers(self, device: str) -> None:
        threads = self._workers.setdefault(device, [])
        while len(threads) < self.max_concurrent:
            thread = threading.Thread(
                target=self._work, args=(device,), name=f"cce-train-{device}-{len(threads)}", daemon=True
            )
            threads.append(thread)
            thread.start()

    def _next_job(self, device: str) -> _Job | None:
        for job_id in self._queue:
            if self._jobs[job_id].device == device:
                self._queue.remove(job_id)
                self._touch_queue()
                return self._jobs[job_id]
        return None

    def _retire(self, job: _Job) -> None:
        """Remember a finished job; evict the oldest finished ones beyond `keep_finished` (they are read back
        from disk on demand), so memory stays bounded however long the app runs."""
        self._finished_order.append(job.job_id)
        while len(self._finished_order) > self.keep_finished:
            evicted = self._jobs.pop(self._finished_order.pop(0), None)
            if evicted is not None and (evicted.run_dir is None or evicted.disk_unreliable):
                # Cancelled before it started, or its run directory could not be written: nothing right to
                # read back, so keep its (small) final snapshot, in a bounded record, so its id still answers.
                self._tombstones[evicted.job_id] = evicted.snapshot(None)
                while len(self._tombstones) > MAX_TOMBSTONES:
                    self._tombstones.popitem(last=False)

    # ------------------------------------------------------------ worker threads

    def _work(self, device: str) -> None:
        if self.worker_niceness and hasattr(os, "setpriority"):
            try:  # per-thread on Linux; torch's intra-op threads started from here inherit it
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.worker_niceness)
            except OSError:
                pass
        while True:
            with self._lock:
                while not self._closed and (job := self._next_job(device)) is None:
                    self._changed.wait()
                if self._closed:
                    return
                job.status, job.started_at, job.message = JobStatus.RUNNING, time.time(), "Starting…"
                job.started_clock = time.monotonic()
                self._touch(job)
            logger.info("job %s started on %s", job.job_id, device)
            status, reason = self._run(job)
            logger.info("job %s ended %s%s", job.job_id, status.value, f": {reason}" if reason else "")
            # Before the job reads as finished, so that whoever waits for it sees the runs directory settled.
            # Not while shutting down: the next start applies the limits anyway, and exiting should not wait.
            if not self._stopping.is_set():
                self._apply_retention(keep=job.job_id)
            with self._lock:
                job.status, job.error, job.recording = status, reason, False
                job.finished_at = job.finished_at if job.stop_reason is not None else time.time()
                job.message = finished_message(status)
                pace = job.measured_pace()
                work_seconds = (job.last_event_clock - job.work_started_clock
                                if job.last_event_clock is not None and job.work_started_clock is not None else 0.0)
                self._retire(job)
                self._touch(job)
            # Between jobs, so that the probe times the host and not the host plus a job of its own.
            self.reprobe_if_drifted(device, pace, work_seconds)

    def _run(self, job: _Job) -> tuple[JobStatus, str]:
        """Train one job and write its run directory; never raises (a job's failure is its own). Returns the
        final status and reason, which are what the run directory says too."""
        writer = None
        started = self._clock()
        deadline = None if job.time_limit_seconds is None else started + job.time_limit_seconds
        run_dir = self.runs_dir / job.job_id
        existed_before = run_dir.exists()  # never remove a folder this job did not create

        def should_stop() -> bool:
            # Checked by the engine every step: a Stop press, or the wall-clock limit (a wrong estimate).
            if job.stop.is_set() or job.timed_out:
                return True
            if deadline is not None and self._clock() > deadline:
                with self._lock:
                    job.timed_out, job.message = True, "Stopping: over its time limit"
                    self._touch(job)
                return True
            return False

        try:
            writer = RunWriter(self.runs_dir, job.config, job.job_id)
            with self._lock:
                job.run_dir = str(writer.run_dir)

            def on_event(event: Event) -> None:
                writer.record(event)
                with self._lock:
                    job.apply(event)  # the same frozen record the writer dumped
                    self._touch(job)

            # The end-of-epoch state, so that a job cut off by a restart can be resumed from the CLI.
            result = train_paired(job.config, on_event, should_stop, self.data_dir, self.allow_download,
                                  on_checkpoint=writer.save_checkpoint)
            status = recorded_status(result.status)  # a diverged run is failed, with the engine's reason
            if result.status != JobStatus.DIVERGED and job.stop_reason is not None:
                # It read "cancelled" from the moment Stop was pressed, and stays so, with the same reason on
                # disk; also when the last step under way happened to finish the run.
                status = JobStatus.CANCELLED
                result = dataclasses.replace(result, reason=job.stop_reason)
            elif status == JobStatus.CANCELLED and job.timed_out:
                status = JobStatus.TIMED_OUT
                result = dataclasses.replace(result, reason=self._timeout_reason(self._clock() - started, result))
            writer.finish(result, status=status)
            return status, result.reason
        except Exception as error:  # noqa: BLE001 - isolation: any failure ends this job, not the app
            reason = str(error) if isinstance(error, (DataUnavailableError, ValueError)) else f"{type(error).__name__}: {error}"
            return JobStatus.FAILED, self._record_failure(job, writer, run_dir if not existed_before else None, reason)
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _record_failure(self, job: _Job, writer: RunWriter | None, own_dir: Path | None, reason: str) -> str:
        """Make the run directory say 'failed', as the job will in memory; returns the reason to show. If the
        directory cannot be written (a full disk, lost permissions), a run left reading "running" would be
        listed as training for as long as the app runs: it is removed instead (rename, then delete, as
        retention does), and the job's final snapshot stays in memory in its place."""
        if writer is not None:
            try:
                writer.fail(reason)
                return reason
            except Exception as write_error:  # noqa: BLE001 - e.g. a full disk; the job still ends
                reason += f" (and its run directory could not be updated: {write_error})"
        with self._lock:
            job.disk_unreliable = True
        if own_dir is None or not own_dir.exists():
            return reason
        try:
            remove_run(own_dir)
        except OSError as remove_error:
            logger.error("run %s could not be recorded as failed nor removed (%s); it reads as running until the "
                         "app restarts, then as interrupted", job.job_id, remove_error)
            return reason
        with self._lock:
            job.run_dir = None
        logger.warning("run %s could not be written; its folder was removed: %s", job.job_id, reason)
        return reason + "; its unfinished run folder was removed"

    def _timeout_reason(self, elapsed: float, result: RunResult) -> str:
        margin = round((self.limits.timeout_margin - 1) * 100)
        budget = describe_duration((self.limits.max_job_minutes or 0) * 60)
        kept = "the models trained so far are kept" if result.models else "nothing had been trained yet"
        return f"stopped after {describe_duration(elapsed)}: over its budget of {budget} by more than {margin} %; {kept}"

    def _apply_retention(self, keep: str | None) -> None:
        """Remove old runs beyond `limits.keep_runs` / `limits.max_runs_mb`; never a queued or running job's,
        nor `keep` (the job that just finished: its visitor is about to look at it). A failure is logged,
        never raised: disk housekeeping must not end a job or the app."""
        if self.limits.keep_runs is None and self.limits.max_runs_mb is None:
            return
        with self._lock:
            protected = {job_id for job_id, job in self._jobs.items() if not job.settled}
        if keep is not None:
            protected.add(keep)
        try:
            with self._retention_lock:
                removed = apply_retention(self.runs_dir, self.limits.keep_runs, self.limits.max_runs_mb, protected,
                                          should_stop=self._stopping.is_set)
        except Exception as error:  # noqa: BLE001 - e.g. a permission error; the next pass tries again
            logger.warning("could not apply the run retention limits in %s: %s", self.runs_dir, error)
            return
        if removed:
            logger.info("removed %d old run(s) to stay within the limits: %s", len(removed), ", ".join(removed))

    def _snapshot_from_disk(self, job_id: str) -> JobSnapshot:
        if not isinstance(job_id, str) or not RUN_ID_PATTERN.match(job_id) or not (self.runs_dir / job_id).is_dir():
            raise UnknownJobError(f"no job with id {job_id!r}")
        try:
            return snapshot_from_run_dir(self.runs_dir / job_id)
        except RunCorruptError as error:
            raise UnknownJobError(str(error)) from error

