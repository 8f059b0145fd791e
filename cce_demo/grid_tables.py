"""Result-grid tables: the across-seed means and 95 % intervals, the paired differences against the baseline,
Holm's correction, and how they read (results.json, results.md, the Results tab, the README's claims). Pure
functions of finished cells' summaries and of results files; the grid CLI (reproduce.py) trains the cells and
writes the files, the Results tab and claims.py only read them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .metrics import (
    COUNT_GROUP_NAMES, GROUP_NAMES, Direction, clip_interval, count_groups, direction_of, format_p_value, holm,
    mean_recall_of_groups, paired_t_p_value, summarise_differences,
)
from .provenance import FORMAT_1_DATA_COPY, combined_data, data_copy_text
from .schema import GridResults, GridTable, Interval


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
            "subset_seed": members[0].get("subset_seed") if len({cell.get("subset_seed") for cell in members}) == 1 else None,
            "subset_seeds": [cell.get("subset_seed") for cell in members],
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


def _interval(entry: Interval | Mapping[str, Any] | None) -> Interval | None:
    return Interval.model_validate(entry) if isinstance(entry, Mapping) else entry


def interval_text(entry: Interval | Mapping[str, Any] | None, signed: bool = False, empty: str = "—",
                  interval: str = " ({low} to {high})") -> str:
    """A mean in percent (or points) with its interval when there is one, as written by `interval_of`; the
    Results tab uses it too, with its own brackets."""
    entry = _interval(entry)
    if entry is None or entry.mean is None:
        return empty
    sign = "+" if signed else ""
    text = f"{100 * entry.mean:{sign}.1f}"
    if entry.low is not None and entry.high is not None:
        text += interval.format(low=f"{100 * entry.low:{sign}.1f}", high=f"{100 * entry.high:{sign}.1f}")
    return text


def reproduce_command(results: GridResults | Mapping[str, Any]) -> str:
    """The grid's command with the torch thread count its cells ran with, which a bit-for-bit replay needs;
    files of format 1 recorded the command without it."""
    if isinstance(results, Mapping):
        results = GridResults.model_validate(results)
    threads = results.hardware.torch_threads
    if "--threads" in results.command or not isinstance(threads, int):
        return results.command
    return f"{results.command} --threads {threads}"


REPLAY_CONDITIONS = (
    "A cell can replay bit for bit only on the same CPU (vendor, family, model, stepping and vector extensions: "
    "the kernels torch picks follow them, and a CPU name such as \"AMD EPYC\" covers several), with the same torch "
    "thread count, torch and torchvision builds, deterministic settings and data files; otherwise expect "
    "differences of the size of the seed-to-seed spread. python -m cce_demo.replay RUN_DIR checks it and names "
    "the fields that differ."
)


def _table(table: GridTable | Mapping[str, Any]) -> GridTable:
    return GridTable.model_validate(table) if isinstance(table, Mapping) else table


def seeds_note(table: GridTable | Mapping[str, Any]) -> str:
    table = _table(table)
    clipping = f"Accuracy and recall intervals are clipped to [0, 100] (marked {CLIPPED_MARK} where clipping cut them)."
    if len(set(table.subset_seeds) - {None}) > 1:
        return (f"Intervals are 95 % Student-t intervals across the {len(table.seeds)} seeds, and each seed trained on "
                f"its own draw of the long-tailed subset (subset seeds {', '.join(map(str, table.subset_seeds))}): they "
                f"cover training noise and the draw of the subset together. {clipping}")
    subset_text = f"subset seed {table.subset_seed}" if table.subset_seed is not None else "one subset seed"
    return (f"Intervals are 95 % Student-t intervals across the {len(table.seeds)} training seeds, on one fixed "
            f"long-tailed subset ({subset_text}): they cover training noise, not the draw of the subset. {clipping}")


def multiplicity_note(table: GridTable | Mapping[str, Any]) -> str:
    table = _table(table)
    block = table.multiplicity
    count = block.comparisons or len(table.versus_baseline)
    if not block.results:
        return (f"Multiplicity: this table makes {count} comparisons with {table.baseline}; Holm's correction needs "
                "the per-seed values, which this results file (format 1) does not hold.")
    survivors = block.survivors
    return (f"Multiplicity: {count} comparisons ({block.family}; {block.test}). Holm's correction at a "
            f"family-wise {100 * block.alpha:g} %: {', '.join(survivors) if survivors else 'none'} "
            f"{'survives' if len(survivors) == 1 else 'survive'} (marked {HOLM_MARK}); the other columns are not corrected.")


def _marked(entry: dict[str, Any] | None, signed: bool = False, interval: str = " ({low} to {high})") -> str:
    text = interval_text(entry, signed, interval=interval)
    return text + CLIPPED_MARK if entry and entry.get("clipped") else text


def seeds_text(results: dict[str, Any]) -> str:
    """Which seeds the tables hold, and which of the grid's seeds are configured but not trained yet: the grid
    file lists all of them, and a header that repeated that list would claim cells that do not exist."""
    configured = [int(seed) for seed in results["grid"].get("seeds", [])]
    if not all(isinstance(table.get("seeds"), list) for table in results["tables"]):
        return f"seeds {', '.join(map(str, configured))}"  # a file whose tables do not list their seeds
    trained = sorted({int(seed) for table in results["tables"] for seed in table["seeds"]})
    text = f"seeds in the tables {', '.join(map(str, trained)) or 'none'}"
    missing = [seed for seed in configured if seed not in trained]
    if missing:
        text += f" (seed{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} configured, not trained yet)"
    return text


def markdown_report(results: dict[str, Any]) -> str:
    lines = [
        f"# Grid `{results['grid']['name']}`",
        "",
        *([f"**{results['grid']['note']}**", ""] if results["grid"].get("note") else []),
        f"Preset `{results['grid']['preset']}` (model {results['config']['model']}, {results['config']['epochs']} epochs), losses {', '.join(results['grid']['losses'])}, "
        f"{seeds_text(results)}. Each cell is one paired run (same initial weights and "
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
        lines += ["### Per-class recall, head → tail (mean over seeds, %)", "",
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


def load_results(path: str | os.PathLike) -> GridResults:
    """A results.json of any readable format, typed (`schema.GridResults`): what the Results tab and the verdict
    card read. Raises ValueError (pydantic's ValidationError is one) for a file that does not parse."""
    return GridResults.model_validate(read_results(path))


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


def describe_hardware(info: dict[str, Any]) -> str:
    text = f"{info.get('cpu')} ({info.get('cpu_count')} cores, {info.get('torch_threads')} torch threads per process)"
    if info.get("gpu"):
        text += f", {info['gpu_count']} × {info['gpu']}"
    processes = info.get("processes", 1)
    text += (f", {processes} processes (torchrun)" if processes > 1 else "") + f", torch {info.get('torch')}"
    if info.get("torchvision"):
        text += f", torchvision {info['torchvision']}"
    return text
