"""Replay check: `python -m cce_demo.replay RUN_DIR --data-dir DIR` retrains a finished run (a shipped run or a
grid cell) from its own record and says whether this machine gives the same models: bit-identical, or by how
many points each loss's balanced accuracy differs, and which provenance fields differ between the record and
this machine (the likely reason).

A paired run's model of one loss depends only on the shared initial weights and batches, never on the other
losses trained beside it, so `--losses ce` replays the CE model of a seven-loss cell at a seventh of the cost.
The thread count is the run's own unless `--threads` says otherwise: the kernels a count picks decide the
floating-point order, so another count is another replay.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors.torch import load_file

from . import data
from .engine import RunResult, train_paired
from .provenance import environment
from .run_directory import RunCorruptError, read_run
from .schema import EpochMetrics, Event
from .status import JobStatus
from .threads import recorded_thread_count, set_thread_count

# Provenance fields that say nothing about the arithmetic: where they differ, a replay can still be identical.
INCIDENTAL_FIELDS = ("source_commit", "python", "cpu_count", "machine.microcode")


@dataclass(frozen=True)
class LossReplay:
    """One loss of one seed: the recorded and the replayed final evaluation, and the weights' agreement."""

    loss: str
    seed: int
    recorded_balanced_accuracy: float | None
    replayed_balanced_accuracy: float | None
    evaluation_identical: bool
    weights_identical: bool | None  # None: the record keeps no weights to compare (a grid cell)

    @property
    def difference_points(self) -> float | None:
        if self.recorded_balanced_accuracy is None or self.replayed_balanced_accuracy is None:
            return None
        return 100 * (self.replayed_balanced_accuracy - self.recorded_balanced_accuracy)

    @property
    def identical(self) -> bool:
        return self.evaluation_identical and self.weights_identical is not False


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested provenance as dotted keys ("machine.family")."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def provenance_differences(recorded: Mapping[str, Any], here: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, recorded, here) for every field that differs; a field the record lacks reads "not recorded"
    (the run predates it), which is itself a reason a replay promise cannot be checked."""
    before, after = flatten(recorded), flatten(here)
    rows = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, "not recorded"), after.get(key, "not recorded")
        if old != new:
            rows.append((key, old, new))
    return rows


def compare_loss(loss: str, seed: int, recorded: Mapping[str, Any], replayed: Mapping[str, Any],
                 recorded_weights: Mapping[str, torch.Tensor] | None, model: torch.nn.Module) -> LossReplay:
    weights_identical = None
    if recorded_weights is not None:
        state = model.state_dict()
        weights_identical = state.keys() == recorded_weights.keys() and all(
            torch.equal(state[key].detach().cpu(), recorded_weights[key]) for key in state)
    return LossReplay(
        loss=loss, seed=seed, recorded_balanced_accuracy=recorded.get("balanced_accuracy"),
        replayed_balanced_accuracy=replayed.get("balanced_accuracy"),
        evaluation_identical=dict(recorded) == dict(replayed), weights_identical=weights_identical,
    )


def replay(run_dir: str | Path, losses: Sequence[str] | None, seeds: Sequence[int] | None, data_dir: str | None,
           allow_download: bool, on_event=lambda event: None) -> tuple[list[LossReplay], list[tuple[str, Any, Any]]]:
    """Retrain the run's `losses` (default: all) for `seeds` (default: all) and compare with the record."""
    record = read_run(run_dir)
    if record.status != JobStatus.DONE:
        raise ValueError(f"replay: only a finished run can be replayed; this one is {record.status}")
    config = record.config
    chosen_losses = tuple(losses or config.losses)
    unknown = sorted(set(chosen_losses) - set(config.losses))
    if unknown:
        raise ValueError(f"replay: the run did not train {', '.join(unknown)}; it trained {', '.join(config.losses)}")
    chosen_seeds = tuple(seeds if seeds is not None else config.seeds)
    missing = sorted(set(chosen_seeds) - set(config.seeds))
    if missing:
        raise ValueError(f"replay: the run did not train seed(s) {missing}; it trained {list(config.seeds)}")
    # Trained in the run's own loss order (a subset keeps it), so the initial draw and batches are the same.
    replay_config = config.replace(losses=tuple(loss for loss in config.losses if loss in chosen_losses), seeds=chosen_seeds)
    here = environment(config.device)
    result: RunResult = train_paired(replay_config, on_event, data_dir=data_dir, allow_download=allow_download)
    if result.status != JobStatus.DONE:
        raise RuntimeError(f"replay: the retraining ended {result.status}: {result.reason}")
    weights = record.metadata.get("weights") or {}
    rows = []
    for seed in chosen_seeds:
        recorded = record.final["evaluations"][str(seed)]
        for loss in replay_config.losses:
            replayed = json.loads(result.evaluations[seed][loss].model_dump_json())  # as the record wrote it
            name = (weights.get(loss) or {}).get(str(seed))
            recorded_weights = load_file(record.run_dir / name) if name and (record.run_dir / name).is_file() else None
            rows.append(compare_loss(loss, seed, recorded[loss], replayed, recorded_weights, result.models[seed][loss]))
    return rows, provenance_differences(record.metadata.get("environment") or {}, here)


def report(rows: Sequence[LossReplay], differences: Sequence[tuple[str, Any, Any]]) -> str:
    lines = []
    for row in rows:
        if row.identical:
            what = "weights and evaluation" if row.weights_identical else "evaluation (no weights recorded)"
            lines.append(f"seed {row.seed} {row.loss}: bit-identical {what}")
        else:
            difference = row.difference_points
            amount = f"{difference:+.2f} points of balanced accuracy" if difference is not None else "a missing figure"
            lines.append(f"seed {row.seed} {row.loss}: differs by {amount} "
                         f"({100 * (row.recorded_balanced_accuracy or 0):.2f} % recorded, {100 * (row.replayed_balanced_accuracy or 0):.2f} % here)")
    relevant = [row for row in differences if row[0] not in INCIDENTAL_FIELDS]
    if relevant:
        lines.append("Provenance fields that differ (recorded → here):")
        lines += [f"  {key}: {old!r} → {new!r}" for key, old, new in relevant]
    else:
        lines.append("Every recorded provenance field that bears on the arithmetic matches this machine.")
    incidental = [row for row in differences if row[0] in INCIDENTAL_FIELDS]
    if incidental:
        lines.append("Also different, not bearing on the arithmetic: " + ", ".join(key for key, _, _ in incidental))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cce_demo.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a finished run directory (a shipped run, a grid cell)")
    parser.add_argument("--losses", help="comma-separated losses to retrain (default: all of the run's)")
    parser.add_argument("--seed", type=int, action="append", help="a seed to retrain (repeatable; default: all)")
    parser.add_argument("--data-dir", help="folder with CIFAR (npz or torchvision); default: $CCE_DATA_DIR or ./data")
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads (default: the run's recorded count)")
    parser.add_argument("--output", help="also write the outcome as JSON to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        record = read_run(arguments.run_dir)
    except RunCorruptError as error:
        parser.error(str(error))
    try:  # before the environment is read, so that it reports this count
        set_thread_count(arguments.threads if arguments.threads is not None else recorded_thread_count(record.metadata))
    except ValueError as error:
        parser.error(str(error))

    def on_event(event: Event) -> None:
        if isinstance(event, EpochMetrics):
            print(f"seed {event.seed} epoch {event.epoch} evaluated", file=sys.stderr, flush=True)

    losses = [part.strip() for part in arguments.losses.split(",") if part.strip()] if arguments.losses else None
    try:
        rows, differences = replay(arguments.run_dir, losses, arguments.seed, arguments.data_dir,
                                   not arguments.no_download, on_event)
    except (ValueError, RuntimeError, data.DataUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report(rows, differences))
    if arguments.output:
        outcome = {
            "run": str(Path(arguments.run_dir).as_posix()), "threads": torch.get_num_threads(), "environment": environment(),
            "losses": [{**asdict(row), "identical": row.identical, "difference_points": row.difference_points} for row in rows],
            "provenance_differences": [{"field": key, "recorded": old, "here": new} for key, old, new in differences],
        }
        Path(arguments.output).write_text(json.dumps(outcome, indent=1) + "\n")
    return 0 if all(row.identical for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
