"""Runs on disk as the app lists them: the writable runs directory (yours, deletable) and read-only shipped
runs; one summary row per run, partial runs marked, with each loss's difference to the baseline."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..retention import received_at
from ..run_directory import RUN_ID_PATTERN, RunCorruptError, RunRecord, epochs_evaluated, list_runs, read_run
from ..schema import FinalResults
from ..status import PARTIAL, JobStatus
from .kit.charts import finite
from .kit.formatting import percent_cell, points
from .kit.names import short_name


@dataclass(frozen=True)
class RunCatalog:
    runs_dir: Path
    shipped_dirs: tuple[Path, ...] = ()

    def records(self) -> tuple[list[RunRecord], list[str]]:
        """Every readable run, newest first by when this server received it (an upload's own date is not
        trusted), and one message per unreadable directory."""
        records, problems = list_runs([self.runs_dir, *self.shipped_dirs])
        records.sort(key=lambda record: received_at(record.metadata), reverse=True)
        return records, problems

    def find(self, run_id: str) -> RunRecord:
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
            raise ValueError(f"run: invalid run id {run_id!r}")
        for root in (self.runs_dir, *self.shipped_dirs):
            if (root / run_id).is_dir():
                return read_run(root / run_id)
        raise ValueError(f"run: no run named {run_id!r}")

    def is_shipped(self, record: RunRecord) -> bool:
        return record.run_dir.parent.resolve() != self.runs_dir.resolve()

    def default_run(self, records: list[RunRecord] | None = None) -> RunRecord | None:
        """The newest finished run with weights, shipped runs first (so the app is useful at first open), then
        runs trained here; an uploaded run never becomes every visitor's first view."""
        if records is None:
            records, _ = self.records()
        usable = [record for record in records if record.has_weights and record.status == JobStatus.DONE
                  and not record.metadata.get("imported")]
        shipped = [record for record in usable if self.is_shipped(record)]
        return (shipped or usable or [None])[0]


def epochs_done(record: RunRecord) -> int:
    """Epochs evaluated over all seeds (run_directory reads the log; cached there until it changes)."""
    return epochs_evaluated(record.run_dir)


@dataclass(frozen=True)
class RunRow:
    """One run's summary. Differences are in points, averaged over the seeds that finished."""

    run_id: str
    status: JobStatus | str
    source: str  # "shipped" or "yours"
    data: str
    model: str
    epochs: int
    epochs_done: int | None  # None: not counted (a run that ran to the end)
    seeds: str
    scores: str  # each loss's balanced accuracy (first seed)
    balanced_difference: str  # "CCE −1.6"
    tail_difference: str
    created: str
    balanced_difference_values: dict[str, float]
    tail_difference_values: dict[str, float]

    @property
    def partial(self) -> bool:
        return self.epochs_done is not None and self.epochs_done < self.epochs * max(1, len(self.seeds.split(",")))

    def status_text(self) -> str:
        if self.partial:
            return f"{self.status} · {self.epochs_done} of {self.epochs * len(self.seeds.split(','))} epochs (partial)"
        return str(self.status)


def final_results(record: RunRecord) -> FinalResults:
    """The run's final results, typed; empty for a run whose results do not parse (a damaged run file: no
    numbers, no crash)."""
    try:
        return record.results
    except RunCorruptError:
        return FinalResults()


def _differences(record: RunRecord) -> tuple[dict[str, float], dict[str, float], int]:
    results = final_results(record)
    balanced: dict[str, list[float]] = {}
    tail: dict[str, list[float]] = {}
    for comparison in results.comparisons:
        other, baseline = comparison.other, comparison.baseline
        difference = finite(comparison.balanced_accuracy_difference)
        if difference is None:  # a diverged run: no number, no crash
            continue
        balanced.setdefault(other, []).append(100 * difference)
        by_loss = results.evaluations.get(str(comparison.seed)) or {}
        if other not in by_loss or baseline not in by_loss:
            continue
        mine, base = by_loss[other].group_recall.get("tail"), by_loss[baseline].group_recall.get("tail")
        if finite(mine) is not None and finite(base) is not None:
            tail.setdefault(other, []).append(100 * (mine - base))
    seeds = max((len(values) for values in balanced.values()), default=0)
    return ({loss: sum(v) / len(v) for loss, v in balanced.items()}, {loss: sum(v) / len(v) for loss, v in tail.items()}, seeds)


def run_row(catalog: RunCatalog, record: RunRecord) -> RunRow:
    config = record.config
    first_seed = next(iter(final_results(record).evaluations.values()), {})
    scores = ", ".join(f"{short_name(loss)} {percent_cell(value.balanced_accuracy)}" for loss, value in first_seed.items())
    balanced, tail, seeds = _differences(record)
    suffix = f" ({seeds} seeds)" if seeds > 1 else ""
    try:
        status: JobStatus | str = JobStatus(record.status)
    except ValueError:
        status = record.status
    partial_status = status in PARTIAL or status == JobStatus.FAILED
    return RunRow(
        run_id=record.run_id, status=status, source="shipped" if catalog.is_shipped(record) else "yours",
        data=f"{config.dataset} {config.profile} ×{config.imbalance_ratio:g}", model=config.model, epochs=config.epochs,
        epochs_done=epochs_done(record) if partial_status else None, seeds=",".join(map(str, config.seeds)), scores=scores,
        balanced_difference=", ".join(f"{short_name(loss)} {points(value)}" for loss, value in balanced.items()) + (suffix if balanced else ""),
        tail_difference=", ".join(f"{short_name(loss)} {points(value)}" for loss, value in tail.items()) + (suffix if tail else ""),
        created=(record.metadata.get("created_at") or "")[:19], balanced_difference_values=balanced, tail_difference_values=tail,
    )


TABLE_COLUMNS = ["run", "status", "source", "data", "model", "epochs", "seeds", "balanced accuracy % (first seed)",
                 "Δ balanced accuracy vs CE (points)", "Δ tail recall vs CE (points)", "created"]


def readable_rows(catalog: RunCatalog, records: list[RunRecord]) -> list[tuple[RunRecord, RunRow]]:
    """Each run with its row; a run whose row cannot be built (a malformed run.json) is left out, never
    fatal for the list (the run list's problems name unreadable directories)."""
    rows = []
    for record in records:
        try:
            rows.append((record, run_row(catalog, record)))
        except (KeyError, TypeError, ValueError, AttributeError, OSError):
            continue
    return rows


def runs_table(catalog: RunCatalog, records: list[RunRecord]) -> pd.DataFrame:
    """The Runs tab's table (human-readable: partial runs say how far they got)."""
    rows = []
    for record, row in readable_rows(catalog, records):
        rows.append([row.run_id, row.status_text(), row.source, row.data, row.model, row.epochs, row.seeds, row.scores,
                     row.balanced_difference or "—", row.tail_difference or "—", row.created])
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def runs_records(catalog: RunCatalog, records: list[RunRecord]) -> list[dict[str, Any]]:
    """The same runs for the API: the table's columns plus machine-readable fields."""
    result = []
    for record, row in readable_rows(catalog, records):
        result.append({
            "run": row.run_id, "status": str(row.status), "source": row.source, "data": row.data, "model": row.model,
            "epochs": row.epochs, "seeds": row.seeds, "balanced accuracy % (first seed)": row.scores,
            "partial": row.partial, "epochs_done": row.epochs_done,
            "balanced_accuracy_difference_points": row.balanced_difference_values,
            "tail_recall_difference_points": row.tail_difference_values, "created": row.created,
        })
    return result


def run_choices(records: Sequence[RunRecord]) -> list[str]:
    return [record.run_id for record in records if record.has_weights]
