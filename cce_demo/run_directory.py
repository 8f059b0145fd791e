"""Run directories: self-describing training runs on disk (the format, its writer and its readers).

A run directory holds `run.json` (config, class names and counts, status, final metrics, versions,
timestamps), `events.jsonl` (the event history, appended as training goes), one safetensors file per
trained model and, while a run can still go on, one training state per seed (`checkpoint-seed<N>.safetensors`,
rewritten at the end of every epoch: training_state.py), from which `python -m cce_demo.train --resume DIR`
continues it. Every whole-file write goes to a temporary file first and is renamed into place, so a crash
never leaves a half-written file; loading validates and never unpickles.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from pydantic import BaseModel, ValidationError
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .config import TrainConfig
from .engine import RunResult
from .heads import prepare_for_loss
from .models import build_model
from .provenance import environment
from .schema import Event, FinalResults
from .status import JobStatus
from .per_image_predictions import PredictionsError, PerImagePredictions
from .per_image_predictions import from_tensors as predictions_from_tensors
from .per_image_predictions import to_tensors as predictions_to_tensors
from .training_state import SeedState, TrainingStateError, from_tensors, to_tensors

# Format 2: the records are typed (schema.py); its files have the same shape as format 1, which is still read
# (the shipped run and the grid cells were written in it).
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
METADATA_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
# Event kinds that trigger an append to events.jsonl (step events are buffered until the next of these), so
# the log on disk is at most one epoch behind.
FLUSH_KINDS = frozenset({"status", "started", "epoch", "seed_finished", "finished"})
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")  # \Z, not $: "$" also matches before a final newline
# Identifies this process for liveness checks of "running" runs (a pid alone is reused after restarts,
# e.g. pid 1 in every container).
PROCESS_TOKEN = secrets.token_hex(8)
FILE_MODE = 0o644
# Statuses a run with a training state can go on from: stopped by request, cut off by its budget, the process
# gone (a kill, a crash, a closed laptop) or an error outside training. A finished run's states are removed,
# and so are a diverged one's (it would diverge again).
RESUMABLE = frozenset({JobStatus.CANCELLED, JobStatus.TIMED_OUT, JobStatus.INTERRUPTED, JobStatus.FAILED})


class RunCorruptError(RuntimeError):
    """A run directory that cannot be read; the message names the directory and what is wrong."""


# ---------------------------------------------------------------- atomic writes


def _temporary_beside(path: Path) -> str:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, FILE_MODE)  # mkstemp makes 0600; run files are meant to be shared and served
    return temporary


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(to_jsonable(value), indent=1, allow_nan=False).encode())


def save_weights_atomic(path: Path, model: nn.Module, metadata: dict[str, str]) -> None:
    save_tensors_atomic(path, {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()},
                        metadata)


def save_tensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    temporary = _temporary_beside(path)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.chmod(temporary, FILE_MODE)  # save_file recreates the file with its own mode
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def to_jsonable(value: Any) -> Any:
    """Records (schema.py), dataclasses, tuples and dicts to plain JSON; NaN/inf become None (JSON has no NaN)."""
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------- writing a run


def package_versions() -> dict[str, str]:
    import numpy
    import safetensors

    return {
        "cce_demo": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
        "safetensors": safetensors.__version__, "python": platform.python_version(),
    }


def weights_file_name(loss: str, seed: int) -> str:
    return f"model-{loss}-seed{seed}.safetensors"


def predictions_file_name(seed: int) -> str:
    return f"predictions-seed{seed}.safetensors"


def checkpoint_file_name(seed: int) -> str:
    return f"checkpoint-seed{seed}.safetensors"


def new_run_id(config: TrainConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config.dataset}-{'-'.join(config.losses)}-{secrets.token_hex(3)}"


def _process_start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class RunWriter:
    """Writes one run directory as the training goes: pass every engine event to `record`, then call
    `finish` with the engine's result (or `fail` with a reason)."""

    def __init__(self, runs_root: str | os.PathLike, config: TrainConfig, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id(config)
        if not RUN_ID_PATTERN.match(self.run_id):
            raise ValueError(f"run_id: only letters, digits, '.', '_' and '-' are allowed, got {self.run_id!r}")
        self.run_dir = Path(runs_root) / self.run_id
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self._pending: list[str] = []
        self.metadata: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "run_id": self.run_id,
            "status": JobStatus.RUNNING,
            "reason": "",
            "config": config.to_dict(),
            "losses": list(config.losses),
            "created_at": _now(),
            "finished_at": None,
            "versions": package_versions(),
            # CPU model, threads, torch/torchvision, deterministic settings: what a bit-for-bit replay needs.
            "environment": environment(config.device),
            "owner": {"token": PROCESS_TOKEN, "pid": os.getpid(), "start_time": _process_start_time(os.getpid())},
            "class_names": None,
            "class_counts": None,
            "weights": {},
            "final": {},
        }
        self._write_metadata()

    def record(self, event: Event) -> None:
        self._pending.append(json.dumps(to_jsonable(event), allow_nan=False))
        if event.kind == "started":
            self.metadata.update(
                class_names=list(event.class_names), class_counts=list(event.class_counts), device=event.device,
                num_train=event.num_train, num_test=event.num_test, data_source=event.data_source,
                data=dict(getattr(event, "data", {}) or {}),
            )
            self._write_metadata()
        if event.kind in FLUSH_KINDS:
            self.flush_events()

    def flush_events(self) -> None:
        if not self._pending:
            return
        # Appending is not atomic, but a torn last line is skipped by `read_events`.
        with open(self.run_dir / EVENTS_FILE, "a", encoding="utf-8") as file:
            file.write("\n".join(self._pending) + "\n")
        self._pending.clear()

    def finish(self, result: RunResult, status: JobStatus | None = None) -> None:
        """Save every model trained (also on cancel) and the final metrics. `status` overrides the result's
        (the job layer maps the engine's 'diverged' to 'failed'). A run that finished or diverged loses its
        training states; a stopped one keeps them, to be resumed."""
        self.flush_events()
        final_status = status or result.status
        if final_status == JobStatus.DONE or result.status == JobStatus.DIVERGED:
            self.remove_checkpoints()
        predictions = {}
        if result.test_labels is not None:
            for seed, answers in result.predictions.items():
                tensors, metadata = predictions_to_tensors(result.test_labels, answers, seed, len(result.class_names))
                save_tensors_atomic(self.run_dir / predictions_file_name(seed), tensors, {**metadata, "run_id": self.run_id})
                predictions[str(seed)] = predictions_file_name(seed)
        weights = {}
        for seed, models in result.models.items():
            for loss, model in models.items():
                name = weights_file_name(loss, seed)
                save_weights_atomic(
                    self.run_dir / name, model, {"run_id": self.run_id, "loss": loss, "seed": str(seed)}
                )
                weights.setdefault(loss, {})[str(seed)] = name
        self.metadata.update(
            status=final_status,
            reason=result.reason,
            finished_at=_now(),
            weights=weights,
            predictions=predictions,  # seed -> file: the final evaluation's per-image answers (the gallery's)
            final={
                "baseline": result.baseline,
                "finished_seeds": result.finished_seeds,
                # For a stopped seed these are from its last completed epoch, not from the saved weights.
                "evaluations": {str(seed): value for seed, value in result.evaluations.items()},
                "comparisons": result.comparisons,
                "summaries": result.summaries,
            },
        )
        self._write_metadata()

    def fail(self, reason: str, status: JobStatus = JobStatus.FAILED) -> None:
        """Record why the run stopped outside training (an error, a second Ctrl-C); its training states stay,
        so it can be resumed from its last complete epoch."""
        self.flush_events()
        self.metadata.update(status=status, reason=reason, finished_at=_now())
        self._write_metadata()

    def save_checkpoint(self, state: SeedState) -> None:
        """The engine's end-of-epoch state of one seed, written atomically over the previous one. The event log
        is flushed first and its length recorded, so a resume can cut the log back to this epoch."""
        self.flush_events()
        events = self.run_dir / EVENTS_FILE
        tensors, metadata = to_tensors(state)
        metadata.update(run_id=self.run_id, events_bytes=str(events.stat().st_size if events.exists() else 0))
        save_tensors_atomic(self.run_dir / checkpoint_file_name(state.seed), tensors, metadata)
        self.metadata["checkpoint"] = {"seed": state.seed, "epoch": state.epoch, "saved_at": _now()}
        self._write_metadata()

    def remove_checkpoints(self) -> None:
        for path in self.run_dir.glob("checkpoint-seed*.safetensors"):
            path.unlink(missing_ok=True)
        self.metadata.pop("checkpoint", None)

    @classmethod
    def reopen(cls, run_dir: str | os.PathLike) -> tuple["RunWriter", dict[int, SeedState]]:
        """Take over an interrupted or stopped run to continue it: its saved states (seed -> state), its event
        log cut back to the last saved epoch, status running under this process. The resume is recorded in
        run.json (when, from which epoch, on which machine and threads)."""
        record = read_run(run_dir)
        if record.status == JobStatus.RUNNING:
            raise RunCorruptError(f"{record.run_dir}: it is still training in another process (pid {(record.metadata.get('owner') or {}).get('pid')})")
        if record.status not in RESUMABLE:
            raise RunCorruptError(f"{record.run_dir}: a {record.status} run cannot be resumed (only a stopped, interrupted or failed one)")
        states, events_bytes = read_checkpoints(record)
        if not states:
            raise RunCorruptError(f"{record.run_dir}: it has no saved training state (it stopped before its first epoch "
                                  "ended, or was written before runs could resume): train it again")
        writer = cls.__new__(cls)
        writer.run_id, writer.run_dir, writer._pending = record.run_id, record.run_dir, []
        events = writer.run_dir / EVENTS_FILE
        if events.exists() and events.stat().st_size > events_bytes:
            with open(events, "r+b") as file:  # what came after the last saved epoch is trained again
                file.truncate(events_bytes)
        latest = max(states.values(), key=lambda state: (record.config.seeds.index(state.seed), state.epoch))
        metadata = dict(record.metadata)
        resumes = list(metadata.get("resumes") or [])
        resumes.append({"at": _now(), "seed": latest.seed, "after_epoch": latest.epoch,
                        "previous_status": str(record.status), "environment": environment(record.config.device)})
        metadata.update(status=JobStatus.RUNNING, reason="", finished_at=None, resumes=resumes, weights={}, final={}, predictions={},
                        owner={"token": PROCESS_TOKEN, "pid": os.getpid(), "start_time": _process_start_time(os.getpid())})
        writer.metadata = metadata
        writer._write_metadata()
        return writer, states

    def _write_metadata(self) -> None:
        write_json_atomic(self.run_dir / METADATA_FILE, self.metadata)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------- reading runs


@dataclass(frozen=True)
class RunRecord:
    run_dir: Path
    metadata: dict[str, Any]
    config: TrainConfig
    status: JobStatus  # as on disk, except a RUNNING run whose process is gone, which reads as INTERRUPTED

    @property
    def run_id(self) -> str:
        return self.metadata["run_id"]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("class_names") or ())

    @property
    def class_counts(self) -> tuple[int, ...]:
        return tuple(self.metadata.get("class_counts") or ())

    @property
    def final(self) -> dict[str, Any]:
        return self.metadata.get("final") or {}

    @property
    def results(self) -> FinalResults:
        """What the run recorded at its end, typed (schema.py); raises RunCorruptError when it does not parse."""
        try:
            return FinalResults.model_validate(self.final)
        except ValidationError as error:
            raise RunCorruptError(f"{self.run_dir}: its final results do not parse ({error.error_count()} problems)") from None

    @property
    def has_weights(self) -> bool:
        """Whether its models can be loaded: saved at the end, or (an interrupted run) from its last saved epoch."""
        return bool(self.metadata.get("weights")) or self.checkpoint_epoch is not None

    @property
    def checkpoint_epoch(self) -> tuple[int, int] | None:
        """(seed, epoch) of the last training state saved, while its file is there; None otherwise."""
        saved = self.metadata.get("checkpoint")
        if not isinstance(saved, dict) or not isinstance(saved.get("seed"), int) or not isinstance(saved.get("epoch"), int):
            return None
        if not (self.run_dir / checkpoint_file_name(saved["seed"])).is_file():
            return None
        return saved["seed"], saved["epoch"]

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE and self.checkpoint_epoch is not None

    @property
    def resume_command(self) -> str:
        """The command that continues it (the path as the app knows it: the runs folder's name and the id)."""
        return f"python -m cce_demo.train --resume {Path(self.run_dir.parent.name) / self.run_id}"


def owner_is_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the process that wrote a "running" run still runs: this process, or a live process with the
    same pid *and* start time (so a reused pid after a restart does not count)."""
    if not owner:
        return False
    if owner.get("token") == PROCESS_TOKEN:
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    start_time = _process_start_time(pid)
    return start_time is not None and start_time == owner.get("start_time")


def read_run(run_dir: str | os.PathLike) -> RunRecord:
    run_dir = Path(run_dir)
    path = run_dir / METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise RunCorruptError(f"{run_dir}: no {METADATA_FILE} (not a run directory, or it was never finished writing)") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunCorruptError(f"{run_dir}: {METADATA_FILE} is unreadable ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format_version") not in READABLE_FORMATS:
        raise RunCorruptError(f"{run_dir}: {METADATA_FILE} is not a cce_demo run of format {' or '.join(map(str, READABLE_FORMATS))}")
    try:
        config = TrainConfig.from_dict(metadata["config"])
        if not RUN_ID_PATTERN.match(str(metadata["run_id"])):
            raise ValueError(f"bad run_id {metadata['run_id']!r}")
    except (KeyError, TypeError, ValueError) as error:
        raise RunCorruptError(f"{run_dir}: invalid metadata ({error})") from error
    try:
        status = JobStatus(metadata.get("status", ""))
    except ValueError:
        raise RunCorruptError(f"{run_dir}: unknown status {metadata.get('status')!r}") from None
    if status == JobStatus.RUNNING and not owner_is_alive(metadata.get("owner")):
        status = JobStatus.INTERRUPTED
    return RunRecord(run_dir, metadata, config, status)


def list_runs(runs_roots: Iterable[str | os.PathLike]) -> tuple[list[RunRecord], list[str]]:
    """Every readable run under the given roots, newest first, and one message per unreadable directory
    (a corrupt run never hides the others)."""
    records, problems = [], []
    for root in runs_roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for run_dir in sorted(root.iterdir()):
            if not run_dir.is_dir() or run_dir.name.startswith("."):
                continue
            try:
                records.append(read_run(run_dir))
            except RunCorruptError as error:
                problems.append(str(error))
    records.sort(key=lambda record: record.metadata.get("created_at") or "", reverse=True)
    return records, problems


def read_events(run_dir: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The event history, one line at a time (a long run's log is never held whole: an imported run may carry
    a large one); a torn or garbled line (a crash mid-append) is skipped, not fatal."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                yield event


_EPOCH_COUNTS: dict[tuple[str, int, int], int] = {}
_EPOCH_COUNTS_LOCK = threading.Lock()
EPOCH_COUNT_CACHE_SIZE = 512


def epochs_evaluated(run_dir: str | os.PathLike) -> int:
    """How many epochs the run evaluated, over all its seeds: the epoch events of its log, each line parsed (an
    imported log need not order its keys as this writer does). Cached until the log changes (size, mtime)."""
    path = Path(run_dir) / EVENTS_FILE
    try:
        status = path.stat()
    except OSError:
        return 0
    key = (str(path), status.st_mtime_ns, status.st_size)
    with _EPOCH_COUNTS_LOCK:
        if key in _EPOCH_COUNTS:
            return _EPOCH_COUNTS[key]
    count = sum(1 for event in read_events(run_dir) if event.get("kind") == "epoch")
    with _EPOCH_COUNTS_LOCK:
        if len(_EPOCH_COUNTS) >= EPOCH_COUNT_CACHE_SIZE:
            _EPOCH_COUNTS.clear()
        _EPOCH_COUNTS[key] = count
    return count


def read_checkpoints(record: RunRecord) -> tuple[dict[int, SeedState], int]:
    """The run's saved training states (seed -> state) and the event-log length the latest one recorded."""
    states, events_bytes = {}, 0
    for seed in record.config.seeds:
        path = record.run_dir / checkpoint_file_name(seed)
        if not path.is_file():
            continue
        try:
            with safe_open(str(path), framework="pt") as file:
                metadata = file.metadata() or {}
                tensors = {key: file.get_tensor(key) for key in file.keys()}
            state = from_tensors(tensors, metadata)
        except (OSError, SafetensorError, TrainingStateError) as error:
            raise RunCorruptError(f"{record.run_dir}: cannot read {path.name} ({error})") from error
        if state.seed != seed or set(state.losses) != set(record.config.losses):
            raise RunCorruptError(f"{record.run_dir}: {path.name} holds seed {state.seed} of {sorted(state.losses)}, "
                                  f"not seed {seed} of {sorted(record.config.losses)}")
        states[seed] = state
        events_bytes = max(events_bytes, int(metadata.get("events_bytes") or 0))
    return states, events_bytes


def read_predictions(record: RunRecord, seed: int) -> tuple[torch.Tensor, dict[str, PerImagePredictions]] | None:
    """The final evaluation's per-image answers of one seed (labels, loss -> answers), checked; None for a run
    that did not record them (written before they were, or a seed that did not finish)."""
    name = (record.metadata.get("predictions") or {}).get(str(seed))
    if not isinstance(name, str) or name != predictions_file_name(seed) or not (record.run_dir / name).is_file():
        return None
    try:
        with safe_open(str(record.run_dir / name), framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}
        return predictions_from_tensors(tensors, metadata)
    except (OSError, SafetensorError, PredictionsError) as error:
        raise RunCorruptError(f"{record.run_dir}: cannot read {name} ({error})") from error


def _checkpoint_models(record: RunRecord, seed: int | None) -> dict[str, nn.Module]:
    """An interrupted run's models as they were after its last complete epoch."""
    states, _ = read_checkpoints(record)
    chosen = seed if seed is not None else (record.checkpoint_epoch or (None,))[0]
    if chosen not in states:
        raise RunCorruptError(f"{record.run_dir}: no saved state of seed {chosen}; saved seeds: {sorted(states)}")
    num_classes = len(record.class_names) or record.config.num_classes
    models = {}
    for loss, state in states[chosen].model_states.items():
        model = prepare_for_loss(build_model(record.config.model, num_classes), loss)
        try:
            model.load_state_dict(dict(state), strict=True)
        except RuntimeError as error:
            raise RunCorruptError(f"{record.run_dir}: the saved {loss} model of seed {chosen} does not fit ({error})") from error
        models[loss] = model.eval()
    return models


def load_models(record: RunRecord, seed: int | None = None) -> dict[str, nn.Module]:
    """Rebuild the run's models (one per loss) from the directory alone, in eval mode on the CPU. `seed`
    picks among several seeds (default: the first saved). Weights are read with safetensors (no pickle) and
    must match the architecture exactly. A run interrupted before it saved its models gives those of its last
    complete epoch."""
    weights = record.metadata.get("weights") or {}
    if not weights and record.checkpoint_epoch is not None:
        return _checkpoint_models(record, seed)
    if not weights:
        raise RunCorruptError(f"{record.run_dir}: this run has no saved models (status {record.status})")
    num_classes = len(record.class_names) or record.config.num_classes
    models = {}
    for loss, by_seed in weights.items():
        chosen = str(seed) if seed is not None else sorted(by_seed, key=int)[0]
        if chosen not in by_seed:
            raise RunCorruptError(f"{record.run_dir}: no {loss} model for seed {chosen}; saved seeds: {sorted(by_seed)}")
        file_name = by_seed[chosen]
        path = record.run_dir / Path(file_name).name  # never follow a path out of the run directory
        # The same head the loss trained with (LDAM: a scaled cosine classifier, same parameter names).
        model = prepare_for_loss(build_model(record.config.model, num_classes), loss)
        try:
            state = load_file(str(path))  # a missing file (deleted meanwhile) is an OSError, handled below
            model.load_state_dict(state, strict=True)
        except (OSError, SafetensorError, RuntimeError, ValueError) as error:
            raise RunCorruptError(f"{record.run_dir}: cannot load {path.name} ({error})") from error
        models[loss] = model.eval()
    return models
