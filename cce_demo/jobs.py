"""The background training worker: a bounded FIFO queue, worker threads per device, cancel, live snapshots
and persisted run directories. The only module that owns threads; the UI and the API talk to it through
`submit`, `cancel`, `snapshot`, `list_jobs`, `wait` and `wait_for_change`.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch

from .checkpoints import (
    EVENTS_FILE, METADATA_FILE, RUN_ID_PATTERN, RunCorruptError, RunWriter, new_run_id, read_events, read_run, to_jsonable,
)
from .config import TrainConfig
from .data import DataUnavailableError, planned_class_counts
from .engine import Event, resolve_device, train_paired
from .status import FINISHED, JobStatus

TERMINAL = FINISHED  # kept as a name: the job states after which nothing changes
MAX_STEP_POINTS = 1000  # curve points kept per job (downsampled by 2 whenever exceeded): bounded memory
DEFAULT_MAX_QUEUE = 8
DEFAULT_KEEP_FINISHED = 16  # finished jobs kept in memory; older ones are read back from disk
MAX_TOMBSTONES = 1000  # final snapshots of evicted jobs that never started (no run directory to read back)
WORKER_NICENESS = 10  # training threads yield the CPU to request handlers, so the UI stays responsive


class QueueFullError(RuntimeError):
    """Raised by `submit` when the queue already holds `max_queue` waiting jobs; nothing was started."""


class UnknownJobError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; this message is meant for people
        return str(self.args[0])


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of a job's state. Containers are tuples and read-only mappings; the dicts inside
    come from events and are never changed after they are recorded."""

    job_id: str
    status: JobStatus
    config: TrainConfig
    version: int  # increases with every change; redraw only when it moved
    queue_position: int | None  # 1-based among waiting jobs; None when not queued
    progress: float  # 0..1 over all seeds
    eta_seconds: float | None
    message: str  # the latest status line ("Loading cifar10…")
    error: str  # why it failed / was cancelled / was interrupted
    device: str
    run_dir: str | None
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    steps: tuple[Mapping[str, Any], ...]  # downsampled step events (loss and CE part per loss)
    epochs: tuple[Mapping[str, Any], ...]  # per epoch: seed, epoch, per-loss test loss / accuracies
    latest: Mapping[str, Any]  # loss -> the latest full evaluation (recall, groups, confusion matrix)
    comparisons: tuple[Mapping[str, Any], ...]  # per seed and non-baseline loss: McNemar etc.
    summaries: Mapping[str, Any]  # loss -> across-seed summary of the balanced-accuracy difference
    submitted_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL


@dataclass
class _Job:
    """Mutable state of one job, guarded by the manager's lock."""

    job_id: str
    config: TrainConfig
    device: str
    submitted_at: float = field(default_factory=time.time)
    status: JobStatus = JobStatus.QUEUED
    version: int = 0
    message: str = "Waiting in the queue"
    error: str = ""
    run_dir: str | None = None
    started_at: float | None = None
    training_started_at: float | None = None
    finished_at: float | None = None
    class_names: tuple[str, ...] = ()
    class_counts: tuple[int, ...] = ()
    total_steps: int = 0
    global_step: int = 0
    step_stride: int = 1
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, Any] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    summaries: dict[str, Any] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one event (as plain JSON data, live or replayed from events.jsonl) into the state."""
        kind = event.get("kind")
        if kind == "status":
            self.message = event["message"]
        elif kind == "started":
            self.class_names = tuple(event["class_names"])
            self.class_counts = tuple(event["class_counts"])
            self.total_steps = int(event["total_steps"])
            self.device = event.get("device", self.device)
            self.message = f"Training on {self.device}"
        elif kind == "step":
            self.global_step = int(event["global_step"])
            if self.training_started_at is None:
                self.training_started_at = time.time()
            if self.global_step % self.step_stride == 0 or not self.steps:
                self.steps.append(dict(event))
                if len(self.steps) > MAX_STEP_POINTS:
                    self.steps = self.steps[::2]  # keeps the first point
                    self.step_stride *= 2
        elif kind == "epoch":
            self.global_step = int(event["global_step"])
            evaluations = event["evaluations"]
            self.latest = evaluations
            self.epochs.append({
                "seed": event["seed"], "epoch": event["epoch"], "global_step": event["global_step"],
                "losses": {
                    name: {key: value[key] for key in ("test_loss", "accuracy", "balanced_accuracy", "complement_entropy", "group_recall")}
                    for name, value in evaluations.items()
                },
            })
            self.message = f"Seed {event['seed']}, epoch {event['epoch']} evaluated"
        elif kind == "seed_finished":
            self.comparisons.extend(event["comparisons"])
        elif kind == "finished":
            self.summaries = dict(event["summaries"])

    def snapshot(self, queue_position: int | None) -> JobSnapshot:
        progress = min(1.0, self.global_step / self.total_steps) if self.total_steps else 0.0
        if self.status == "done":
            progress = 1.0
        eta = None
        if self.status == "running" and self.training_started_at and 0 < progress < 1:
            elapsed = time.time() - self.training_started_at
            eta = elapsed * (1 - progress) / progress
        return JobSnapshot(
            job_id=self.job_id, status=self.status, config=self.config, version=self.version,
            queue_position=queue_position, progress=progress, eta_seconds=eta, message=self.message,
            error=self.error, device=self.device, run_dir=self.run_dir, class_names=self.class_names,
            class_counts=self.class_counts, steps=tuple(self.steps), epochs=tuple(self.epochs),
            latest=MappingProxyType(dict(self.latest)), comparisons=tuple(self.comparisons),
            summaries=MappingProxyType(dict(self.summaries)), submitted_at=self.submitted_at,
            started_at=self.started_at, finished_at=self.finished_at,
        )


_DISK_SNAPSHOTS: OrderedDict[tuple[str, float, float], JobSnapshot] = OrderedDict()
_DISK_SNAPSHOTS_LOCK = threading.Lock()
DISK_SNAPSHOT_CACHE_SIZE = 16


def snapshot_from_run_dir(run_dir: Path) -> JobSnapshot:
    """A finished run's snapshot, replayed from its directory once and cached until its files change (a long
    run's event log has tens of thousands of lines; pages poll every second)."""
    run_dir = Path(run_dir)
    stamps = tuple((run_dir / name).stat().st_mtime if (run_dir / name).exists() else 0.0 for name in (METADATA_FILE, EVENTS_FILE))
    key = (str(run_dir.resolve()), *stamps)
    with _DISK_SNAPSHOTS_LOCK:
        if key in _DISK_SNAPSHOTS:
            _DISK_SNAPSHOTS.move_to_end(key)
            return _DISK_SNAPSHOTS[key]
    snapshot = job_from_run_dir(run_dir).snapshot(None)
    with _DISK_SNAPSHOTS_LOCK:
        _DISK_SNAPSHOTS[key] = snapshot
        while len(_DISK_SNAPSHOTS) > DISK_SNAPSHOT_CACHE_SIZE:
            _DISK_SNAPSHOTS.popitem(last=False)
    return snapshot


def job_from_run_dir(run_dir: Path) -> _Job:
    """Rebuild a finished (or interrupted) job's state from its run directory."""
    record = read_run(run_dir)
    job = _Job(record.run_id, record.config, record.metadata.get("device", "cpu"))
    for event in read_events(run_dir):
        job.apply(event)
    job.status = JobStatus(record.status)
    job.error = record.metadata.get("reason", "")
    if record.status == "interrupted":
        job.error = job.error or "the app stopped while this run was training"
    job.message = {"done": "Finished", "interrupted": "Interrupted"}.get(record.status, record.status.capitalize())
    job.run_dir = str(run_dir)
    job.version = 1
    return job


class JobManager:
    """Runs training jobs in background threads: `max_concurrent` at a time per device, up to `max_queue`
    more waiting in submission order. One manager is shared by the whole app."""

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

    # ------------------------------------------------------------ public API

    def submit(self, config: TrainConfig) -> str:
        """Queue a job; returns its id (also its run directory's name). Raises `QueueFullError` when the
        queue is full and `ValueError` for an unusable config, starting nothing in either case."""
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
        device = resolve_device(config.device).type
        # Refuse here, not in the worker, a ratio the data cannot satisfy: it would only take a queue slot.
        planned_class_counts(config)
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            if len(self._queue) >= self.max_queue:
                raise QueueFullError(
                    f"The training queue is full ({len(self._queue)} jobs waiting, limit {self.max_queue}). "
                    "Try again when a job has finished."
                )
            job_id = new_run_id(config)
            job = _Job(job_id, config, device)
            self._jobs[job_id] = job
            self._queue.append(job_id)
            self._ensure_workers(device)
            self._touch(job)
        return job_id

    def cancel(self, job_id: str) -> bool:
        """Stop a running job (within a step) or drop a queued one. False if it had already finished."""
        with self._lock:
            job = self._jobs.get(job_id)
            known_elsewhere = job is None and job_id in self._tombstones
            if job is not None and job.status not in TERMINAL:
                job.stop.set()
                if job.status == "queued":
                    self._queue.remove(job_id)
                    job.status, job.error, job.message = "cancelled", "cancelled before it started", "Cancelled"
                    job.finished_at = time.time()
                    self._retire(job)
                    self._touch_queue()
                else:
                    job.message = "Stopping…"
                self._touch(job)
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
            return job is None or job.status in TERMINAL or changed(job)

        with self._lock:
            self._changed.wait_for(settled, timeout)
        return self.snapshot(job_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel everything and stop the workers (running jobs record 'cancelled' with what they trained)."""
        with self._lock:
            self._closed = True
            for job_id in list(self._queue):
                job = self._jobs[job_id]
                job.status, job.error, job.finished_at = "cancelled", "the app shut down", time.time()
            self._queue.clear()
            for job in self._jobs.values():
                job.stop.set()
            self._changed.notify_all()
            workers = [thread for threads in self._workers.values() for thread in threads]
        for thread in workers:
            thread.join(timeout)

    # ------------------------------------------------------------ internals (call with the lock held)

    def _touch(self, job: _Job) -> None:
        job.version += 1
        self._changed.notify_all()

    def _touch_queue(self) -> None:
        """The queue moved: every waiting job's position changed, so each gets a new version to redraw."""
        for job_id in self._queue:
            self._jobs[job_id].version += 1
        self._changed.notify_all()

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
            if evicted is not None and evicted.run_dir is None:
                # Cancelled before it started: no run directory to read back, so keep its (small) final
                # snapshot, in a bounded record, so its id still answers.
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
                job.status, job.started_at, job.message = "running", time.time(), "Starting…"
                self._touch(job)
            status, reason = self._run(job)
            with self._lock:
                job.status, job.error, job.finished_at = status, reason, time.time()
                job.message = {"done": "Finished", "cancelled": "Cancelled", "failed": "Failed"}[status]
                self._retire(job)
                self._touch(job)

    def _run(self, job: _Job) -> tuple[str, str]:
        """Train one job and write its run directory; never raises (a job's failure is its own)."""
        writer = None
        try:
            writer = RunWriter(self.runs_dir, job.config, job.job_id)
            with self._lock:
                job.run_dir = str(writer.run_dir)

            def on_event(event: Event) -> None:
                writer.record(event)
                data = to_jsonable(event)
                with self._lock:
                    job.apply(data)
                    self._touch(job)

            result = train_paired(job.config, on_event, job.stop.is_set, self.data_dir, self.allow_download)
            status = "failed" if result.status == "diverged" else result.status
            writer.finish(result, status=status)
            return status, result.reason
        except Exception as error:  # noqa: BLE001 - isolation: any failure ends this job, not the app
            reason = str(error) if isinstance(error, (DataUnavailableError, ValueError)) else f"{type(error).__name__}: {error}"
            if writer is not None:
                try:
                    writer.fail(reason)
                except Exception as write_error:  # noqa: BLE001 - e.g. a full disk; the job still ends
                    reason += f" (and its run directory could not be updated: {write_error})"
            return "failed", reason
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _snapshot_from_disk(self, job_id: str) -> JobSnapshot:
        if not isinstance(job_id, str) or not RUN_ID_PATTERN.match(job_id) or not (self.runs_dir / job_id).is_dir():
            raise UnknownJobError(f"no job with id {job_id!r}")
        try:
            return snapshot_from_run_dir(self.runs_dir / job_id)
        except RunCorruptError as error:
            raise UnknownJobError(str(error)) from error


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
