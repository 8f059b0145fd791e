"""Share a run as one zip: export a run directory (plus CSVs of its training curves and per-class recall), and
import such a zip safely as a fresh run directory.

An upload is untrusted. Import accepts only the file names an export writes, never writes outside a new run
directory, bounds the unpacked size while it streams (a lying header cannot get past), reads weights only as
safetensors (nothing is ever unpickled), checks run.json and events.jsonl against what the app reads and the
weights against the model the config names, and only then renames the validated directory into place. Every
refusal is an `ImportRefused` naming the reason, and leaves nothing behind.

An import obeys the same disk rules as a finished job (`retention.DiskRules`): one that could not fit is
refused before anything is written, and retention runs right after it. Every number is range-checked (finite,
probabilities in [0, 1], counts no larger than the test set, finite weights), and events.jsonl may hold only
the event kinds the trainer writes, no more lines than a run of its config can produce.
"""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import threading
import time
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Mapping, Sequence

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .config import TrainConfig
from .datasets import dataset_spec
from .metrics import GROUP_NAMES
from .models import build_model
from .retention import DiskRules, apply_retention, received_stamp, runs_on_disk
from .run_directory import (
    EVENTS_FILE, FILE_MODE, METADATA_FILE, READABLE_FORMATS, RUN_ID_PATTERN, RunCorruptError, read_events, read_run,
    predictions_file_name, weights_file_name, write_json_atomic,
)
from .per_image_predictions import PredictionsError
from .per_image_predictions import from_tensors as predictions_from_tensors
from .run_state import state_from_run_dir
from .schema import (
    EpochMetrics, Evaluation, PairedComparison, RunFinished, RunMetadata, RunStarted, SeedFinished, StatusMessage,
    StepMetrics,
)
from .status import JobStatus

CURVES_FILE = "curves.csv"
RECALL_FILE = "recall.csv"
# Derived from events.jsonl and run.json: written by export, accepted by import but not kept (a run directory
# never holds them, and a hand-edited CSV could disagree with the events it claims to summarise).
DERIVED_FILES = (CURVES_FILE, RECALL_FILE)
WEIGHTS_NAME = re.compile(r"^model-([a-z][a-z_]{0,39})-seed(0|[1-9][0-9]{0,9})\.safetensors$")
PREDICTIONS_NAME = re.compile(r"^predictions-seed(0|[1-9][0-9]{0,9})\.safetensors$")
CURVES_COLUMNS = ("seed", "step", "global_step", "epoch", "loss", "training_loss", "cross_entropy_part")
RECALL_COLUMNS = ("seed", "loss", "class_index", "class_name", "training_count", "recall")

# Limits on an upload. The largest preset run (authors: ResNet-32, 3 losses, 200 epochs) with 3 seeds on
# CIFAR-100 unpacks to roughly 150 MiB (weights 17 MiB, events with per-epoch 100x100 confusion matrices and
# the CSVs the rest), so 256 MiB admits every realistic run while bounding what one upload can put on disk.
MAX_IMPORT_BYTES = 256 * 2**20  # total uncompressed, and the zip file itself
# 5 losses x 10 seeds of weights, run.json, events.jsonl and the two CSVs: 54.
MAX_IMPORT_FILES = 64
MAX_METADATA_BYTES = 16 * 2**20  # run.json is parsed whole
MAX_EVENT_LINE_BYTES = 8 * 2**20  # one epoch event of 5 CIFAR-100 models is about 0.3 MiB
MAX_CLASS_NAME_LENGTH = 100
MAX_RENAMES = 1000
STAGING_PREFIX = ".import-"  # a dot-name: the run list skips it
STALE_STAGING_SECONDS = 3600  # an import takes seconds; one older than this was killed
COPY_CHUNK_BYTES = 1 << 20
ACCEPTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# Statuses a run directory may hold on disk while its training is in progress; an imported one is marked
# "interrupted" (no process here trains it, and its models, if any, are from its last saved state).
UNFINISHED_STATUSES = ("running", "queued")
INTERRUPTED_REASON = "it was still training when it was exported; its models are from its last saved state"
# The event kinds the trainer writes (schema.py) and the fields of each; any other kind or field in an
# upload is refused, not kept (padding known kinds with unknown fields was an amplifier too).
EVENT_FIELDS = {model.model_fields["kind"].default: frozenset(model.model_fields)
                for model in (StatusMessage, RunStarted, StepMetrics, EpochMetrics, SeedFinished, RunFinished)}
EVENT_KINDS = frozenset(EVENT_FIELDS)
# A step event of the largest loss set the grids train (7 losses) is about 0.6 KiB.
MAX_STEP_LINE_BYTES = 4 * 2**10
# An epoch event holds each model's evaluation with its confusion matrix: about 0.3 MiB for 5 CIFAR-100 models.
MAX_EPOCH_LINE_BYTES = 2 * 2**20
# The config bounds the step events (one per training step and seed), but an uploader picks the config: batch
# 1 over 1,000 epochs would allow millions of lines to parse at import and again at every first open. An
# upload through the app is held to this many; every preset on a long-tailed subset of ratio 10 or more with
# five seeds stays under it (tests/test_transfer.py checks). A bigger run of your own is imported on the
# command line, where `import_run(..., max_step_events=None)` lifts the cap.
MAX_STEP_EVENTS = 200_000
# Status lines of one run: the loading messages (a download reports its progress) and a few more per seed.
MAX_STATUS_EVENTS = 400
MAX_INTEGER_DIGITS = 13  # no count, step or seed of a real run comes near 10^12 (a 4,000-digit one broke SSE)
MAX_MAGNITUDE = 1e12  # any float: losses, rates, throughputs


class ExportRefused(ValueError):
    """A run that cannot be exported; the message names the run and the reason."""


class ImportRefused(ValueError):
    """An upload that is not a run this app can import; the message names the reason."""


@dataclass(frozen=True)
class ImportedRun:
    run_id: str  # the id it has here: the zip's own, or `<id>-imported-<n>` when that was taken
    run_dir: Path
    renamed: bool
    original_run_id: str
    status: str
    removed: tuple[str, ...] = ()  # older runs retention removed to make room for it

    def to_dict(self) -> dict[str, Any]:
        """For the API: the run's id and what happened, without the server's paths."""
        return {"run_id": self.run_id, "original_run_id": self.original_run_id, "renamed": self.renamed, "status": self.status}


# ---------------------------------------------------------------- CSVs (pure)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_cell(value: Any) -> Any:
    """A value as a CSV cell that no spreadsheet runs as a formula: text starting with = + - @ or a control
    character gets a leading apostrophe (OWASP's advice for CSV injection); numbers stay numbers, None empty."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        # repr-exact floats (csv writes str(), the shortest round-trip form); None (NaN in the run) stays empty.
        writer.writerow([spreadsheet_cell(value) for value in row])
    return buffer.getvalue()


def curve_rows(events: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """One row per step event and loss, in `CURVES_COLUMNS` order: every logged step, not the UI's
    downsampled curve."""
    for event in events:
        if event.get("kind") != "step":
            continue
        cross_entropy = event.get("cross_entropy") or {}
        for loss, value in (event.get("losses") or {}).items():
            yield (event["seed"], event["step"], event["global_step"], event["epoch"], loss, value, cross_entropy.get(loss))


def curves_csv(events: Iterable[Mapping[str, Any]]) -> str:
    return _csv_text(CURVES_COLUMNS, curve_rows(events))


def last_evaluations(events: Iterable[Mapping[str, Any]], final: Mapping[str, Any] | None = None) -> dict[int, dict[str, Any]]:
    """Seed -> (loss -> evaluation) from the last epoch event of each seed; seeds without an epoch event in
    the log fall back to run.json's final evaluations (the same numbers when both exist)."""
    latest: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.get("kind") == "epoch":
            latest[int(event["seed"])] = dict(event["evaluations"])
    for seed, evaluations in ((final or {}).get("evaluations") or {}).items():
        latest.setdefault(int(seed), dict(evaluations))
    return dict(sorted(latest.items()))


def recall_rows(
    evaluations: Mapping[int, Mapping[str, Any]], class_names: Sequence[str], class_counts: Sequence[int]
) -> Iterator[tuple[Any, ...]]:
    for seed, by_loss in evaluations.items():
        for loss, evaluation in by_loss.items():
            for index, recall in enumerate(evaluation["per_class_recall"]):
                name = class_names[index] if index < len(class_names) else str(index)
                count = class_counts[index] if index < len(class_counts) else None
                yield (seed, loss, index, name, count, recall)


def recall_csv(evaluations: Mapping[int, Mapping[str, Any]], class_names: Sequence[str], class_counts: Sequence[int]) -> str:
    return _csv_text(RECALL_COLUMNS, recall_rows(evaluations, class_names, class_counts))


# ---------------------------------------------------------------- export


def write_run_zip(run_dir: str | os.PathLike, destination_dir: str | os.PathLike) -> Path:
    """Write `<destination_dir>/<run_id>.zip` holding the run's run.json, events.jsonl and weights plus the
    generated curves.csv and recall.csv; returns its path. Only reads `run_dir` (a read-only shipped run
    works), and writes the zip atomically. Raises `ExportRefused` for a run that is unreadable, still
    training, never started or missing a model file."""
    run_dir = Path(run_dir)
    try:
        record = read_run(run_dir)
    except RunCorruptError as error:
        raise ExportRefused(f"export: {error}") from error
    run_id = record.run_id
    if record.status == "running":
        raise ExportRefused(f"export: run {run_id!r} is still training; export it when it has finished")
    if not record.class_names or not (run_dir / EVENTS_FILE).is_file():
        raise ExportRefused(f"export: run {run_id!r} never started training (no class names or no event log); there is nothing to export")
    names = [METADATA_FILE, EVENTS_FILE]
    for loss, by_seed in sorted((record.metadata.get("weights") or {}).items()):
        for seed, file_name in sorted(by_seed.items(), key=lambda item: int(item[0])):
            expected = weights_file_name(loss, int(seed))
            if file_name != expected:
                raise ExportRefused(f"export: run {run_id!r} names its {loss} model of seed {seed} {file_name!r}, not {expected!r}")
            if not (run_dir / file_name).is_file():
                raise ExportRefused(f"export: run {run_id!r} is missing its model file {file_name}")
            names.append(file_name)
    for seed, file_name in sorted((record.metadata.get("predictions") or {}).items(), key=lambda item: int(item[0])):
        if file_name == predictions_file_name(int(seed)) and (run_dir / file_name).is_file():
            names.append(file_name)  # the final per-image answers (the disagreement gallery's), when recorded
    derived = {  # two streaming passes over the log
        CURVES_FILE: curves_csv(read_events(run_dir)),
        RECALL_FILE: recall_csv(last_evaluations(read_events(run_dir), record.final), record.class_names, record.class_counts),
    }
    destination_dir = Path(destination_dir)
    destination_dir.mkdir(parents=True, exist_ok=True)
    destination = destination_dir / f"{run_id}.zip"
    handle, temporary = tempfile.mkstemp(dir=destination_dir, prefix=f".{destination.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in names:
                    archive.write(run_dir / name, arcname=name)
                stamp = time.localtime()[:6]
                for name, text in derived.items():
                    info = zipfile.ZipInfo(name, date_time=stamp)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
                    archive.writestr(info, text.encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


# ---------------------------------------------------------------- import: the zip's entries (pure)


def entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why this entry may not be extracted, or None. Only the name and the header are looked at."""
    name = getattr(info, "orig_filename", None) or info.filename
    if "\x00" in name or any(ord(character) < 32 for character in name):
        return "has a control character in its name"
    if "\\" in name:
        return "uses a backslash in its name (the zip must hold the run's files at its top level)"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "leaves the run directory"
    if name.endswith("/") or info.is_dir():
        return "is a directory (the zip must hold the run's files at its top level, as Export writes them)"
    if "/" in name:
        return "is inside a folder (the zip must hold the run's files at its top level, as Export writes them)"
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        return "is a symbolic link"
    if file_type not in (0, stat.S_IFREG):
        return "is not a regular file"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in ACCEPTED_COMPRESSION:
        return f"uses compression method {info.compress_type}; only stored and deflated entries are accepted"
    if name not in (METADATA_FILE, EVENTS_FILE, *DERIVED_FILES) and not WEIGHTS_NAME.match(name) and not PREDICTIONS_NAME.match(name):
        return (f"is not a file of an exported run (expected {METADATA_FILE}, {EVENTS_FILE}, {CURVES_FILE}, {RECALL_FILE}, "
                "model-<loss>-seed<N>.safetensors and predictions-seed<N>.safetensors)")
    return None


def check_entries(infos: Sequence[zipfile.ZipInfo]) -> None:
    """Refuse, from the central directory alone and before anything is written, a zip that is empty, has too
    many entries, an entry that is not one of a run's plain files, a duplicate name, or too large a total."""
    if not infos:
        raise ImportRefused("import: the zip is empty")
    if len(infos) > MAX_IMPORT_FILES:
        raise ImportRefused(f"import: the zip holds {len(infos)} entries; a run has at most {MAX_IMPORT_FILES}")
    seen: set[str] = set()
    for info in infos:
        problem = entry_problem(info)
        if problem:
            raise ImportRefused(f"import: entry {info.filename!r} {problem}")
        if info.filename in seen:
            raise ImportRefused(f"import: entry {info.filename!r} appears twice")
        seen.add(info.filename)
    for required in (METADATA_FILE, EVENTS_FILE):
        if required not in seen:
            raise ImportRefused(f"import: the zip has no {required} (is it a run exported from this app?)")
    total = sum(info.file_size for info in infos)
    if total > MAX_IMPORT_BYTES:
        raise ImportRefused(f"import: the zip would unpack to {_mebibytes(total)}, more than the {_mebibytes(MAX_IMPORT_BYTES)} limit")
    metadata_size = next(info.file_size for info in infos if info.filename == METADATA_FILE)
    if metadata_size > MAX_METADATA_BYTES:
        raise ImportRefused(f"import: {METADATA_FILE} is {_mebibytes(metadata_size)}, more than the {_mebibytes(MAX_METADATA_BYTES)} limit")


def declared_entry_count(file: BinaryIO) -> int | None:
    """The entry count in the end-of-central-directory record, read before `zipfile` builds one object per
    entry (a small zip can declare millions of tiny entries). None when there is no such record (not a zip:
    `zipfile` then says so); 0xFFFF means a zip64 count, which is far above any run's."""
    file.seek(0, os.SEEK_END)
    size = file.tell()
    tail_size = min(size, 22 + 0xFFFF)  # the record and at most a maximal comment
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or position + 22 > len(tail):
        return None
    return struct.unpack("<H", tail[position + 10 : position + 12])[0]


def _mebibytes(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def copy_limited(source: BinaryIO, destination: BinaryIO | None, name: str, declared: int, budget: int) -> int:
    """Copy an entry's bytes while counting them: stop, before writing the excess, as soon as it yields more
    than its header declared or more than `budget`. The check does not rely on the zip reader honouring the
    header. `destination` None counts without keeping (the derived CSVs)."""
    copied = 0
    while chunk := source.read(COPY_CHUNK_BYTES):
        copied += len(chunk)
        if copied > budget:
            limit = _mebibytes(MAX_IMPORT_BYTES)
            raise ImportRefused(f"import: the zip unpacks to more than the {limit} limit (stopped in entry {name!r})")
        if copied > declared:
            raise ImportRefused(f"import: entry {name!r} holds more than the {declared} bytes its header declares")
        if destination is not None:
            destination.write(chunk)
    if copied != declared:
        raise ImportRefused(f"import: entry {name!r} holds {copied} bytes, not the {declared} its header declares")
    return copied


def _extract(archive: zipfile.ZipFile, infos: Sequence[zipfile.ZipInfo], staging: Path) -> None:
    budget = MAX_IMPORT_BYTES
    for info in infos:
        keep = info.filename not in DERIVED_FILES
        try:
            with archive.open(info) as source:
                if not keep:
                    budget -= copy_limited(source, None, info.filename, info.file_size, budget)
                    continue
                # The name passed `entry_problem` (a plain top-level name), and "x" never overwrites.
                with open(staging / info.filename, "xb") as destination:
                    budget -= copy_limited(source, destination, info.filename, info.file_size, budget)
        except ImportRefused:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as error:
            # An OSError is not caught: reading the upload or writing runs_dir failed on this server.
            raise ImportRefused(f"import: entry {info.filename!r} is damaged ({error})") from error
        if keep:
            os.chmod(staging / info.filename, FILE_MODE)


# ---------------------------------------------------------------- import: run.json and events.jsonl (pure)


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:  # 1e999 parses as inf
        raise ValueError(f"{text[:30]} is out of range for a run's numbers")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a {len(text)}-digit number is out of range for a run's numbers")
    return int(text)


def parse_json(text: str) -> Any:
    """Strict JSON: NaN and Infinity (which Python would accept) are refused, the app writing them as null; so
    are numbers no run produces (1e999, which Python reads as infinity, and integers of more than 13 digits)."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(values: Iterable[Any]) -> bool:
    """Numbers or None (the app writes a NaN as null)."""
    return all(value is None or _is_number(value) for value in values)


def _counts(values: Iterable[Any], maximum: int | None = None) -> bool:
    return all(_is_whole(value) and value >= 0 and (maximum is None or value <= maximum) for value in values)


def _fraction(value: Any) -> bool:
    """A probability or rate: a number in [0, 1], or None (a NaN written by the app)."""
    return value is None or (_is_number(value) and 0.0 <= value <= 1.0)


def _difference(value: Any) -> bool:
    """A difference of two fractions: a number in [-1, 1]."""
    return _is_number(value) and -1.0 <= value <= 1.0


def _nonnegative(value: Any) -> bool:
    return value is None or (_is_number(value) and 0.0 <= value <= MAX_MAGNITUDE)


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise ImportRefused(f"import: {where}: {problem}")


def _known_fields(record: dict, model: type, what: str, where: str) -> None:
    """Only the fields the trainer writes (schema.py): padding a real record with others was an amplifier."""
    unknown = sorted(set(record) - set(model.model_fields))
    _require(not unknown, where, f"{what} has no field {', '.join(map(repr, unknown[:5]))}")


def check_evaluation(evaluation: Any, num_classes: int, where: str, test_images: int | None = None) -> None:
    """One model's test evaluation, as the compare view and recall.csv read it, every number in its range:
    accuracies and recalls in [0, 1], a non-negative test loss, a complement entropy within [0, log(K − 1)],
    and confusion counts that add up to at most the test set (`test_images`)."""
    _require(isinstance(evaluation, dict), where, "an evaluation must be an object")
    _known_fields(evaluation, Evaluation, "an evaluation", where)
    _require("test_loss" in evaluation and _nonnegative(evaluation["test_loss"]), where, "test_loss must be a number >= 0")
    for key in ("accuracy", "balanced_accuracy"):
        _require(key in evaluation and _fraction(evaluation[key]), where, f"{key} must be a number in [0, 1]")
    entropy = evaluation.get("complement_entropy", "missing")
    top = math.log(max(num_classes - 1, 1)) + 1e-6
    _require(entropy is None or (_is_number(entropy) and 0.0 <= entropy <= top), where,
             f"complement_entropy must be a number in [0, log(K - 1) = {top:.3f}]")
    recall = evaluation.get("per_class_recall")
    _require(isinstance(recall, list) and len(recall) == num_classes and all(_fraction(value) for value in recall),
             where, f"per_class_recall must be {num_classes} numbers in [0, 1]")
    groups = evaluation.get("group_recall")
    _require(isinstance(groups, dict) and set(groups) <= set(GROUP_NAMES) and all(_fraction(v) for v in groups.values()),
             where, f"group_recall must map {', '.join(GROUP_NAMES)} to numbers in [0, 1]")
    corrected = evaluation.get("prior_corrected")
    _require(corrected is None or (
        isinstance(corrected, dict) and _fraction(corrected.get("accuracy")) and _fraction(corrected.get("balanced_accuracy"))
        and (corrected.get("tau") is None or _nonnegative(corrected.get("tau")))
        and isinstance(corrected.get("per_class_recall", []), list) and len(corrected.get("per_class_recall", [])) <= num_classes
        and all(_fraction(value) for value in corrected.get("per_class_recall", []))
        and isinstance(corrected.get("group_recall", {}), dict) and all(_fraction(v) for v in corrected.get("group_recall", {}).values())
    ), where, "prior_corrected must hold accuracies and recalls in [0, 1]")
    _require(evaluation.get("num_images") is None or (_is_whole(evaluation["num_images"]) and 0 <= evaluation["num_images"]
                                                      <= (test_images or MAX_MAGNITUDE)), where, "num_images must be a count of test images")
    matrix = evaluation.get("confusion_matrix")
    _require(isinstance(matrix, list) and len(matrix) == num_classes
             and all(isinstance(row, list) and len(row) == num_classes and _counts(row, test_images) for row in matrix),
             where, f"confusion_matrix must be {num_classes}x{num_classes} counts")
    if test_images is not None:
        _require(sum(sum(row) for row in matrix) <= test_images, where,
                 f"confusion_matrix counts more images than the {test_images:,} of the test set")


def check_evaluations(evaluations: Any, losses: Sequence[str], num_classes: int, where: str, test_images: int | None = None) -> None:
    _require(isinstance(evaluations, dict) and set(evaluations) <= set(losses), where,
             f"evaluations must be keyed by the run's losses {list(losses)}")
    for loss, evaluation in evaluations.items():
        check_evaluation(evaluation, num_classes, f"{where}, {loss}", test_images)


def _mcnemar(test: Any, test_images: int) -> bool:
    return (isinstance(test, dict) and _counts((test.get("only_a_correct"), test.get("only_b_correct")), test_images)
            and _is_number(test.get("p_value")) and _fraction(test.get("p_value")))


def check_comparison(comparison: Any, config: TrainConfig, where: str) -> None:
    """One paired comparison, as the verdict and the per-class differences read it."""
    test_images = config.test_images
    _require(isinstance(comparison, dict), where, "a comparison must be an object")
    _known_fields(comparison, PairedComparison, "a comparison", where)
    _require(comparison.get("seed") in config.seeds and _is_whole(comparison.get("seed")), where, "seed must be one of the run's seeds")
    _require(comparison.get("baseline") in config.losses and comparison.get("other") in config.losses, where,
             "baseline and other must be the run's losses")
    _require(_mcnemar(comparison.get("mcnemar"), test_images), where,
             f"mcnemar must hold only_a_correct and only_b_correct (counts up to {test_images:,}) and p_value in [0, 1]")
    per_class = comparison.get("per_class_mcnemar", [])
    _require(isinstance(per_class, list) and len(per_class) <= config.num_classes
             and all(_mcnemar(test, test_images) for test in per_class), where,
             f"per_class_mcnemar must be at most {config.num_classes} McNemar results")
    for key in ("accuracy_difference", "balanced_accuracy_difference"):
        _require(_difference(comparison.get(key)), where, f"{key} must be a number in [-1, 1]")


def check_summaries(summaries: Any, config: TrainConfig, where: str) -> None:
    """Per non-baseline loss, the across-seed summary the verdict reads: differences, mean and interval, all
    in [-1, 1]."""
    _require(isinstance(summaries, dict) and set(summaries) <= set(config.losses), where,
             "summaries must be keyed by the run's losses")
    for loss, summary in summaries.items():
        _require(isinstance(summary, dict), where, f"the summary of {loss} must be an object")
        differences, interval = summary.get("differences", []), summary.get("interval")
        _require(isinstance(differences, list) and len(differences) <= len(config.seeds)
                 and all(_difference(value) for value in differences), where, f"{loss}: differences must be numbers in [-1, 1]")
        _require(summary.get("mean") is None or _difference(summary.get("mean")), where, f"{loss}: mean must be in [-1, 1]")
        _require(interval is None or (isinstance(interval, list) and len(interval) == 2
                                      and all(_is_number(end) for end in interval)),
                 where, f"{loss}: interval must be two numbers")


def check_metadata(metadata: Any) -> TrainConfig:
    """run.json against the current schema and the fields the app reads; returns its config."""
    _require(isinstance(metadata, dict), METADATA_FILE, "must be a JSON object")
    _require(metadata.get("format_version") in READABLE_FORMATS, METADATA_FILE,
             f"format_version is {metadata.get('format_version')!r}; this app reads format {' or '.join(map(str, READABLE_FORMATS))}")
    run_id = metadata.get("run_id")
    # fullmatch: the pattern's "$" would also let a trailing newline into a directory name.
    _require(isinstance(run_id, str) and bool(RUN_ID_PATTERN.fullmatch(run_id)), METADATA_FILE,
             f"run_id {run_id!r} is not a valid run id (letters, digits, '.', '_' and '-')")
    _require(isinstance(metadata.get("config"), dict), METADATA_FILE, "config must be an object")
    try:
        config = TrainConfig.from_dict(metadata["config"])
    except ValueError as error:
        raise ImportRefused(f"import: {METADATA_FILE}: invalid config ({error})") from error
    status = metadata.get("status")
    known = [str(value) for value in JobStatus]
    _require(status in known, METADATA_FILE, f"status {status!r} is not one of {', '.join(known)}")
    _require(metadata.get("losses", list(config.losses)) == list(config.losses), METADATA_FILE, "losses differ from the config's")
    for key in ("reason", "device"):
        _require(isinstance(metadata.get(key, ""), str), METADATA_FILE, f"{key} must be text")
    for key in ("created_at", "finished_at"):
        _require(metadata.get(key) is None or isinstance(metadata.get(key), str), METADATA_FILE, f"{key} must be text")
    num_classes = config.num_classes
    names = metadata.get("class_names")
    _require(names is not None, METADATA_FILE, "has no class names: the run never started training, so there is nothing to import")
    _require(isinstance(names, list) and len(names) == num_classes
             and all(isinstance(name, str) and 0 < len(name) <= MAX_CLASS_NAME_LENGTH for name in names),
             METADATA_FILE, f"class_names must be {num_classes} names of 1 to {MAX_CLASS_NAME_LENGTH} characters ({config.dataset})")
    counts = metadata.get("class_counts")
    most = dataset_spec(config.dataset).train_per_class
    _require(isinstance(counts, list) and len(counts) == num_classes and _counts(counts, most) and sum(counts) > 0,
             METADATA_FILE, f"class_counts must be {num_classes} counts of at most {most:,} ({config.dataset}'s training images per class)")
    test_images = config.test_images
    for key, top in (("num_train", sum(counts)), ("num_test", test_images)):
        _require(metadata.get(key) is None or (_is_whole(metadata[key]) and 0 < metadata[key] <= top), METADATA_FILE,
                 f"{key} must be a whole number from 1 to {top:,}")
    seed_keys = [str(seed) for seed in config.seeds]  # JSON object keys
    weights = metadata.get("weights") or {}
    _require(isinstance(weights, dict), METADATA_FILE, "weights must be an object")
    for loss, by_seed in weights.items():
        _require(loss in config.losses and isinstance(by_seed, dict), METADATA_FILE,
                 f"weights name loss {loss!r}, not one of {list(config.losses)}")
        for seed, file_name in by_seed.items():
            _require(seed in seed_keys, METADATA_FILE, f"weights name seed {seed!r} of {loss}, not one of {list(config.seeds)}")
            _require(file_name == weights_file_name(loss, int(seed)), METADATA_FILE,
                     f"the {loss} model of seed {seed} must be named {weights_file_name(loss, int(seed))!r}, got {file_name!r}")
    predictions = metadata.get("predictions") or {}
    _require(isinstance(predictions, dict), METADATA_FILE, "predictions must be an object")
    for seed, file_name in predictions.items():
        _require(seed in seed_keys, METADATA_FILE, f"predictions name seed {seed!r}, not one of {list(config.seeds)}")
        _require(file_name == predictions_file_name(int(seed)), METADATA_FILE,
                 f"the predictions of seed {seed} must be named {predictions_file_name(int(seed))!r}, got {file_name!r}")
    final = metadata.get("final") or {}
    _require(isinstance(final, dict), METADATA_FILE, "final must be an object")
    evaluations = final.get("evaluations") or {}
    _require(isinstance(evaluations, dict), METADATA_FILE, "final.evaluations must be an object")
    for seed, by_loss in evaluations.items():
        _require(seed in seed_keys, METADATA_FILE, f"final.evaluations name seed {seed!r}, not one of {list(config.seeds)}")
        check_evaluations(by_loss, config.losses, num_classes, f"{METADATA_FILE}, final evaluation of seed {seed}", test_images)
    comparisons = final.get("comparisons") or []
    _require(isinstance(comparisons, list), METADATA_FILE, "final.comparisons must be a list")
    for comparison in comparisons:
        check_comparison(comparison, config, f"{METADATA_FILE}, final comparisons")
    check_summaries(final.get("summaries") or {}, config, f"{METADATA_FILE}, final summaries")
    return config


def expected_prediction_files(metadata: Mapping[str, Any]) -> set[str]:
    return set((metadata.get("predictions") or {}).values())


def check_predictions(path: Path, config: TrainConfig, num_classes: int, num_test: int | None) -> None:
    """Read `path` as safetensors only and require a predictions file of the run: its losses, its classes, one
    answer per test image, confidences in [0, 1]."""
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}
        labels, answers = predictions_from_tensors(tensors, metadata)
    except (SafetensorError, OSError, PredictionsError, ValueError, RuntimeError, TypeError) as error:
        raise ImportRefused(f"import: {path.name} is not a predictions file of this run ({error})") from error
    if set(answers) - set(config.losses) or metadata.get("num_classes") != str(num_classes):
        raise ImportRefused(f"import: {path.name} answers for {sorted(answers)} over {metadata.get('num_classes')} classes; "
                            f"the run trains {list(config.losses)} over {num_classes}")
    if num_test is not None and len(labels) != num_test:
        raise ImportRefused(f"import: {path.name} holds {len(labels)} answers; the run's test split has {num_test} images")


def expected_weight_files(metadata: Mapping[str, Any]) -> set[str]:
    return {file_name for by_seed in (metadata.get("weights") or {}).values() for file_name in by_seed.values()}


def max_events(metadata: Mapping[str, Any], config: TrainConfig) -> dict[str, int]:
    """How many events of each kind a run of this config can write: one step event per training step of each
    seed (the steps follow from the training images and the batch size), one epoch event per epoch and seed,
    one seed_finished per seed, one started and one finished, and a bounded number of status lines."""
    num_train = sum(metadata["class_counts"])
    steps = math.ceil(num_train / config.batch_size) * config.epochs * len(config.seeds)
    return {"status": MAX_STATUS_EVENTS, "started": 1, "step": steps, "epoch": config.epochs * len(config.seeds),
            "seed_finished": len(config.seeds), "finished": 1}


def check_event(event: Any, metadata: Mapping[str, Any], config: TrainConfig, where: str) -> None:
    """One event, for the fields the compare view's replay and curves.csv read. Only the trainer's own kinds
    are accepted (an unknown kind was kept and replayed for nothing: an amplifier)."""
    _require(isinstance(event, dict) and event.get("kind") in EVENT_KINDS, where,
             f"an event must be an object whose kind is one of {', '.join(sorted(EVENT_KINDS))}")
    kind, losses = event["kind"], set(config.losses)
    unknown = sorted(set(event) - EVENT_FIELDS[kind])
    _require(not unknown, where, f"a {kind} event has no field {', '.join(map(repr, unknown[:5]))}")
    _require(kind != "epoch" or len(json.dumps(event)) <= MAX_EPOCH_LINE_BYTES, where,
             f"an epoch event longer than {_mebibytes(MAX_EPOCH_LINE_BYTES)}")
    if kind == "status":
        _require(isinstance(event.get("message"), str) and len(event["message"]) <= 1000, where,
                 "a status event needs a message of at most 1,000 characters")
    elif kind == "started":
        _require(event.get("class_names") == metadata["class_names"] and event.get("class_counts") == metadata["class_counts"],
                 where, f"class names and counts differ from {METADATA_FILE}'s")
        _require(_is_whole(event.get("total_steps")) and 0 <= event["total_steps"] <= max_events(metadata, config)["step"],
                 where, "total_steps must be a whole number no larger than the config's training steps")
        _require(isinstance(event.get("device", ""), str), where, "device must be text")
    elif kind == "step":
        for key in ("seed", "step", "global_step"):
            _require(_is_whole(event.get(key)), where, f"{key} must be a whole number")
        _require(_is_number(event.get("epoch")), where, "epoch must be a number")
        values, parts = event.get("losses"), event.get("cross_entropy")
        _require(isinstance(values, dict) and set(values) <= losses and _numbers(values.values()),
                 where, f"losses must map the run's losses {list(config.losses)} to numbers")
        _require(isinstance(parts, dict) and set(values) <= set(parts) and _numbers(parts.values()),
                 where, "cross_entropy must give a number for each loss")
    elif kind == "epoch":
        _require(event.get("seed") in config.seeds and _is_whole(event.get("seed")), where, "seed must be one of the run's seeds")
        _require(_is_whole(event.get("epoch")) and _is_whole(event.get("global_step")), where,
                 "epoch and global_step must be whole numbers")
        _require(1 <= event["epoch"] <= config.epochs, where, f"epoch must be from 1 to {config.epochs}")
        check_evaluations(event.get("evaluations"), config.losses, config.num_classes, where, config.test_images)
    elif kind == "seed_finished":
        _require(isinstance(event.get("comparisons"), list), where, "comparisons must be a list")
        for comparison in event["comparisons"]:
            check_comparison(comparison, config, where)
    elif kind == "finished":
        check_summaries(event.get("summaries"), config, where)


def check_events_file(path: Path, metadata: Mapping[str, Any], config: TrainConfig,
                      max_step_events: int | None = None) -> None:
    """Every line is a valid event, read one line at a time, and no kind occurs more often than a run of this
    config can write it (`max_events`), except that a torn last line (a crash mid-append) is tolerated, as
    `run_directory.read_events` skips it."""
    allowed = max_events(metadata, config)
    seen: dict[str, int] = dict.fromkeys(allowed, 0)
    total = sum(allowed.values())
    with open(path, "rb") as file:
        number = 0
        while line := file.readline(MAX_EVENT_LINE_BYTES + 1):
            number += 1
            where = f"{EVENTS_FILE} line {number}"
            _require(number <= total, where, f"a run of this config writes at most {total:,} events")
            _require(len(line) <= MAX_EVENT_LINE_BYTES, where, f"longer than {_mebibytes(MAX_EVENT_LINE_BYTES)}")
            try:
                event = parse_json(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as error:
                if number > 1 and not line.endswith(b"\n"):  # no newline: the file's end
                    return  # a torn last line (a crash mid-append); a file that is nothing but one is refused
                raise ImportRefused(f"import: {where} is not valid JSON ({error})") from error
            check_event(event, metadata, config, where)
            seen[event["kind"]] += 1
            _require(seen[event["kind"]] <= allowed[event["kind"]], where,
                     f"more {event['kind']} events than a run of this config writes ({allowed[event['kind']]:,})")
            if event["kind"] == "step":
                _require(len(line) <= MAX_STEP_LINE_BYTES, where,
                         f"a step event longer than {MAX_STEP_LINE_BYTES // 2**10} KiB (the trainer's are under 1 KiB)")
                if max_step_events is not None and seen["step"] > max_step_events:
                    raise ImportRefused(
                        f"import: {where}: more than {max_step_events:,} training steps, more than the app imports from "
                        "an upload (import it on the command line: import_run(..., max_step_events=None))")


# ---------------------------------------------------------------- import: weights


def check_weights(path: Path, config: TrainConfig, num_classes: int) -> None:
    """Read `path` as safetensors only (a pickle, renamed or not, is refused, never loaded) and require exactly
    the keys, shapes and dtypes of the model the config names."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as error:
        raise ImportRefused(f"import: {path.name} is not a safetensors file ({error})") from error
    model = build_model(config.model, num_classes)
    expected = model.state_dict()
    described = f"a {config.model} for {num_classes} classes"
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = [f"{label} {', '.join(keys[:5])}" for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise ImportRefused(f"import: {path.name} does not fit {described}: {'; '.join(parts)}")
    for key, tensor in expected.items():
        got = tensors[key]
        if tuple(got.shape) != tuple(tensor.shape) or got.dtype != tensor.dtype:
            raise ImportRefused(
                f"import: {path.name}: {key} is {got.dtype} {tuple(got.shape)}; {described} needs {tensor.dtype} {tuple(tensor.shape)}"
            )
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ImportRefused(f"import: {path.name}: {key} holds NaN or infinite weights")
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise ImportRefused(f"import: {path.name} does not load into {described} ({error})") from error


# ---------------------------------------------------------------- import: placing the run


def import_id_candidates(run_id: str) -> Iterator[str]:
    """The zip's own id, then `<id>-imported-2`, `-3`, …; re-importing an imported run counts on from its
    base id instead of stacking suffixes. Every candidate fits RUN_ID_PATTERN's 128 characters."""
    yield run_id
    base = re.sub(r"-imported-\d+$", "", run_id)
    for number in range(2, MAX_RENAMES + 2):
        suffix = f"-imported-{number}"
        yield base[: 128 - len(suffix)] + suffix


# Imports in this process choose ids one at a time; the rename below also refuses a non-empty target, which
# covers another process.
_PLACE_LOCK = threading.Lock()


def _place(staging: Path, runs_dir: Path, other_roots: Sequence[Path], metadata: dict[str, Any]) -> str:
    original = metadata["run_id"]
    with _PLACE_LOCK:
        for candidate in import_id_candidates(original):
            if any(os.path.lexists(root / candidate) for root in (runs_dir, *other_roots)):
                continue
            metadata["run_id"] = candidate
            write_json_atomic(staging / METADATA_FILE, metadata)
            try:
                os.rename(staging, runs_dir / candidate)
            except OSError as error:
                if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue  # taken meanwhile by another process
                raise
            return candidate
    raise ImportRefused(f"import: run id {original!r} and {MAX_RENAMES} renamed variants are all taken")


def remove_stale_staging(runs_dir: Path, now: float | None = None) -> None:
    """Remove staging directories left by an import that was killed mid-way (a refusal removes its own).
    Only those older than `STALE_STAGING_SECONDS`, so a concurrent import's is left alone."""
    now = time.time() if now is None else now
    for path in runs_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            if path.is_dir() and not path.is_symlink() and now - path.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # removed meanwhile by another import


def import_run(
    zip_path: str | os.PathLike, runs_dir: str | os.PathLike, *, other_roots: Iterable[str | os.PathLike] = (),
    rules: DiskRules = DiskRules(), protected_ids: Iterable[str] = (), max_step_events: int | None = None,
) -> ImportedRun:
    """Import an exported run's zip as a new run directory in `runs_dir`, readable by `read_run` and
    `load_models`. Ids present in `runs_dir` or in any of `other_roots` (e.g. the shipped runs, which the
    app lists beside yours) count as taken; a taken id becomes `<id>-imported-<n>`.

    The zip is unpacked into a hidden temporary directory inside `runs_dir` (the run list skips dot-names),
    validated whole, and renamed into place; any refusal removes it. run.json is rewritten with the final
    id, without the exporting process's owner, with an `imported` note, and a run exported while still
    "running" becomes "interrupted". The weights' own safetensors metadata keeps the original id.

    `max_step_events` bounds the event log of an upload through the app (the app passes `MAX_STEP_EVENTS`;
    None, the default for a call of one's own, imports a run of any length).

    `rules` bound the runs directory as they bound finished jobs: an upload that could not fit beside the
    `protected_ids` (runs that are training) is refused before anything is written, and retention runs as
    soon as the run is in place (the new run, received now, counts as the newest).

    Raises `ImportRefused` for any upload that is not such a run; an `OSError` only for a failure to write
    to `runs_dir` (e.g. a full disk)."""
    path = Path(zip_path) if zip_path else None
    if path is None or not path.is_file():
        raise ImportRefused("import: no file was received")
    size = path.stat().st_size
    if size == 0:
        raise ImportRefused("import: the file is empty (0 bytes)")
    if size > MAX_IMPORT_BYTES:
        raise ImportRefused(f"import: the file is {_mebibytes(size)}, more than the {_mebibytes(MAX_IMPORT_BYTES)} limit")
    runs_dir = Path(runs_dir)
    roots = tuple(Path(root) for root in other_roots)
    with open(path, "rb") as file:
        count = declared_entry_count(file)
    if count is not None and count > MAX_IMPORT_FILES:
        raise ImportRefused(f"import: the zip holds {count} entries; a run has at most {MAX_IMPORT_FILES}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as error:
        raise ImportRefused(f"import: the file is not a zip archive ({error})") from error
    protected = set(protected_ids)
    with archive:
        infos = archive.infolist()
        check_entries(infos)
        if rules.bounded:
            kept_bytes = sum(info.file_size for info in infos if info.filename not in DERIVED_FILES)
            problem = rules.room_for(runs_on_disk(runs_dir, protected), kept_bytes)
            if problem:
                raise ImportRefused(f"import: {problem}")
        runs_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(runs_dir)
        staging = Path(tempfile.mkdtemp(dir=runs_dir, prefix=STAGING_PREFIX))
        try:
            os.chmod(staging, 0o755)  # mkdtemp makes 0700; run directories are meant to be served
            _extract(archive, infos, staging)
            metadata, config = _read_metadata(staging / METADATA_FILE)
            present = {info.filename for info in infos if WEIGHTS_NAME.match(info.filename)}
            listed = expected_weight_files(metadata)
            if unlisted := sorted(present - listed):
                raise ImportRefused(f"import: {unlisted[0]} is not listed in {METADATA_FILE}'s weights (its loss or seed is not the run's)")
            if absent := sorted(listed - present):
                raise ImportRefused(f"import: {METADATA_FILE} lists {absent[0]} but the zip does not hold it")
            present_predictions = {info.filename for info in infos if PREDICTIONS_NAME.match(info.filename)}
            listed_predictions = expected_prediction_files(metadata)
            if unlisted := sorted(present_predictions - listed_predictions):
                raise ImportRefused(f"import: {unlisted[0]} is not listed in {METADATA_FILE}'s predictions")
            if absent := sorted(listed_predictions - present_predictions):
                raise ImportRefused(f"import: {METADATA_FILE} lists {absent[0]} but the zip does not hold it")
            check_events_file(staging / EVENTS_FILE, metadata, config, max_step_events)
            for name in sorted(listed):
                check_weights(staging / name, config, len(metadata["class_names"]))
            for name in sorted(listed_predictions):
                check_predictions(staging / name, config, len(metadata["class_names"]), metadata.get("num_test"))
            original, status = metadata["run_id"], metadata["status"]
            if status in UNFINISHED_STATUSES:
                status = str(JobStatus.INTERRUPTED)
                metadata["reason"] = metadata.get("reason") or INTERRUPTED_REASON
            metadata.update(
                status=status, owner=None,
                imported={"original_run_id": original, "imported_at": received_stamp()},
            )
            _check_readable(staging, metadata)
            run_id = _place(staging, runs_dir, roots, metadata)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    removed: list[str] = []
    if rules.bounded:
        removed = apply_retention(runs_dir, rules.keep_runs, rules.max_runs_mb, protected | {run_id})
    return ImportedRun(run_id, runs_dir / run_id, run_id != original, original, status, tuple(removed))


def prune_exports(directory: str | os.PathLike, max_age_seconds: float, keep: int, now: float | None = None) -> list[str]:
    """Remove export zips (and temporary files of interrupted exports) older than `max_age_seconds`, and all but
    the newest `keep`: a download is fetched within seconds, and Gradio serves its own copy of it. Returns
    the names removed."""
    directory = Path(directory)
    now = time.time() if now is None else now
    entries = []
    for path in directory.glob("*.zip") if directory.is_dir() else ():
        try:
            entries.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for path in directory.glob(".*.tmp") if directory.is_dir() else ():
        try:
            if now - path.stat().st_mtime > max_age_seconds:
                path.unlink(missing_ok=True)
        except OSError:
            continue
    entries.sort(reverse=True)
    removed = []
    for index, (stamp, path) in enumerate(entries):
        if index >= keep or now - stamp > max_age_seconds:
            try:
                path.unlink(missing_ok=True)
                removed.append(path.name)
            except OSError:
                continue
    return removed


def _read_metadata(path: Path) -> tuple[dict[str, Any], TrainConfig]:
    try:
        metadata = parse_json(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ImportRefused(f"import: {METADATA_FILE} is not valid JSON ({error})") from error
    return metadata, check_metadata(metadata)


def _check_readable(staging: Path, metadata: dict[str, Any]) -> None:
    """The last word goes to the app's own readers: run.json parsed as the run record (schema.py), then the run
    list's reader and the compare view's replay, which parses every event."""
    write_json_atomic(staging / METADATA_FILE, metadata)
    try:
        RunMetadata.model_validate(metadata)
        read_run(staging)
        state_from_run_dir(staging)
    except (RunCorruptError, KeyError, TypeError, ValueError, IndexError) as error:
        raise ImportRefused(f"import: the app cannot read this run ({type(error).__name__}: {error})") from error
