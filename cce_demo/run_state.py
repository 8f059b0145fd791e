"""Run state: what a run has shown so far, folded from its events, and the immutable snapshot that the UI,
the API and the import check read. The same fold serves a live job (the worker passes it each event as it
comes) and a finished run (replayed from its directory's events.jsonl), so both read alike. No threads here:
the worker (jobs.py) owns them and guards a live job's state with its lock.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import torch

from .budget import CALIBRATION, PACE_WINDOW_SECONDS, CostEstimate, ModelCost, WorkPlan, plan_work, remaining_seconds
from .config import TrainConfig
from .run_directory import EVENTS_FILE, METADATA_FILE, read_events, read_run
from .schema import (
    EpochMetrics, EpochPoint, Evaluation, Event, PairedComparison, RunFinished, RunStarted, SeedFinished, SeedSummary,
    StatusMessage, StepMetrics, parse_event,
)
from .status import FINISHED, JobStatus

MAX_STEP_POINTS = 1000  # curve points kept per job (downsampled by 2 whenever exceeded): bounded memory


# Progress of a run replayed from disk whose model has no cost figures: training steps only.
STEPS_ONLY_COST = ModelCost(train_seconds_per_image=1.0, train_seconds_per_step=0.0, eval_seconds_per_image=0.0)


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of a job's state. Containers are tuples and read-only mappings of the frozen records
    of schema.py."""

    job_id: str
    status: JobStatus
    config: TrainConfig
    version: int  # increases with every change; redraw only when it moved
    queue_position: int | None  # 1-based among waiting jobs; None when not queued
    progress: float  # 0..1 over all seeds, training and evaluation weighted by their estimated cost
    eta_seconds: float | None  # while running: remaining work at the pace measured so far; else None
    message: str  # the latest status line ("Loading cifar10…")
    error: str  # why it failed / was cancelled / was interrupted
    device: str
    run_dir: str | None
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    steps: tuple[StepMetrics, ...]  # downsampled step events (loss and CE part per loss)
    epochs: tuple[EpochPoint, ...]  # per epoch: seed, epoch, per-loss test loss / accuracies
    latest: Mapping[str, Evaluation]  # loss -> the latest full evaluation (recall, groups, confusion matrix)
    comparisons: tuple[PairedComparison, ...]  # per seed and non-baseline loss: McNemar etc.
    summaries: Mapping[str, SeedSummary]  # loss -> across-seed summary of the balanced-accuracy difference
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    # The estimate made at submit (None for runs read back from disk) and its text ("about 1 min 40 s on
    # this machine").
    estimate_seconds: float | None = None
    estimate_text: str = ""
    time_limit_seconds: float | None = None  # wall time after which it is stopped as timed out; None: never
    # Who submitted it (a browser session or a client address). For comparing with the caller's own id
    # only: never show it to, or send it in an API answer to, anyone else.
    client_id: str | None = None
    # Stopped (the status already reads cancelled) but the worker is still ending the step under way and
    # writing what it trained; the run directory settles when this turns False.
    recording: bool = False
    # A stopped run that saved a training state: (seed, epoch) it goes on from, and the command that does it.
    resumable_from: tuple[int, int] | None = None
    resume_command: str = ""
    # The data copy and its files' hashes, from the run's start event ({} for runs that predate the record).
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_finished(self) -> bool:
        """Nothing about this job changes any more: a final status, and its run directory written."""
        return self.status in FINISHED and not self.recording


@dataclass
class RunState:
    """Mutable state of one run, folded from its events (`apply`); a live job's is guarded by the manager's
    lock."""

    job_id: str
    config: TrainConfig
    device: str
    submitted_at: float = field(default_factory=time.time)
    status: JobStatus = JobStatus.QUEUED
    version: int = 0
    message: str = "Waiting in the queue"
    error: str = ""
    run_dir: str | None = None
    # A stopped run that saved a training state: (seed, epoch) it goes on from, and the command that does it.
    resumable_from: tuple[int, int] | None = None
    resume_command: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # the data copy, from RunStarted
    started_at: float | None = None
    finished_at: float | None = None
    class_names: tuple[str, ...] = ()
    class_counts: tuple[int, ...] = ()
    total_steps: int = 0
    global_step: int = 0
    step_stride: int = 1
    steps: list[StepMetrics] = field(default_factory=list)
    epochs: list[EpochPoint] = field(default_factory=list)
    latest: dict[str, Evaluation] = field(default_factory=dict)
    comparisons: list[PairedComparison] = field(default_factory=list)
    summaries: dict[str, SeedSummary] = field(default_factory=dict)
    client_id: str | None = None
    estimate: CostEstimate | None = None
    time_limit_seconds: float | None = None
    # Stopped (the status already reads cancelled) while the worker still writes what it trained.
    recording: bool = False
    # Progress and ETA: the work plan in estimated seconds (from the "started" event), the evaluations done,
    # and monotonic clock readings: when the job started, when the work started (data loaded) and when the
    # last event came, with the ETA computed then.
    cost: ModelCost | None = None
    plan: WorkPlan | None = None
    evaluations_done: int = 0
    started_clock: float | None = None
    work_started_clock: float | None = None
    last_event_clock: float | None = None
    eta_at_last_event: float | None = None
    # (clock, estimated seconds done) at recent events: the pace of the last `PACE_WINDOW_SECONDS`.
    pace_samples: deque = field(default_factory=deque)

    def apply(self, event: Event | Mapping[str, Any], now: float | None = None) -> None:
        """Fold one event into the state: a record the engine emitted, or its JSON (replayed from events.jsonl),
        which is parsed first (a pydantic ValidationError, a ValueError, when it is not an event). `now` is the
        monotonic clock when it happened (default: now); it only matters for the ETA of a live job."""
        now = time.monotonic() if now is None else now
        if isinstance(event, Mapping):
            event = parse_event(event)
        if isinstance(event, StatusMessage):
            self.message = event.message
        elif isinstance(event, RunStarted):
            self.class_names = event.class_names
            self.class_counts = event.class_counts
            self.data = dict(event.data)
            self.total_steps = event.total_steps
            self.device = event.device
            self.message = f"Training on {self.device}"
            # The engine's evaluation sizes follow from the config (budget.epoch_evaluation_images mirrors it).
            self.plan = plan_work(self.config, self.cost or STEPS_ONLY_COST, event.num_train or sum(self.class_counts),
                                  event.num_test)
            self.work_started_clock = now
            self._measure(now)
        elif isinstance(event, StepMetrics):
            self.global_step = event.global_step
            if self.global_step % self.step_stride == 0 or not self.steps:
                self.steps.append(event)
                if len(self.steps) > MAX_STEP_POINTS:
                    self.steps = self.steps[::2]  # keeps the first point
                    self.step_stride *= 2
            self._measure(now)
        elif isinstance(event, EpochMetrics):
            self.global_step = event.global_step
            self.evaluations_done += 1
            self.latest = dict(event.evaluations)
            self.epochs.append(EpochPoint.of(event))
            self.message = f"Seed {event.seed}, epoch {event.epoch} evaluated"
            self._measure(now)
        elif isinstance(event, SeedFinished):
            self.comparisons.extend(event.comparisons)
        elif isinstance(event, RunFinished):
            self.summaries = dict(event.summaries)

    def _measure(self, now: float) -> None:
        """Recompute the ETA at an event: the work left at the pace measured since the work started."""
        if self.plan is None or self.work_started_clock is None:
            return
        done = self.plan.done_seconds(self.global_step, self.evaluations_done)
        samples = self.pace_samples
        samples.append((now, done))
        # Keep the newest sample at least a window old, so the window spans the whole last minute.
        while len(samples) > 2 and samples[1][0] <= now - PACE_WINDOW_SECONDS:
            samples.popleft()
        then, done_then = samples[0]
        recent = (done - done_then, now - then)
        self.eta_at_last_event = remaining_seconds(self.plan.total_seconds, done, now - self.work_started_clock, recent)
        self.last_event_clock = now

    def measured_pace(self) -> float | None:
        """Real seconds per estimated second over the whole work so far (1: the estimate was right; 2: the
        host ran at half the speed the estimate assumed); None before any work was measured."""
        if self.plan is None or self.work_started_clock is None or self.last_event_clock is None:
            return None
        done = self.plan.done_seconds(self.global_step, self.evaluations_done)
        elapsed = self.last_event_clock - self.work_started_clock
        return elapsed / done if done > 0 and elapsed > 0 else None

    def progress(self) -> float:
        if self.status == JobStatus.DONE:
            return 1.0
        return self.plan.progress(self.global_step, self.evaluations_done) if self.plan is not None else 0.0

    def eta_seconds(self, now: float) -> float | None:
        """Seconds left while running. Between events it counts down with the clock, so it neither freezes
        nor climbs during an evaluation (whose cost the ETA already includes); before the data is loaded it
        is the estimate less the time spent so far, never below the estimate's training and evaluation."""
        if self.status != JobStatus.RUNNING:
            return None
        if self.eta_at_last_event is not None and self.last_event_clock is not None:
            return max(0.0, self.eta_at_last_event - (now - self.last_event_clock))
        if self.estimate is not None and self.started_clock is not None:
            work = self.estimate.training_seconds + self.estimate.evaluation_seconds
            return max(work, self.estimate.total_seconds - (now - self.started_clock))
        return None

    def snapshot(self, queue_position: int | None) -> JobSnapshot:
        return JobSnapshot(
            job_id=self.job_id, status=self.status, config=self.config, version=self.version,
            queue_position=queue_position, progress=self.progress(), eta_seconds=self.eta_seconds(time.monotonic()),
            message=self.message, error=self.error, device=self.device, run_dir=self.run_dir,
            class_names=self.class_names, class_counts=self.class_counts, steps=tuple(self.steps),
            epochs=tuple(self.epochs), latest=MappingProxyType(dict(self.latest)), comparisons=tuple(self.comparisons),
            summaries=MappingProxyType(dict(self.summaries)), submitted_at=self.submitted_at,
            started_at=self.started_at, finished_at=self.finished_at,
            estimate_seconds=self.estimate.total_seconds if self.estimate is not None else None,
            estimate_text=self.estimate.text if self.estimate is not None else "",
            time_limit_seconds=self.time_limit_seconds, client_id=self.client_id, recording=self.recording,
            resumable_from=self.resumable_from, resume_command=self.resume_command, data=MappingProxyType(dict(self.data)),
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
    snapshot = state_from_run_dir(run_dir).snapshot(None)
    with _DISK_SNAPSHOTS_LOCK:
        _DISK_SNAPSHOTS[key] = snapshot
        while len(_DISK_SNAPSHOTS) > DISK_SNAPSHOT_CACHE_SIZE:
            _DISK_SNAPSHOTS.popitem(last=False)
    return snapshot


def finished_message(status: JobStatus) -> str:
    return "Finished" if status == JobStatus.DONE else status.label


def state_from_run_dir(run_dir: Path) -> RunState:
    """Rebuild a finished (or interrupted) run's state from its run directory."""
    record = read_run(run_dir)
    device = record.metadata.get("device", "cpu")
    job = RunState(record.run_id, record.config, device)
    try:  # only weights the progress of a stopped run; any figures do
        job.cost = CALIBRATION.cost(torch.device(device).type, record.config.model)
    except (ValueError, RuntimeError):
        job.cost = None
    for event in read_events(run_dir):
        job.apply(event)
    job.status = JobStatus(record.status)
    job.error = record.metadata.get("reason", "")
    if job.status == JobStatus.INTERRUPTED:
        job.error = job.error or "the app stopped while this run was training"
    job.message = finished_message(job.status)
    job.run_dir = str(run_dir)
    if record.resumable:
        job.resumable_from, job.resume_command = record.checkpoint_epoch, record.resume_command
    job.version = 1
    return job
