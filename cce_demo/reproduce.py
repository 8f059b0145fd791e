"""Result grids: `python -m cce_demo.reproduce` trains every (dataset, profile, imbalance ratio, seed) cell of a
grid as one paired run, resumably, and writes the across-seed tables (`results.json`, `results.md`).

Under `torchrun` each rank takes its share of the cells (round-robin) and rank 0 gathers and writes the tables;
several ranks may share one GPU, since these small nets leave a GPU mostly idle.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import shlex
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from . import data
from .run_directory import RunCorruptError, RunWriter, read_run, write_atomic, write_json_atomic
from .config import (
    DATASETS, DEVICES, LOSS_NAMES, MODEL_NAMES, PRESET_ALIASES, PRESETS, PROFILES, SCHEDULES, TrainConfig,
    parse_seed_text, preset,
)
from .engine import Event, train_paired
from .metrics import (
    COUNT_GROUP_NAMES, GROUP_NAMES, Direction, clip_interval, direction_of, count_groups, format_p_value, holm, mean_recall_of_groups,
    paired_t_p_value, summarise_differences,
)
from .provenance import FORMAT_1_DATA_COPY, combined_data, data_copy_text, environment
from .status import JobStatus

GRIDS_DIR = Path(__file__).resolve().parent.parent / "grids"
CELL_FILE = "cell.json"  # beside run.json: the cell's wall time and where it ran, written when it finished
RESULTS_JSON = "results.json"
RESULTS_MARKDOWN = "results.md"
# Format 2 (issue 19) adds the per-seed values: every interval carries the values it was computed from, and
# each table a `per_seed` block (every cell's scores, per-class recall, prior-corrected scores and McNemar's b
# and c), Holm's correction over its comparisons, the data copy and the environment. Format 1 is still read.
RESULTS_FORMAT_VERSION = 2
READABLE_RESULTS_FORMATS = (1, 2)
FAMILY_WISE_ALPHA = 0.05  # Holm's correction over a table's comparisons
SCORE_BOUNDS = (0.0, 1.0)  # an accuracy or a recall; its interval is clipped to these
DIFFERENCE_BOUNDS = (-1.0, 1.0)  # a difference of two of them
CLIPPED_MARK = "*"
HOLM_MARK = "†"
# Gloo's default collective timeout is 30 minutes; ranks of a full-length grid can finish hours apart.
GATHER_TIMEOUT = datetime.timedelta(days=7)


# ---------------------------------------------------------------- the grid as a value


@dataclass(frozen=True)
class Grid:
    """Datasets x imbalance ratios x profiles x seeds cells, each training all `losses` as a paired run
    with the preset's settings and `overrides`."""

    name: str
    preset: str = "standard"
    datasets: tuple[str, ...] = ("cifar10",)
    imbalance_ratios: tuple[float, ...] = (100.0,)
    profiles: tuple[str, ...] = ("exp",)
    losses: tuple[str, ...] = ("ce", "cce")
    seeds: tuple[int, ...] = (0, 1, 2)
    overrides: tuple[tuple[str, Any], ...] = ()  # other TrainConfig fields, as sorted (name, value) pairs

    def __post_init__(self) -> None:
        for field_name in ("datasets", "imbalance_ratios", "profiles", "losses", "seeds"):
            values = getattr(self, field_name)
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"{field_name}: expected a non-empty list, got {values!r}")
            object.__setattr__(self, field_name, tuple(values))
        object.__setattr__(self, "imbalance_ratios", tuple(float(value) for value in self.imbalance_ratios))
        if isinstance(self.overrides, dict):
            object.__setattr__(self, "overrides", tuple(sorted(self.overrides.items())))
        if not self.name or not all(character.isalnum() or character in "._-" for character in self.name):
            raise ValueError(f"name: letters, digits, '.', '_' and '-' only, got {self.name!r}")
        for field_name, values in (("datasets", self.datasets), ("profiles", self.profiles)):
            if len(set(values)) != len(values):
                raise ValueError(f"{field_name}: each value may appear once, got {list(values)}")
        for cell in self.cells():  # validates every combination before anything trains
            cell.config

    def cells(self) -> list["Cell"]:
        # Seeds innermost: a grid stopped half-way has whole (dataset, ratio) groups rather than one seed of each.
        return [
            Cell(self, dataset, profile, ratio, seed)
            for dataset in self.datasets
            for ratio in self.imbalance_ratios
            for profile in self.profiles
            for seed in self.seeds
        ]

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["overrides"] = dict(self.overrides)
        for key in ("datasets", "imbalance_ratios", "profiles", "losses", "seeds"):
            values[key] = list(values[key])
        return values


@dataclass(frozen=True)
class Cell:
    grid: Grid
    dataset: str
    profile: str
    imbalance_ratio: float
    seed: int

    @property
    def config(self) -> TrainConfig:
        return preset(
            self.grid.preset, **dict(self.grid.overrides), dataset=self.dataset, profile=self.profile,
            imbalance_ratio=self.imbalance_ratio, losses=self.grid.losses, seeds=(self.seed,),
        )

    @property
    def run_id(self) -> str:
        return f"{self.dataset}-{self.profile}-r{self.imbalance_ratio:g}-seed{self.seed}"

    @property
    def group_key(self) -> tuple[str, str, float]:
        return (self.dataset, self.profile, self.imbalance_ratio)


def load_grid_file(path: str | os.PathLike) -> Grid:
    """A grid from a TOML or JSON file: the Grid fields (`name` defaults to the file's stem)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"grid: cannot read {path}: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"grid: {path} must hold a table of grid fields")
    values.setdefault("name", path.stem)
    known = {field.name for field in dataclasses.fields(Grid)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"grid: unknown field(s) {', '.join(unknown)} in {path}; valid fields: {', '.join(sorted(known))}")
    return Grid(**values)


def named_grid_path(name_or_path: str) -> Path:
    """A grid file: a path, or the name of one of the repository's grids (grids/<name>.toml)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".toml", ".json") and candidate.exists():
        return candidate
    named = GRIDS_DIR / f"{name_or_path}.toml"
    if named.exists():
        return named
    available = sorted(path.stem for path in GRIDS_DIR.glob("*.toml"))
    raise ValueError(f"grid: no grid file or named grid {name_or_path!r}; named grids: {', '.join(available) or 'none'}")


# ---------------------------------------------------------------- one cell


def cell_is_done(run_dir: Path) -> bool:
    try:
        return read_run(run_dir).status == JobStatus.DONE and (run_dir / CELL_FILE).exists()
    except RunCorruptError:
        return False


def run_cell(
    cell: Cell, runs_dir: Path, data_dir: str | None, allow_download: bool, on_step: Any = None,
) -> dict[str, Any]:
    """Train one cell unless it finished before; an interrupted or failed one is redone from scratch."""
    run_dir = runs_dir / cell.run_id
    if cell_is_done(run_dir):
        return cell_summary(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    config = cell.config
    writer = RunWriter(runs_dir, config, cell.run_id)
    started = time.perf_counter()

    def on_event(event: Event) -> None:
        writer.record(event)
        if on_step is not None and event.kind == "started":
            on_step(0, event.total_steps)
        elif on_step is not None and event.kind == "step":
            on_step(event.global_step, None)

    try:
        result = train_paired(config, on_event, data_dir=data_dir, allow_download=allow_download)
    except BaseException as error:
        writer.fail(f"{type(error).__name__}: {error}")
        raise
    status = JobStatus.FAILED if result.status == JobStatus.DIVERGED else JobStatus(result.status)
    writer.finish(result, status=status)
    if status != JobStatus.DONE:
        raise RuntimeError(f"cell {cell.run_id} ended {status}: {result.reason}")
    write_json_atomic(run_dir / CELL_FILE, {
        "wall_seconds": time.perf_counter() - started, "hardware": hardware(config.device), "finished_at": _now(),
    })
    return cell_summary(run_dir)


def cell_summary(run_dir: Path) -> dict[str, Any]:
    """What the tables need from a finished cell, as plain data (small: it crosses process boundaries)."""
    record = read_run(run_dir)
    cell = json.loads((run_dir / CELL_FILE).read_text(encoding="utf-8"))
    final = record.final
    seed = str(record.config.seeds[0])
    return {
        "subset_seed": record.config.subset_seed,
        "data": record.metadata.get("data") or {},
        "run_id": record.run_id,
        "dataset": record.config.dataset,
        "profile": record.config.profile,
        "imbalance_ratio": record.config.imbalance_ratio,
        "seed": record.config.seeds[0],
        "class_names": list(record.class_names),
        "class_counts": list(record.class_counts),
        "baseline": final.get("baseline"),
        "evaluations": final["evaluations"][seed],
        "comparisons": final.get("comparisons", []),
        "wall_seconds": cell["wall_seconds"],
        "hardware": cell["hardware"],
    }


# ---------------------------------------------------------------- tables across seeds


def interval_of(values: Sequence[float | None], bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Mean and 95 % t-interval across seeds (no interval with one seed), with the per-seed `values` it was
    computed from (in seed order; None for an empty group, which the mean skips). With `bounds` the interval
    is clipped to them and `clipped` says whether it was."""
    aligned = [None if value is None or math.isnan(value) else float(value) for value in values]
    kept = [value for value in aligned if value is not None]
    if not kept:
        return {"mean": None, "low": None, "high": None, "seeds": 0, "values": aligned}
    summary = summarise_differences(kept)
    low, high = summary.interval if summary.interval else (None, None)
    entry = {"mean": summary.mean, "low": low, "high": high, "seeds": len(kept), "values": aligned}
    if bounds is not None and low is not None:
        entry["low"], entry["high"], entry["clipped"] = clip_interval(low, high, bounds)
    return entry


def scores_of(evaluation: dict[str, Any], class_counts: Sequence[int]) -> dict[str, float]:
    """The reported numbers of one model: accuracy, balanced accuracy, rank groups and count groups."""
    recall = [float("nan") if value is None else value for value in evaluation["per_class_recall"]]
    scores = {"accuracy": evaluation["accuracy"], "balanced_accuracy": evaluation["balanced_accuracy"]}
    scores.update({f"rank_{name}": value for name, value in evaluation["group_recall"].items()})
    scores.update({f"count_{name}": value for name, value in mean_recall_of_groups(recall, count_groups(class_counts)).items()})
    return scores


METRIC_NAMES = ("accuracy", "balanced_accuracy", *(f"rank_{name}" for name in GROUP_NAMES),
                *(f"count_{name}" for name in COUNT_GROUP_NAMES))


def aggregate(cells: Iterable[dict[str, Any]], losses: Sequence[str]) -> list[dict[str, Any]]:
    """Per (dataset, profile, ratio): every loss as mean and interval across seeds, plain and prior-corrected;
    every loss against the baseline as paired differences; per-class recall and its difference; the per-seed
    values; Holm's correction over the comparisons with the baseline."""
    grouped: dict[tuple, list[dict[str, Any]]] = {}
    for cell in cells:
        grouped.setdefault((cell["dataset"], cell["profile"], cell["imbalance_ratio"]), []).append(cell)
    tables = []
    for (dataset, profile, ratio), members in sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1], -item[0][2])):
        members.sort(key=lambda cell: cell["seed"])
        counts = members[0]["class_counts"]
        baseline = members[0]["baseline"]
        table: dict[str, Any] = {
            "dataset": dataset, "profile": profile, "imbalance_ratio": ratio,
            "seeds": [cell["seed"] for cell in members], "class_names": members[0]["class_names"], "class_counts": counts,
            "baseline": baseline,
            "groups": {
                "rank": "head / medium / tail: the 30 % most frequent classes, the middle 40 %, the 30 % rarest (by training count)",
                "count": "many / medium / few: > 100, 20-100, < 20 training images per class",
                "count_members": count_groups(counts),
            },
            "losses": {}, "prior_corrected": {}, "versus_baseline": {}, "prior_corrected_versus_baseline": {},
            "per_class_recall": {}, "per_class_difference": {}, "mcnemar_p": {},
            "wall_seconds": sum(cell["wall_seconds"] for cell in members),
            "subset_seed": members[0].get("subset_seed"),
            "data": combined_data(cell.get("data") for cell in members),
            "per_seed": [per_seed_record(cell, losses, baseline, counts) for cell in members],
        }
        per_seed = {
            variant: {loss: [scores_of(evaluation_variant(cell["evaluations"][loss], variant), counts) for cell in members] for loss in losses}
            for variant in ("plain", "prior_corrected")
        }
        for loss in losses:
            for variant, key in (("plain", "losses"), ("prior_corrected", "prior_corrected")):
                table[key][loss] = {
                    metric: interval_of([scores[metric] for scores in per_seed[variant][loss]], SCORE_BOUNDS) for metric in METRIC_NAMES
                }
            recalls = [cell["evaluations"][loss]["per_class_recall"] for cell in members]
            table["per_class_recall"][loss] = [
                interval_of([recall[index] for recall in recalls], SCORE_BOUNDS) for index in range(len(counts))
            ]
            if loss == baseline:
                continue
            for variant, key in (("plain", "versus_baseline"), ("prior_corrected", "prior_corrected_versus_baseline")):
                table[key][loss] = {
                    metric: interval_of([
                        _difference(other[metric], base[metric])
                        for other, base in zip(per_seed[variant][loss], per_seed[variant][baseline])
                    ], DIFFERENCE_BOUNDS)
                    for metric in METRIC_NAMES
                }
            base_recalls = [cell["evaluations"][baseline]["per_class_recall"] for cell in members]
            table["per_class_difference"][loss] = [
                interval_of([_difference(recall[index], base[index]) for recall, base in zip(recalls, base_recalls)], DIFFERENCE_BOUNDS)
                for index in range(len(counts))
            ]
            table["mcnemar_p"][loss] = [
                comparison["mcnemar"]["p_value"] for cell in members for comparison in cell["comparisons"] if comparison["other"] == loss
            ]
        table["multiplicity"] = multiplicity(table)
        tables.append(table)
    return tables


def per_seed_record(cell: dict[str, Any], losses: Sequence[str], baseline: str, counts: Sequence[int]) -> dict[str, Any]:
    """One cell's numbers, per loss: its scores (accuracy, balanced accuracy, rank and count groups), per-class
    recall, the same prior-corrected, and McNemar's b (only the baseline right) and c (only this loss right)."""
    record: dict[str, Any] = {"seed": cell["seed"], "run_id": cell.get("run_id"), "losses": {}}
    for loss in losses:
        evaluation = cell["evaluations"][loss]
        entry: dict[str, Any] = {"scores": scores_of(evaluation, counts), "per_class_recall": list(evaluation["per_class_recall"])}
        if evaluation.get("prior_corrected"):
            corrected = evaluation["prior_corrected"]
            entry["prior_corrected"] = {"scores": scores_of(corrected, counts), "per_class_recall": list(corrected["per_class_recall"])}
        comparison = next((item for item in cell.get("comparisons", []) if item.get("other") == loss), None)
        if loss != baseline and comparison is not None:
            test = comparison.get("mcnemar", {})
            entry["mcnemar"] = {"b_only_baseline_correct": test.get("only_a_correct"),
                                "c_only_this_loss_correct": test.get("only_b_correct"), "p_value": test.get("p_value")}
        record["losses"][loss] = entry
    return record


def multiplicity(table: dict[str, Any]) -> dict[str, Any]:
    """Holm's correction over the table's primary comparisons: every loss against the baseline in balanced
    accuracy, as trained, each a two-sided paired t-test across seeds. The group, per-class and prior-corrected
    differences are secondary and left uncorrected (the tables say so)."""
    p_values = {}
    for loss, differences in table["versus_baseline"].items():
        values = [value for value in differences["balanced_accuracy"].get("values", []) if value is not None]
        p = paired_t_p_value(values)
        if p is not None:
            p_values[loss] = p
    return {
        "family": f"each loss against {table['baseline']} in balanced accuracy, as trained",
        "comparisons": len(table["versus_baseline"]),
        "test": "two-sided paired t-test across seeds", "method": "Holm (1979) step-down", "alpha": FAMILY_WISE_ALPHA,
        "results": holm(p_values, FAMILY_WISE_ALPHA),
    }


def evaluation_variant(evaluation: dict[str, Any], variant: str) -> dict[str, Any]:
    return evaluation if variant == "plain" else evaluation["prior_corrected"]


def _difference(value: float | None, baseline: float | None) -> float:
    if value is None or baseline is None:
        return float("nan")
    return value - baseline


# ---------------------------------------------------------------- markdown


def interval_text(entry: dict[str, Any] | None, signed: bool = False, empty: str = "—",
                  interval: str = " ({low} to {high})") -> str:
    """A mean in percent (or points) with its interval when there is one, as written by `interval_of`; the
    Results tab uses it too, with its own brackets."""
    if not entry or entry.get("mean") is None:
        return empty
    sign = "+" if signed else ""
    text = f"{100 * entry['mean']:{sign}.1f}"
    if entry.get("low") is not None:
        text += interval.format(low=f"{100 * entry['low']:{sign}.1f}", high=f"{100 * entry['high']:{sign}.1f}")
    return text


def reproduce_command(results: dict[str, Any]) -> str:
    """The grid's command with the torch thread count its cells ran with, which a bit-for-bit replay needs;
    files of format 1 recorded the command without it."""
    command = results.get("command", "")
    threads = (results.get("hardware") or {}).get("torch_threads")
    if "--threads" in command or not isinstance(threads, int):
        return command
    return f"{command} --threads {threads}"


REPLAY_CONDITIONS = (
    "A cell replays bit for bit only on the same CPU type with the same torch thread count, the same torch and "
    "torchvision versions, the same deterministic settings and the same data files; otherwise expect differences "
    "of the size of the seed-to-seed spread."
)


def seeds_note(table: dict[str, Any]) -> str:
    subset = table.get("subset_seed")
    subset_text = f"subset seed {subset}" if subset is not None else "one subset seed"
    return (f"Intervals are 95 % Student-t intervals across the {len(table['seeds'])} training seeds, on one fixed "
            f"long-tailed subset ({subset_text}): they cover training noise, not the draw of the subset. Accuracy and "
            f"recall intervals are clipped to [0, 100] (marked {CLIPPED_MARK} where clipping cut them).")


def multiplicity_note(table: dict[str, Any]) -> str:
    block = table.get("multiplicity") or {}
    count = block.get("comparisons", len(table.get("versus_baseline", {})))
    if not block.get("results"):
        return (f"Multiplicity: this table makes {count} comparisons with {table['baseline']}; Holm's correction needs "
                "the per-seed values, which this results file (format 1) does not hold.")
    survivors = [loss for loss, entry in block["results"].items() if entry["survives"]]
    return (f"Multiplicity: {count} comparisons ({block['family']}; {block['test']}). Holm's correction at a "
            f"family-wise {100 * block['alpha']:g} %: {', '.join(survivors) if survivors else 'none'} "
            f"{'survives' if len(survivors) == 1 else 'survive'} (marked {HOLM_MARK}); the other columns are not corrected.")


def _marked(entry: dict[str, Any] | None, signed: bool = False, interval: str = " ({low} to {high})") -> str:
    text = interval_text(entry, signed, interval=interval)
    return text + CLIPPED_MARK if entry and entry.get("clipped") else text


def markdown_report(results: dict[str, Any]) -> str:
    lines = [
        f"# Grid `{results['grid']['name']}`",
        "",
        *([f"**{results['grid']['note']}**", ""] if results["grid"].get("note") else []),
        f"Preset `{results['grid']['preset']}` (model {results['config']['model']}, {results['config']['epochs']} epochs), losses {', '.join(results['grid']['losses'])}, seeds "
        f"{', '.join(map(str, results['grid']['seeds']))}. Each cell is one paired run (same initial weights and "
        "batches for every loss). Numbers are means across seeds with a 95 % t-interval in brackets; differences "
        "are paired per seed, then averaged. Evaluated in fp32 on the full balanced test set.",
        "",
        f"- Command: `{reproduce_command(results)}`",
        f"- Data: {data_copy_text(results.get('data'))}",
        f"- Hardware: {describe_hardware(results['hardware'])}",
        f"- Compute: {results['cells_done']} cells, {results['cell_seconds'] / 3600:.2f} h of cell wall time "
        f"({results['cells_per_hour']:.2f} cells per hour per process)",
        f"- Replay: {REPLAY_CONDITIONS}",
        f"- Results file format {results.get('format_version')}"
        + (": no per-seed values (written before format 2); retrain the grid to get them." if results.get("format_version") == 1 else
           ": every interval lists the per-seed values it was computed from."),
        "",
    ]
    for table in results["tables"]:
        baseline = table["baseline"]
        counts = table["class_counts"]
        survivors = {loss for loss, entry in ((table.get("multiplicity") or {}).get("results") or {}).items() if entry["survives"]}
        lines += [
            f"## {table['dataset']}, {table['profile']} profile, imbalance ratio {table['imbalance_ratio']:g} "
            f"({len(table['seeds'])} seeds)",
            "",
            f"Data: {data_copy_text(table.get('data') or results.get('data'))}. "
            f"Training images per class: {', '.join(map(str, counts))}. Groups: {table['groups']['rank']} "
            f"(*rank* columns); {table['groups']['count']} (*count* columns; an empty group shows —).",
            "",
            seeds_note(table),
            "",
            multiplicity_note(table),
            "",
        ]
        for key, title in (("losses", "As trained"), ("prior_corrected", "With post-hoc prior correction (logits − log prior, τ = 1)")):
            lines += [
                f"### {title}",
                "",
                "| loss | accuracy % | balanced accuracy % | head % | medium % | tail % | many % | medium (count) % | few % |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for loss, scores in table[key].items():
                lines.append("| " + " | ".join([loss, *(_marked(scores[metric]) for metric in METRIC_NAMES)]) + " |")
            lines.append("")
        for key, title in (("versus_baseline", f"Against {baseline}, as trained"),
                           ("prior_corrected_versus_baseline", f"Against {baseline}, both prior-corrected")):
            if not table[key]:
                continue
            lines += [
                f"### {title} (paired difference, points)",
                "",
                "| loss | Δ balanced accuracy | Δ head | Δ medium | Δ tail | Δ few | seeds | McNemar p per seed | verdict |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for loss, differences in table[key].items():
                balanced = differences["balanced_accuracy"]
                p_values = ", ".join(format_p_value(p) for p in table["mcnemar_p"].get(loss, [])) if key == "versus_baseline" else "—"
                mark = f" {HOLM_MARK}" if key == "versus_baseline" and loss in survivors else ""
                lines.append("| " + " | ".join([
                    loss, interval_text(balanced, True) + mark, interval_text(differences["rank_head"], True),
                    interval_text(differences["rank_medium"], True), interval_text(differences["rank_tail"], True),
                    interval_text(differences["count_few"], True), str(balanced["seeds"]), p_values, verdict(balanced, loss, baseline),
                ]) + " |")
            lines.append("")
        lines += [f"### Per-class recall, head → tail (mean over seeds, %)", "",
                  "| class | training images | " + " | ".join(table["per_class_recall"]) + " |",
                  "|---|---|" + "---|" * len(table["per_class_recall"])]
        for index, name in enumerate(table["class_names"]):
            cells = [interval_text(table["per_class_recall"][loss][index], interval="") for loss in table["per_class_recall"]]
            lines.append(f"| {index} {name} | {counts[index]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """A results.json of any readable format, as format 2 shows it: a format-1 file keeps its numbers, gets its
    score intervals clipped to [0, 1] (marked), a multiplicity block that says Holm needs per-seed values, and
    its data copy declared (`provenance.FORMAT_1_DATA_COPY`). Raises ValueError for anything else."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format_version") not in READABLE_RESULTS_FORMATS or not isinstance(data.get("tables"), list):
        raise ValueError(f"not a results file of format {' or '.join(map(str, READABLE_RESULTS_FORMATS))}")
    if data["format_version"] == 1:
        data.setdefault("data", {
            "copy": FORMAT_1_DATA_COPY,
            "how": "declared: this format-1 file predates the data record, and this project's machines held only this copy",
        })
        for table in data["tables"]:
            for key in ("losses", "prior_corrected"):
                for scores in table.get(key, {}).values():
                    for entry in scores.values():
                        _clip_in_place(entry, SCORE_BOUNDS)
            for entries in table.get("per_class_recall", {}).values():
                for entry in entries:
                    _clip_in_place(entry, SCORE_BOUNDS)
            table.setdefault("multiplicity", {"comparisons": len(table.get("versus_baseline", {})), "results": None})
            table.setdefault("subset_seed", (data.get("config") or {}).get("subset_seed"))
    return data


def _clip_in_place(entry: dict[str, Any], bounds: tuple[float, float]) -> None:
    if isinstance(entry, dict) and entry.get("low") is not None and "clipped" not in entry:
        entry["low"], entry["high"], entry["clipped"] = clip_interval(entry["low"], entry["high"], bounds)


def verdict(difference: dict[str, Any], loss: str, baseline: str) -> str:
    """Plain words for one paired difference across seeds; never a winner without an interval."""
    if difference.get("mean") is None:
        return "no data"
    if difference.get("low") is None:
        return "one seed: no interval"
    direction = direction_of(difference["low"], difference["high"])
    return "no clear difference" if direction == Direction.UNCLEAR else f"{loss} {direction} {baseline}"


# ---------------------------------------------------------------- hardware and distribution


def hardware(device: str = "auto") -> dict[str, Any]:
    """Where a cell ran: CPU model, cores, torch threads, torch/torchvision versions, deterministic settings,
    GPU (`provenance.environment`)."""
    return environment(device)


def combined_hardware(cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The hardware of several cells as one record. A grid resumed in another session may have run its cells
    with other thread counts (or on another host); a field on which the cells disagree lists every value seen
    ("1 or 2"), so the table never shows one cell's setting as if it held for all."""
    combined: dict[str, Any] = {}
    for key in dict.fromkeys(key for cell in cells for key in cell):
        # By their JSON text, so that nested settings (the deterministic flags) compare too.
        seen = {json.dumps(cell.get(key), sort_keys=True): cell.get(key) for cell in cells if cell.get(key) is not None}
        values = list(seen.values())
        if len(values) == 1:
            combined[key] = values[0]
        elif all(isinstance(value, dict) for value in values):
            combined[key] = values  # every setting seen, not one cell's
        else:
            combined[key] = " or ".join(map(str, sorted(values, key=str)))
    return combined


def describe_hardware(info: dict[str, Any]) -> str:
    text = f"{info.get('cpu')} ({info.get('cpu_count')} cores, {info.get('torch_threads')} torch threads per process)"
    if info.get("gpu"):
        text += f", {info['gpu_count']} × {info['gpu']}"
    processes = info.get("processes", 1)
    text += (f", {processes} processes (torchrun)" if processes > 1 else "") + f", torch {info.get('torch')}"
    if info.get("torchvision"):
        text += f", torchvision {info['torchvision']}"
    return text


@dataclass(frozen=True)
class Distribution:
    """This process's place in a torchrun launch (rank 0 of 1 when run directly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_environment(cls, environ: dict[str, str] | os._Environ = os.environ) -> "Distribution":
        return cls(
            int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)),
            int(environ.get("LOCAL_RANK", 0)), int(environ.get("LOCAL_WORLD_SIZE", environ.get("WORLD_SIZE", 1))),
        )

    def my_cells(self, cells: Sequence[Cell]) -> list[Cell]:
        return [cell for index, cell in enumerate(cells) if index % self.world_size == self.rank]


def set_up_process(distribution: Distribution, device: str) -> str:
    """Pin this rank to a GPU (round-robin: more ranks than GPUs share them) or to its share of the CPU
    cores, and join the process group. Returns the device name the cells should use."""
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(distribution.local_rank % torch.cuda.device_count())
    elif distribution.local_world_size > 1:
        # Ranks on one machine split its cores; oversubscribed threads make every rank slower.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // distribution.local_world_size))
    if distribution.world_size > 1:
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=GATHER_TIMEOUT)
    return device


def gather(summaries: list[dict[str, Any]], distribution: Distribution) -> list[dict[str, Any]] | None:
    """Every rank's cell summaries at rank 0 (None elsewhere)."""
    if distribution.world_size == 1:
        return summaries
    gathered: list[Any] | None = [None] * distribution.world_size if distribution.rank == 0 else None
    torch.distributed.gather_object(summaries, gathered, dst=0)
    if distribution.rank != 0:
        return None
    return [summary for part in gathered for summary in part]


# ---------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cce_demo.reproduce",
        description="Train a grid of paired runs (datasets x ratios x profiles x seeds) and write across-seed tables. "
        "Resumable: finished cells are skipped. Runs under torchrun too (each rank takes its share of the cells).",
    )
    parser.add_argument("--grid", help="a named grid (grids/<name>.toml) or a TOML/JSON grid file; flags override it")
    parser.add_argument("--name", help="the grid's name (default: the grid file's, or 'custom')")
    parser.add_argument("--preset", choices=[*PRESETS, *PRESET_ALIASES])
    parser.add_argument("--dataset", help=f"comma-separated, from {', '.join(DATASETS)}")
    parser.add_argument("--profile", help=f"comma-separated, from {', '.join(PROFILES)}")
    parser.add_argument("--imbalance-ratio", help="comma-separated ratios (>= 1)")
    parser.add_argument("--losses", help=f"comma-separated, from {', '.join(LOSS_NAMES)}")
    parser.add_argument("--seeds", help="comma-separated training seeds (e.g. 0,1,2)")
    parser.add_argument("--seed", type=int, help="one training seed")
    parser.add_argument("--max-per-class", type=int)
    parser.add_argument("--model", choices=MODEL_NAMES)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--schedule", choices=SCHEDULES)
    parser.add_argument("--gamma", type=float)
    parser.add_argument("--epoch-eval-images", type=int, help="test images scored after each epoch but the last")
    parser.add_argument("--device", choices=DEVICES)
    parser.add_argument("--data-dir", help="folder with CIFAR (npz or torchvision); default: $CCE_DATA_DIR or ./data")
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument("--output-dir", help="default: results/<grid name>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs)")
    parser.add_argument("--threads", type=int, help="torch threads per process (recorded in the command: a bit-for-bit "
                        "replay needs the same count; default: torch's, or cores / ranks under torchrun)")
    parser.add_argument("--tables-only", action="store_true",
                        help="train nothing: rewrite results.json and results.md from the finished cells in the output folder")
    return parser


def grid_from_args(arguments: argparse.Namespace) -> Grid:
    base = load_grid_file(named_grid_path(arguments.grid)).to_dict() if arguments.grid else {"name": "custom"}
    if arguments.name:
        base["name"] = arguments.name
    split = lambda text: [part.strip() for part in text.split(",") if part.strip()]  # noqa: E731
    if arguments.preset:
        base["preset"] = PRESET_ALIASES.get(arguments.preset, arguments.preset)
    if arguments.dataset:
        base["datasets"] = split(arguments.dataset)
    if arguments.profile:
        base["profiles"] = split(arguments.profile)
    if arguments.imbalance_ratio:
        try:
            base["imbalance_ratios"] = [float(part) for part in split(arguments.imbalance_ratio)]
        except ValueError as error:
            raise ValueError(f"imbalance_ratio: expected numbers separated by commas, got {arguments.imbalance_ratio!r}") from error
    if arguments.losses:
        base["losses"] = split(arguments.losses)
    if arguments.seeds is not None and arguments.seed is not None:
        raise ValueError("seeds: give either --seed or --seeds, not both")
    if arguments.seeds is not None:
        base["seeds"] = list(parse_seed_text(arguments.seeds))
    if arguments.seed is not None:
        base["seeds"] = [arguments.seed]
    overrides = dict(base.get("overrides", {}))
    for flag, field_name in (("max_per_class", "max_per_class"), ("model", "model"), ("epochs", "epochs"),
                             ("batch_size", "batch_size"), ("learning_rate", "learning_rate"),
                             ("weight_decay", "weight_decay"), ("schedule", "schedule"), ("gamma", "gamma"),
                             ("epoch_eval_images", "epoch_eval_images"), ("device", "device")):
        if getattr(arguments, flag) is not None:
            overrides[field_name] = getattr(arguments, flag)
    base["overrides"] = overrides
    return Grid(**base)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        grid = grid_from_args(arguments)
    except ValueError as error:
        parser.error(str(error))
    output_dir = Path(arguments.output_dir or Path("results") / grid.name)
    runs_dir = output_dir / "runs"
    distribution = Distribution.from_environment()
    device = dict(grid.overrides).get("device", PRESETS[grid.preset].device)
    set_up_process(distribution, device)
    if arguments.threads is not None:
        if arguments.threads < 1:
            parser.error(f"threads: must be at least 1, got {arguments.threads}")
        torch.set_num_threads(arguments.threads)
    runs_dir.mkdir(parents=True, exist_ok=True)
    cells = grid.cells()
    mine = distribution.my_cells(cells)
    given = portable_flags(sys.argv[1:] if argv is None else list(argv))
    given = [flag for flag in given if flag != "--tables-only"]
    if not any(flag == "--threads" or flag.startswith("--threads=") for flag in given):
        given += ["--threads", str(torch.get_num_threads())]  # a replay needs the same thread count
    flags = shlex.join(given)
    launcher = (f"torchrun --nnodes={distribution.world_size // distribution.local_world_size} "
                f"--nproc_per_node={distribution.local_world_size} -m" if distribution.world_size > 1 else "python -m")
    command = f"{launcher} cce_demo.reproduce {flags}".strip()
    summaries = []
    if arguments.tables_only:
        if distribution.world_size > 1:
            parser.error("--tables-only: run it as one process, not under torchrun")
        summaries = [cell_summary(runs_dir / cell.run_id) for cell in cells if cell_is_done(runs_dir / cell.run_id)]
        mine = []
        if not summaries:
            print(f"error: --tables-only: no finished cell of this grid in {runs_dir}", file=sys.stderr)
            return 2
    progress = CellProgress(len(mine), distribution, disabled=arguments.no_progress)
    try:
        for cell in mine:
            progress.set_description(cell.run_id)
            summaries.append(run_cell(cell, runs_dir, arguments.data_dir, not arguments.no_download, progress.cell_step))
            progress.update(1)
    except (data.DataUnavailableError, ValueError, RuntimeError) as error:
        progress.close()
        print(f"error (rank {distribution.rank}): {error}", file=sys.stderr)
        if distribution.world_size > 1:
            torch.distributed.destroy_process_group()
        return 2
    progress.close()
    everything = gather(summaries, distribution)
    if everything is not None:
        results = build_results(grid, everything, command, distribution)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(output_dir / RESULTS_JSON, results)
        write_atomic(output_dir / RESULTS_MARKDOWN, markdown_report(results).encode("utf-8"))
        print(f"Wrote {output_dir / RESULTS_JSON} and {output_dir / RESULTS_MARKDOWN} ({len(everything)} cells)")
    if distribution.world_size > 1:
        torch.distributed.destroy_process_group()
    return 0


def portable_flags(flags: Sequence[str]) -> list[str]:
    """The command line as others can rerun it: where the data lies here is nobody else's business."""
    portable, hide_next = [], False
    for flag in flags:
        if hide_next:
            portable.append("DIR")
            hide_next = False
        elif flag == "--data-dir":
            portable.append(flag)
            hide_next = True
        elif flag.startswith("--data-dir="):
            portable.append("--data-dir=DIR")
        else:
            portable.append(flag)
    return portable


def build_results(grid: Grid, summaries: list[dict[str, Any]], command: str, distribution: Distribution) -> dict[str, Any]:
    cell_seconds = sum(summary["wall_seconds"] for summary in summaries)
    info = combined_hardware([summary["hardware"] for summary in summaries]) if summaries else hardware()
    info["processes"] = distribution.world_size
    return {
        "format_version": RESULTS_FORMAT_VERSION,
        "grid": grid.to_dict(),
        "config": dataclasses.replace(grid.cells()[0].config, seeds=tuple(grid.seeds)).to_dict(),
        "command": command,
        "hardware": info,
        "data": combined_data(summary.get("data") for summary in summaries),
        "replay": REPLAY_CONDITIONS,
        "cells_done": len(summaries),
        "cell_seconds": cell_seconds,
        "cells_per_hour": 3600 * len(summaries) / cell_seconds if cell_seconds else 0.0,
        "written_at": _now(),
        "tables": aggregate(summaries, grid.losses),
    }


class CellProgress:
    """tqdm over this rank's cells (its ETA is per cell), with the running cell's step progress as a postfix."""

    def __init__(self, total: int, distribution: Distribution, disabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="cell", position=distribution.rank, disable=disabled, dynamic_ncols=True,
                         desc=f"rank {distribution.rank}" if distribution.world_size > 1 else None)
        self._cell_total: int | None = None
        self._last_shown = 0.0

    def cell_step(self, step: int, total: int | None) -> None:
        if total is not None:
            self._cell_total = total
        now = time.monotonic()
        if self._cell_total and now - self._last_shown > 2:
            self._last_shown = now
            self._bar.set_postfix_str(f"cell {100 * step / self._cell_total:.0f} %")

    def set_description(self, text: str) -> None:
        self._bar.set_description(text)

    def update(self, count: int) -> None:
        self._bar.update(count)

    def close(self) -> None:
        self._bar.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


if __name__ == "__main__":
    sys.exit(main())
