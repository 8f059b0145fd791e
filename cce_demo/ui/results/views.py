"""The Results tab: the shipped result grids (`results/<grid>/results.json`, written by
`python -m cce_demo.reproduce`) as charts and plain words. Pure functions of the files; no job, no state."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...grid_tables import (
    CLIPPED_MARK, HOLM_MARK, REPLAY_CONDITIONS, interval_text, load_results, multiplicity_note, reproduce_command,
    seeds_note,
)
from ...metrics import Direction, direction_of, with_minus
from ...metrics import signed as signed_number
from ...provenance import data_copy_text
from ...schema import GridResults, GridTable, Interval
from ...budget_curve import BudgetCurve, budget_curves, curve_statements
from ..kit.charts import Bars, Diffs, Line, RowLabel, bar_rows, escape, line_chart
from ..kit.names import colour, display_name, short_name

RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class ResultSet:
    """One grid's results file, read and parsed."""

    name: str
    path: Path
    data: GridResults


def load_result_sets(results_root: Path | None) -> tuple[list[ResultSet], list[str]]:
    """Every readable `results/<grid>/results.json`, by name, and one message per unreadable file."""
    sets, problems = [], []
    if results_root is None or not results_root.is_dir():
        return sets, problems
    for path in sorted(results_root.glob(f"*/{RESULTS_FILE}")):
        try:
            data = load_results(path)  # format 1 or 2 (json.JSONDecodeError and a failed parse are ValueErrors)
        except (OSError, ValueError) as error:
            problems.append(f"{path.parent.name}: {error}")
            continue
        sets.append(ResultSet(path.parent.name, path, data))
    return sets, problems


def _points(entry: Interval | None) -> float | None:
    return None if entry is None or entry.mean is None else 100 * entry.mean


def _interval_points(entry: Interval | None) -> tuple[float, float] | None:
    if entry is None or not entry.has_interval:
        return None
    return (100 * entry.low, 100 * entry.high)


def _with_interval(entry: Interval | None, signed: bool = False) -> str:
    text = with_minus(interval_text(entry, signed, empty="n/a", interval=" [{low}, {high}]"))
    return text + CLIPPED_MARK if entry is not None and entry.clipped else text


def _signed(points: float) -> str:
    """A signed number with a typographic minus (the names around it keep their hyphens)."""
    return signed_number(points)


def difference_words(entry: Interval, loss: str, baseline: str) -> str:
    """One paired difference across seeds in plain words; a direction only when the interval excludes zero."""
    mean = _points(entry)
    if mean is None:
        return f"{display_name(loss)}: no data"
    text = f"{display_name(loss)} − {display_name(baseline)} = {_signed(mean)} points"
    interval = _interval_points(entry)
    if interval is None:
        return text + " (one seed: no interval, so no conclusion)"
    low, high = interval
    text += f" (95 % interval {_signed(low)} to {_signed(high)})"
    direction = direction_of(low, high)
    if direction == Direction.UNCLEAR:
        return text + ": no clear difference at this scale"
    return text + f": {direction} {display_name(baseline)} at this scale"


def grid_scale_text(data: GridResults, table: GridTable) -> str:
    # The preset's TrainConfig fields as the grid recorded them: settings, not metrics.
    model, epochs, batch = (data.config.get(field) for field in ("model", "epochs", "batch_size"))
    return (
        f"{table.dataset}, {table.profile} profile, imbalance ratio {table.imbalance_ratio:g}; "
        f"preset {data.grid.preset} ({model}, {epochs} epochs, batch {batch}); "
        f"{len(table.seeds)} seeds ({', '.join(map(str, table.seeds))})"
    )


def hardware_text(data: GridResults) -> str:
    info = data.hardware
    text = f"{info.cpu or 'unknown CPU'}, {info.cpu_count} cores, {info.torch_threads} torch thread(s) per process"
    if info.gpu:
        text += f", {info.gpu_count} × {info.gpu}"
    return text + f"; {data.cells_done} cells in {data.cell_seconds / 3600:.1f} h of cell time"


def grid_sentence(table: GridTable) -> str:
    """The grid's answer in one sentence: which losses differ from the baseline in balanced accuracy by the
    project's one verdict rule (`metrics.direction_of`: a direction only when the 95 % interval excludes zero)."""
    seeds = len(table.seeds)
    scale = f"Over {seeds} seed{'s' if seeds != 1 else ''} at imbalance ratio {table.imbalance_ratio:g}"
    if seeds < 2:
        return f"{scale}: one seed gives no interval, so this grid names no direction yet."
    by_direction: dict[Direction, list[str]] = {direction: [] for direction in Direction}
    for loss, entry in table.versus_baseline.items():
        interval = _interval_points(entry.balanced_accuracy)
        if interval is not None:
            by_direction[direction_of(*interval)].append(display_name(loss))
    base = display_name(table.baseline)
    words = {Direction.ABOVE: "higher than", Direction.BELOW: "lower than"}
    parts = [f"{', '.join(names)} {words[direction]} {base}" for direction, names in by_direction.items()
             if names and direction != Direction.UNCLEAR]
    if by_direction[Direction.UNCLEAR]:
        parts.append(f"no clear difference from {base} for {', '.join(by_direction[Direction.UNCLEAR])}")
    survivors = table.multiplicity.survivors
    holm = ""
    if table.multiplicity.results is not None:
        holm = (f" After Holm's correction, {', '.join(map(display_name, survivors))} "
                f"{'holds' if len(survivors) == 1 else 'hold'} up." if survivors else " None holds up after Holm's correction.")
    return f"{scale}, in balanced accuracy: {'; '.join(parts) or 'no comparison'}.{holm}"


def summary_html(data: GridResults, table: GridTable) -> str:
    """What the evidence shows at this scale, in plain words."""
    baseline = table.baseline
    survivors = set(table.multiplicity.survivors)
    items = [f"<li><span style='font-weight:600'>Balanced accuracy:</span> {escape(difference_words(entry.balanced_accuracy, loss, baseline))}"
             f"{escape(' ' + HOLM_MARK) if loss in survivors else ''}.</li>"
             for loss, entry in table.versus_baseline.items()]
    tails = [f"{short_name(loss)} {_with_interval(entry.rank_tail, signed=True)}" for loss, entry in table.versus_baseline.items()]
    if tails:
        items.append(f"<li><span style='font-weight:600'>Tail recall</span> (3 rarest classes), difference to {escape(short_name(baseline))} in points: "
                     f"{escape('; '.join(tails))}.</li>")
    plain = table.losses[baseline].balanced_accuracy if baseline in table.losses else None
    corrected = table.prior_corrected[baseline].balanced_accuracy if baseline in table.prior_corrected else None
    if _points(plain) is not None and _points(corrected) is not None:
        items.append(
            f"<li><span style='font-weight:600'>Free baseline:</span> correcting {escape(short_name(baseline))}'s logits for the training prior after "
            f"training (logits − log prior, no retraining) moves its balanced accuracy from {_points(plain):.1f} % to "
            f"{_points(corrected):.1f} %. A training-time loss has to beat that to be worth its cost.</li>"
        )
    items.append(f"<li>{escape(seeds_note(table))}</li>")
    items.append(f"<li>{escape(multiplicity_note(table))}</li>")
    return f'<ul style="margin:4px 0 8px 18px;padding:0">{"".join(items)}</ul>'


def accuracy_chart(table: GridTable) -> str:
    """Balanced accuracy per loss (as trained and prior-corrected), with each loss − baseline and its interval."""
    losses = list(table.losses)
    baseline = table.baseline
    rows = [RowLabel(display_name(loss), _with_interval(table.losses[loss].balanced_accuracy) + " %") for loss in losses]
    plain = [table.losses[loss].balanced_accuracy.mean for loss in losses]
    corrected = [table.prior_corrected[loss].balanced_accuracy.mean if loss in table.prior_corrected else None for loss in losses]
    versus = table.versus_baseline
    diffs = Diffs(
        f"− {short_name(baseline)}", "#555555",
        [0.0 if loss == baseline else _points(versus[loss].balanced_accuracy) for loss in losses],
        [None if loss == baseline else _interval_points(versus[loss].balanced_accuracy) for loss in losses],
    )
    return bar_rows(
        title="Balanced accuracy per loss (mean over seeds)",
        subtitle=f"Solid: as trained; hatched: with post-hoc prior correction. Right: paired difference to "
        f"{short_name(baseline)} in points, with its 95 % interval across seeds.",
        rows=rows, label_heading="loss", bars_heading="",
        bars=[Bars("as trained", "#4b5563", plain), Bars("prior-corrected", "#9ca3af", corrected, hatched=True)],
        diffs=[diffs], diffs_heading=f"loss − {short_name(baseline)} (points)", mark_zero=False, max_height=None,
    )


def recall_chart(table: GridTable) -> str:
    """Per-class recall averaged over seeds, head → tail, with each loss − baseline per class and its interval."""
    counts = table.class_counts
    order = sorted(range(len(counts)), key=lambda index: -counts[index])
    losses = list(table.per_class_recall)
    baseline = table.baseline
    rows = [RowLabel(f"{index} {table.class_names[index]}", f"{counts[index]:,} training images") for index in order]
    bars = [Bars(short_name(loss), colour(loss), [table.per_class_recall[loss][index].mean for index in order])
            for loss in losses]
    diffs = [
        Diffs(f"{short_name(loss)} − {short_name(baseline)}", colour(loss),
              [_points(table.per_class_difference[loss][index]) for index in order],
              [_interval_points(table.per_class_difference[loss][index]) for index in order])
        for loss in losses if loss in table.per_class_difference
    ]
    return bar_rows(
        title="Per-class recall, head → tail (mean over seeds)",
        subtitle=f"A red mark is zero recall. Right: each loss − {short_name(baseline)} per class, in points, with its 95 % interval, "
        "all on one scale (the axis under them), so equal lengths are equal differences. These "
        f"{len(diffs) * len(order)} per-class intervals are not corrected for multiplicity: with no real difference "
        "anywhere, about one in twenty would still exclude zero.",
        rows=rows, bars=bars, diffs=diffs, diffs_heading=f"loss − {short_name(baseline)} (points)", max_height=None,
        # One shared scale: with a scale per loss a +3 was drawn as long as a +10 (issue 31).
        per_diff_scale=False,
    )


def budget_chart(curve: BudgetCurve) -> str:
    """One ratio's curve: each loss − baseline in balanced accuracy against the epochs trained, the mean as a
    line with markers and its 95 % interval as two faint lines, one point per shipped grid."""
    lines = [Line("zero", "#6b7280", [(epochs, 0.0) for epochs in curve.budgets], style="dashed", width=1.0, in_legend=False)]
    for loss, points in curve.points.items():
        lines.append(Line(short_name(loss), colour(loss), [(point.epochs, _points(point.difference)) for point in points],
                          markers=True))
        for end in ("low", "high"):
            lines.append(Line(f"{short_name(loss)} 95 % {end}", colour(loss),
                              [(point.epochs, None if getattr(point.difference, end) is None else 100 * getattr(point.difference, end))
                               for point in points], style="faint", in_legend=False))
    base = short_name(curve.baseline)
    grids = sorted({point.grid for points in curve.points.values() for point in points})
    per_seed = any(point.subset_per_seed for points in curve.points.values() for point in points)
    subtitle = (f"Each loss − {base}, paired per seed, mean over seeds (markers) and its 95 % interval (faint), at every "
                f"budget a shipped grid trained ({', '.join(grids)}). Above the dashed zero the loss beat {base}.")
    if per_seed:
        subtitle += " Where a grid drew a long-tailed subset per seed, its interval covers the data draw too."
    return line_chart(
        title=f"Balanced accuracy − {base} against training length, ratio {curve.imbalance_ratio:g} ({curve.dataset})",
        subtitle=subtitle, lines=lines, x_label="epochs", x_name="epochs", y_title=f"− {base} (points)",
        x_integer=True, x_ticks=[(epochs, f"{epochs}") for epochs in curve.budgets], height=240,
        y_format=lambda value: _signed(value) if value else "0", value_format=_signed,
        x_text=lambda value: f"{value:g} epochs",
    )


def budget_section_html(sets: Sequence[ResultSet]) -> str:
    """The curves of every ratio, and what each says in words (budget_curve.curve_statements)."""
    curves = budget_curves([(result.name, result.data) for result in sets])
    if not curves:
        return ""
    parts = ['<h3 style="margin:6px 0 2px">The difference against training length</h3>']
    single = []
    for curve in curves:
        if len(curve.budgets) < 2:  # a chart of one x position is a column of dots: say it in a line instead
            single.append(f"ratio {curve.imbalance_ratio:g} ({curve.dataset}): only {curve.budgets[0]} epochs")
            continue
        items = "".join(f"<li>{escape(sentence)}</li>" for sentence in curve_statements(curve))
        parts.append(f'<div class="cc-card" style="margin:8px 0">{budget_chart(curve)}'
                     f'<ul style="margin:4px 0 8px 18px;padding:0">{items}</ul></div>')
    if single:
        parts.append(f'<div class="cc-sub">One budget shipped, so no curve yet: {escape("; ".join(single))}. Its differences '
                     "are in the grid below; the curve appears once a second grid trains that ratio.</div>")
    return "".join(parts)


def has_budget_chart(sets: Sequence[ResultSet]) -> bool:
    return any(len(curve.budgets) >= 2 for curve in budget_curves([(result.name, result.data) for result in sets]))


def result_set_html(result: ResultSet) -> str:
    data = result.data
    parts = [f'<h3 style="margin:6px 0 2px">Grid <code>{escape(result.name)}</code></h3>']
    for table in data.tables:
        parts.append(
            '<div class="cc-card" style="margin:8px 0">'
            f'<div class="cc-title">{escape(grid_scale_text(data, table))}</div>'
            f'<p class="cc-grid-answer" style="margin:4px 0;font-weight:600">{escape(grid_sentence(table))}</p>'
            f'<div class="cc-sub">Data: {escape(data_copy_text(table.data or data.data))}.</div>'
            f'<div class="cc-sub">Hardware: {escape(hardware_text(data))}. Reproduce it with: <code>{escape(reproduce_command(data))}</code>. '
            f'{escape(REPLAY_CONDITIONS)}</div>'
            f"{summary_html(data, table)}</div>"
        )
        parts.append(accuracy_chart(table))
        parts.append('<div style="height:10px"></div>')
        parts.append(recall_chart(table))
    return "".join(parts)


def results_html(sets: Sequence[ResultSet], problems: Sequence[str] = ()) -> str:
    """The whole tab's content."""
    if not sets:
        text = ("No result grid is shipped with this copy of the app. Make one with "
                "<code>python -m cce_demo.reproduce --grid cifar10-lt-standard --data-dir DIR --threads 1</code>.")
        return f'<div class="cc-card">{text}</div>'
    intro = (
        '<div class="cc-card">Every number here is a mean over several seeds, each seed a <i>paired</i> run (same '
        "initial weights and batches for every loss), with a 95 % interval across seeds; a direction is named only "
        "when the interval excludes zero. These are the scales this project could afford on a CPU. The CCE paper "
        "reports 200-epoch runs; the presets <code>authors</code> (the CCE authors' code) and <code>ldam-drw</code> "
        "(Cao et al.'s recipe) train 200 epochs on a GPU, and no number of the paper has been checked against them here.</div>"
    )
    grids = "".join(result_set_html(result) for result in sets)
    # The curve leads once it has one (the central question: does a difference hold as training gets longer?).
    body = budget_section_html(sets) + grids if has_budget_chart(sets) else grids + budget_section_html(sets)
    notes = "".join(f'<div class="cc-sub">Unreadable: {escape(problem)}</div>' for problem in problems)
    return intro + body + notes


def results_tab_html(results_dir: Path | None) -> str:
    """The Results tab, built once at start-up: a grid file that cannot be drawn (a missing key, a wrong type)
    is listed as unreadable instead of stopping the app."""
    sets, problems = load_result_sets(results_dir)
    drawable = []
    for result in sets:
        try:
            result_set_html(result)
        except Exception as error:  # noqa: BLE001 - any malformed grid: listed, never fatal
            problems.append(f"{result.name}: cannot be drawn ({type(error).__name__}: {str(error)[:200]})")
            continue
        drawable.append(result)
    html = results_html(drawable, problems)
    if not drawable and problems:  # results_html lists problems only beside a drawable grid
        html += "".join(f'<div class="cc-sub">Unreadable: {escape(problem)}</div>' for problem in problems)
    return html
