"""Views of a job snapshot: what the compare view draws (status and progress, training-loss and per-epoch
curves, per-class recall with the per-class differences, class counts, the group table and the confusion
matrices). Pure functions: a `JobSnapshot` (and settings) in, HTML or a table out.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd

from ...config import TrainConfig
from ...datasets import dataset_spec
from ...metrics import GROUP_NAMES, class_groups, summarise_differences
from ...run_state import JobSnapshot
from ...schema import EpochPoint, EpochScores, Number, StepMetrics
from ...status import PARTIAL, JobStatus
from ..kit.charts import (
    DEFAULT_SMOOTHING, Bars, Diffs, Line, RowLabel, Separator, bar_rows, escape, finite, head_to_tail, line_chart, progress_bar,
)
from ..kit.errors import without_paths
from ..kit.formatting import countdown_text, number_cell, percent_cell
from ..kit.names import colour, display_name, short_name

NEXT_RUN_COLOUR = "#f59e0b"
SHOWN_RUN_COLOUR = "#64748b"


def status_of(snapshot: JobSnapshot) -> JobStatus:
    try:
        return JobStatus(snapshot.status)
    except ValueError:
        return JobStatus.FAILED


# ---------------------------------------------------------------- epochs done (partial runs)


@dataclass(frozen=True)
class Completion:
    epochs_done: int
    epochs_planned: int
    status: JobStatus

    @property
    def partial(self) -> bool:
        return self.status in PARTIAL and self.epochs_done < self.epochs_planned

    def text(self) -> str:
        """"1 of 4 epochs" (the whole run's epochs, over all seeds)."""
        return f"{self.epochs_done} of {self.epochs_planned} epochs"


def partial_sentence(done: Completion) -> str:
    """The status line's note on a run that stopped early. With no epoch completed there are no scores to
    speak of, so it must not point at "the last completed epoch" (issue 20, item 10)."""
    if done.epochs_done == 0:
        return (f"<b>Partial:</b> stopped after {escape(done.text())}, before any epoch completed; there are no "
                "test scores for this run.")
    return (f"<b>Partial:</b> stopped after {escape(done.text())}; the scores below are from the last "
            "completed epoch.")


def completion(snapshot: JobSnapshot) -> Completion:
    config = snapshot.config
    return Completion(len(snapshot.epochs), config.epochs * len(config.seeds), status_of(snapshot))


# ---------------------------------------------------------------- status and progress


def loss_form_note(config: TrainConfig) -> str:
    forms = []
    if "cce" in config.losses:
        forms.append(f"<b>CCE (paper form)</b>: CE + γ/(K−1)·C with γ = {config.gamma:g} (flattens wrong-class probabilities)")
    if "cce_reference" in config.losses:
        forms.append(f"<b>CCE (reference code)</b>: the authors' code, CE − β·S with β = {config.balancing_factor:g}, "
                     "S = −C/K (so CE + β·C/K: sharpens for β &gt; 0)")
    return "; ".join(forms)


def status_html(snapshot: JobSnapshot | None, title: str = "", wait_seconds: float | None = None) -> str:
    """The status line with a progress bar and the ETA (#job-status); a queued job's with its place and, given
    `wait_seconds`, how long until it should start."""
    if snapshot is None:
        return ('<div class="cc-status">No run to show yet. Choose settings and press <b>Start training</b>, or open '
                'a run in the <i>Runs</i> tab.</div>')
    status = status_of(snapshot)
    config = snapshot.config
    header = (f"<b>{escape(title or 'Job')}</b> <code>{escape(snapshot.job_id)}</code> — <b>{escape(status.value)}</b>"
              f" · {escape(' vs '.join(display_name(loss) for loss in config.losses))} · device {escape(snapshot.device)}")
    parts = [header]
    estimate = snapshot.estimate_seconds
    estimate_words = snapshot.estimate_text or (f"about {countdown_text(estimate)}" if estimate else "")
    if status == JobStatus.QUEUED:
        parts.append(progress_bar(0.0, queued=True))
        wait = f"Waiting in the queue at position {snapshot.queue_position}." if snapshot.queue_position else "Waiting to start."
        if wait_seconds is not None and snapshot.queue_position:
            wait += f" Expected wait: about {countdown_text(wait_seconds)} (the jobs ahead of yours)."
        if estimate_words:
            wait += f" Estimated: {estimate_words}."
        parts.append(escape(wait))
    elif status == JobStatus.RUNNING:
        parts.append(progress_bar(snapshot.progress))
        line = f"{100 * snapshot.progress:.0f} %"
        eta = countdown_text(snapshot.eta_seconds)
        line += f" · about {eta} left" if eta else " · estimating the time left…"
        if estimate_words:
            line += f" (estimated at submit: {estimate_words})"
        line += f" · {snapshot.message}"
        parts.append(escape(line))
    else:
        done = completion(snapshot)
        if done.partial:
            parts.append(progress_bar(done.epochs_done / max(1, done.epochs_planned), queued=True))
            parts.append(partial_sentence(done))
        if snapshot.error and status in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERRUPTED, JobStatus.TIMED_OUT):
            parts.append(f"<b>Reason:</b> {escape(without_paths(snapshot.error))}")
        if snapshot.resumable_from is not None:
            seed, epoch = snapshot.resumable_from
            parts.append(f"It can go on from its last complete epoch (seed {escape(seed)}, epoch {escape(epoch)} of "
                         f"{escape(config.epochs)}), bit-identical to an unbroken run, with "
                         f"<code>{escape(snapshot.resume_command)}</code>; meanwhile Classify uses that epoch's models.")
    if len(config.seeds) > 1 and snapshot.epochs:
        parts.append(f"Curves run through the seeds one after another; recall, groups and confusion matrices show seed "
                     f"{escape(snapshot.epochs[-1].seed)}, the latest evaluated.")
    note = loss_form_note(config)
    if note:
        parts.append(f'<span style="font-size:12px">{note}.</span>')
    return f'<div class="cc-status">{"<br>".join(parts)}</div>'


def live_strip_html(snapshot: JobSnapshot | None) -> str:
    """While a job trains: one compact line under Start/Stop with its progress and time left, and each model's
    latest training loss and balanced accuracy (from its last evaluated epoch). Empty otherwise."""
    if snapshot is None or status_of(snapshot) != JobStatus.RUNNING:
        return ""
    eta = countdown_text(snapshot.eta_seconds)
    parts = [f"<b>{100 * snapshot.progress:.0f} %</b>", f"about {escape(eta)} left" if eta else "estimating the time left"]
    latest_step = snapshot.steps[-1] if snapshot.steps else None
    latest_epoch = snapshot.epochs[-1] if snapshot.epochs else None
    if latest_epoch is not None:
        parts.append(f"epoch {escape(latest_epoch.epoch)} of {escape(snapshot.config.epochs)} evaluated")
    for loss in snapshot.config.losses:
        figures = []
        if latest_step is not None and finite(latest_step.losses.get(loss)) is not None:
            figures.append(f"loss {latest_step.losses[loss]:.3f}")
        if latest_epoch is not None and loss in latest_epoch.losses and finite(latest_epoch.losses[loss].balanced_accuracy) is not None:
            figures.append(f"balanced accuracy {100 * latest_epoch.losses[loss].balanced_accuracy:.1f} %")
        if figures:
            parts.append(f'<span style="color:{colour(loss)};font-weight:600">{escape(short_name(loss))}</span> '
                         f"{escape(', '.join(figures))}")
    return (f'<div class="cc-card cc-live" role="status" aria-live="off" style="padding:6px 10px;font-size:13px">'
            f'{" · ".join(parts)}</div>')


# ---------------------------------------------------------------- training loss


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction, as Weights & Biases and TensorBoard draw it:
    weight 0 is the raw series, 0.99 very smooth."""
    if weight <= 0:
        return list(values)
    weight = min(weight, 0.999)
    result, average = [], 0.0
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        result.append(average / (1 - weight ** count))
    return result


def seed_boundaries(points: Sequence[StepMetrics]) -> list[Separator]:
    """Where a new seed starts in the training-loss series, which runs through the seeds one after another."""
    separators = []
    for previous, point in zip(points, points[1:]):
        if point.seed != previous.seed:
            separators.append(Separator(point.global_step - 0.5, f"seed {point.seed}"))
    return separators


def loss_chart(snapshot: JobSnapshot | None, smoothing: float = DEFAULT_SMOOTHING) -> str:
    title = "Training loss per step"
    if snapshot is None or not snapshot.steps:
        return line_chart(title=title, lines=[], x_label="step", y_title="training loss",
                          empty_text="The training loss appears with the first steps.")
    losses = list(snapshot.config.losses)
    steps = [point.global_step for point in snapshot.steps]
    raw, parts, main = [], [], []
    for loss in losses:
        values = [point.losses.get(loss) for point in snapshot.steps]
        known = [(step, value) for step, value in zip(steps, values) if value is not None]
        if not known:
            continue
        xs = [step for step, _ in known]
        ys = [value for _, value in known]
        if smoothing > 0:
            raw.append(Line(f"{display_name(loss)} (raw)", colour(loss), list(zip(xs, ys)), style="faint", width=1, in_legend=False))
        main.append(Line(display_name(loss), colour(loss), list(zip(xs, smooth(ys, smoothing))), width=2.2))
        if loss != "ce":
            ce_part = [(step, point.cross_entropy.get(loss)) for step, point in zip(steps, snapshot.steps)]
            ce_part = [(step, value) for step, value in ce_part if value is not None]
            if ce_part:
                parts.append(Line(f"{display_name(loss)} · CE part", colour(loss),
                                  list(zip([s for s, _ in ce_part], smooth([v for _, v in ce_part], smoothing))),
                                  style="dashed", width=1.6))
    # Drawn bottom to top: raw, CE parts, the other losses, CE last so that nothing hides it.
    ordered = raw + parts + [line for line in main if line.label != display_name("ce")] + [line for line in main if line.label == display_name("ce")]
    legend = [(line.label, line.colour, "solid") for line in main] + [(line.label, line.colour, "dashed") for line in parts]
    if raw:
        legend.append(("raw per-step values", "#888888", "faint"))
    subtitle = (f"Smoothed (exponential moving average, {smoothing:g}); faint: the raw values. " if smoothing > 0 else "Raw values. ")
    if parts:
        subtitle += "Dashed: the plain cross-entropy part of each loss, on CE's scale."
    return line_chart(title=title, lines=ordered, x_label="training step (all seeds)", y_title="training loss", x_name="step",
                      legend=legend, subtitle=subtitle,
                      y_floor=0.0, separators=seed_boundaries(snapshot.steps), height=240)


# ---------------------------------------------------------------- per-epoch test metrics


def epoch_positions(snapshot: JobSnapshot) -> list[tuple[int, EpochPoint]]:
    """(x position, epoch point): with several seeds, later seeds' epochs follow the earlier ones."""
    seeds = list(snapshot.config.seeds)
    epochs = snapshot.config.epochs
    return [((seeds.index(point.seed) * epochs if point.seed in seeds else 0) + point.epoch, point)
            for point in snapshot.epochs]


def axis_title(title: str, as_percent: bool) -> str:
    """A y-axis title from a chart title: "Test balanced accuracy per epoch" -> "test balanced accuracy (%)"."""
    name = title.removesuffix(" per epoch")
    name = name[:1].lower() + name[1:]
    return f"{name} (%)" if as_percent else name


def epoch_position_text(snapshot: JobSnapshot) -> Callable[[float], str]:
    """How a tooltip names an x position of an epoch chart: "epoch 3", or with several seeds (their epochs laid
    one after another, see `epoch_positions`) "seed 1, epoch 3"."""
    seeds, epochs = list(snapshot.config.seeds), snapshot.config.epochs
    if len(seeds) <= 1 or epochs < 1:
        return lambda x: f"epoch {x:g}"

    def text(x: float) -> str:
        index, epoch = divmod(int(round(x)) - 1, epochs)
        seed = seeds[index] if 0 <= index < len(seeds) else index
        return f"seed {seed}, epoch {epoch + 1}"
    return text


def epoch_chart(snapshot: JobSnapshot | None, metric: Callable[[EpochScores], Number], title: str,
                as_percent: bool = False, y_title: str = "") -> str:
    """One line per loss of `metric` (e.g. `lambda scores: scores.test_loss`) at each evaluated epoch.
    `y_title` names the y axis; by default the title without "per epoch"."""
    waiting = "The first point appears when epoch 1 has been evaluated."
    y_title = y_title or axis_title(title, as_percent)
    if snapshot is None or not snapshot.epochs:
        return line_chart(title=title, lines=[], x_label="epoch", y_title=y_title, empty_text=waiting, height=200)
    positioned = epoch_positions(snapshot)
    lines = []
    for loss in snapshot.config.losses:
        points = [(x, metric(point.losses[loss]) if loss in point.losses else None) for x, point in positioned]
        if any(value is not None for _, value in points):
            lines.append(Line(display_name(loss), colour(loss), points, markers=True))
    legend = [(line.label, line.colour, "solid") for line in lines]
    lines.sort(key=lambda line: line.label == display_name("ce"))  # drawn last: on top
    separators, x_ticks = [], None
    if len(snapshot.config.seeds) > 1:
        epochs = snapshot.config.epochs
        seen = sorted({(snapshot.config.seeds.index(p.seed) if p.seed in snapshot.config.seeds else 0) for _, p in positioned})
        separators = [Separator(index * epochs + 0.5, f"seed {snapshot.config.seeds[index]}") for index in seen if index > 0]
        x_ticks = []
        for index in seen:
            x_ticks.append((index * epochs + 1, "1"))
            if epochs > 1:
                x_ticks.append((index * epochs + epochs, str(epochs)))
        present = {x for x, _ in positioned}
        x_ticks = [(x, text) for x, text in x_ticks if min(present) <= x <= max(present)]
    y_format = (lambda value: f"{100 * value:.0f} %") if as_percent else (lambda value: f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}")
    # Tooltips and the hidden table: one decimal more than the axis (32.4 %, where the axis says 32 %).
    value_format = (lambda value: f"{100 * value:.1f} %") if as_percent else (lambda value: f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}")
    return line_chart(title=title, lines=lines, x_label="epoch", y_title=y_title, x_integer=True, x_ticks=x_ticks,
                      y_format=y_format, value_format=value_format, x_text=epoch_position_text(snapshot),
                      separators=separators, height=200, y_floor=0.0, legend=legend)


# ---------------------------------------------------------------- per-class recall and differences


def group_of(class_counts: Sequence[int]) -> dict[int, str]:
    if len(class_counts) < 3:
        return {}
    return {index: name for name, members in class_groups(class_counts).items() for index in members}


def per_class_differences(snapshot: JobSnapshot, other: str) -> tuple[list[float | None], list[tuple[float, float] | None] | None, int]:
    """Per class, `other` − baseline recall in points. With two or more finished seeds: the mean over the
    seeds (from each seed's per-class paired counts) and its 95 % interval; else the latest evaluation."""
    comparisons = [c for c in snapshot.comparisons if c.other == other and c.per_class_mcnemar]
    num_classes = len(snapshot.class_names)
    if len(comparisons) >= 2:
        support = snapshot.config.test_images_per_class  # per-class counts -> recall
        means, intervals = [], []
        for index in range(num_classes):
            values = [100 * (c.per_class_mcnemar[index].only_b_correct - c.per_class_mcnemar[index].only_a_correct) / support
                      for c in comparisons if index < len(c.per_class_mcnemar)]
            summary = summarise_differences(values)
            means.append(summary.mean)
            intervals.append(summary.interval)
        return means, intervals, len(comparisons)
    baseline = snapshot.config.baseline
    base = snapshot.latest[baseline].per_class_recall if baseline in snapshot.latest else ()
    mine = snapshot.latest[other].per_class_recall if other in snapshot.latest else ()
    values = [100 * (b - a) if a is not None and b is not None else None for a, b in zip(base, mine)]
    return values, None, 1


def recall_chart(snapshot: JobSnapshot | None) -> str:
    title = "Per-class recall, head → tail"
    if snapshot is None or not snapshot.latest:
        return bar_rows(title=title, rows=[], bars=[], empty_text="Per-class recall appears when epoch 1 has been evaluated.")
    counts = list(snapshot.class_counts) or [0] * len(snapshot.class_names)
    order = head_to_tail(counts)
    groups = group_of(counts)
    rows = [RowLabel(snapshot.class_names[index], f"{counts[index]:,}", groups.get(index, "")) for index in order]
    losses = [loss for loss in snapshot.config.losses if loss in snapshot.latest]
    bars = []
    for loss in losses:
        recall = snapshot.latest[loss].per_class_recall
        bars.append(Bars(display_name(loss), colour(loss), [recall[index] for index in order]))
    baseline = snapshot.config.baseline
    diffs, seeds_used = [], 1
    for loss in losses:
        if loss == baseline:
            continue
        values, intervals, seeds_used = per_class_differences(snapshot, loss)
        diffs.append(Diffs(f"{short_name(loss)} − {short_name(baseline)}", colour(loss),
                           [values[index] if index < len(values) else None for index in order],
                           [intervals[index] for index in order] if intervals else None))
    seed = snapshot.epochs[-1].seed if snapshot.epochs else snapshot.config.seeds[0]
    epoch = snapshot.epochs[-1].epoch if snapshot.epochs else 0
    subtitle = (f"Recall on the balanced test set, seed {seed} after epoch {epoch}; numbers are recall in %, a red 0 "
                "means no test image of that class was recognised.")
    if diffs:
        subtitle += (f" Right: per-class difference against {display_name(baseline)} in points"
                     + (f", mean over {seeds_used} seeds with 95 % intervals." if seeds_used >= 2 else "."))
    heading = "" if not diffs else f"{diffs[0].label}, points" if len(diffs) == 1 else f"each loss − {short_name(baseline)}, points"
    return bar_rows(title=title, rows=rows, bars=bars, diffs=diffs, diffs_heading=heading, subtitle=subtitle,
                    label_heading="class · training images")


# ---------------------------------------------------------------- class counts


@dataclass(frozen=True)
class CountsSeries:
    label: str  # "next run: ratio 10"
    class_names: tuple[str, ...]
    counts: tuple[int, ...]


def counts_label(prefix: str, config: TrainConfig) -> str:
    dataset = dataset_spec(config.dataset).short_label
    profile = "" if config.profile == "exp" else f" {config.profile}"
    return f"{prefix}: {dataset}{profile}, ratio {config.imbalance_ratio:g}"


def counts_chart(next_run: CountsSeries | None, shown_run: CountsSeries | None) -> str:
    """Training images per class of the next run (the settings) and of the shown run, each named: one series
    when they are the same, both side by side in one chart when they differ. Runs on different datasets are
    matched head to tail, and each is drawn relative to its own largest class."""
    title = "Training images per class (head → tail)"
    if next_run and shown_run and next_run.counts == shown_run.counts and next_run.class_names == shown_run.class_names:
        series = [(CountsSeries(f"{next_run.label} (same as the shown run)", next_run.class_names, next_run.counts), NEXT_RUN_COLOUR)]
    else:
        series = [(s, hue) for s, hue in ((next_run, NEXT_RUN_COLOUR), (shown_run, SHOWN_RUN_COLOUR)) if s is not None]
    if not series:
        return bar_rows(title=title, rows=[], bars=[], empty_text="Choose valid settings to see the class counts.")
    same_classes = len({s.class_names for s, _ in series}) == 1
    orders = [head_to_tail(s.counts) for s, _ in series]
    if same_classes:
        orders = [orders[-1]] * len(series)  # one class order (the shown run's) for both
    rows_count = min(len(order) for order in orders)
    if same_classes:
        labels = [RowLabel(series[0][0].class_names[index]) for index in orders[0][:rows_count]]
    else:
        labels = [RowLabel(" / ".join(s.class_names[order[rank]] for (s, _), order in zip(series, orders)))
                  for rank in range(rows_count)]
    largest = [max(s.counts) or 1 for s, _ in series]
    relative = len(set(largest)) > 1
    bars = [Bars(s.label, hue, [s.counts[order[rank]] / (most if relative else 1) for rank in range(rows_count)])
            for (s, hue), order, most in zip(series, orders, largest)]
    counts_by_bar = [[s.counts[order[rank]] for rank in range(rows_count)] for (s, _), order in zip(series, orders)]
    texts = {id(bar): counts for bar, counts in zip(bars, counts_by_bar)}
    subtitle = "Bars relative to each run's largest class; numbers are images." if relative else ""
    chart = bar_rows(
        title=title, rows=labels, bars=bars, maximum=1.0 if relative else max(largest),
        value_text=lambda v: "", label_heading="class" if same_classes else "classes (next / shown)",
        axis=((0.0, "0"), (1.0, "largest" if relative else f"{max(largest):,}")), mark_zero=False, max_height=320,
        subtitle=subtitle, value_texts=[[f"{count:,}" for count in texts[id(bar)]] for bar in bars], wide_numbers=True,
    )
    return chart


# ---------------------------------------------------------------- table and matrices


GROUP_COLUMNS = ["loss", "accuracy %", "balanced accuracy %", "head %", "medium %", "tail %", "test complement entropy"]


def groups_table(snapshot: JobSnapshot | None) -> pd.DataFrame:
    if snapshot is None:
        return pd.DataFrame([], columns=GROUP_COLUMNS)
    rows = []
    for loss, evaluation in snapshot.latest.items():
        rows.append([
            display_name(loss), percent_cell(evaluation.accuracy), percent_cell(evaluation.balanced_accuracy),
            *[percent_cell(evaluation.group_recall.get(name)) for name in GROUP_NAMES],
            number_cell(evaluation.complement_entropy),
        ])
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


# ---------------------------------------------------------------- confusion matrices

BLACK, WHITE = (0, 0, 0), (255, 255, 255)
CONFUSION_REGION_LABEL = "Confusion matrices (scroll sideways to see every column)"


def relative_luminance(rgb: Sequence[int]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour given as 0-255 channels (0 black, 1 white)."""
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
    red, green, blue = (linear(channel) for channel in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: Sequence[int], second: Sequence[int]) -> float:
    """WCAG contrast ratio of two colours, 1 to 21."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def text_colour_on(background: Sequence[int]) -> str:
    """Black or white text, whichever has the higher contrast on `background` (for any colour one of them has
    at least 4.58:1, so the cell's count always meets WCAG AA's 4.5:1)."""
    return "#000" if contrast_ratio(BLACK, background) >= contrast_ratio(WHITE, background) else "#fff"


def confusion_cell_colours(hue: str, share: float) -> tuple[str, str]:
    """A cell's opaque background (the loss's colour `hue`, "#rrggbb", over white at `share` of the row's
    count) and the text colour chosen for it. Opaque, so the contrast does not depend on the page's theme."""
    share = max(0.0, min(1.0, share))
    rgb = [int(hue[index : index + 2], 16) for index in (1, 3, 5)]
    background = tuple(round(255 + (channel - 255) * share) for channel in rgb)
    return "#{:02x}{:02x}{:02x}".format(*background), text_colour_on(background)


def confusion_html(snapshot: JobSnapshot | None) -> str:
    """Each model's confusion matrix as a shaded table (row-normalised shading, raw counts shown). The tables
    sit in one keyboard-focusable region that scrolls sideways where they do not fit (a phone)."""
    if snapshot is None or not snapshot.latest:
        return ""
    parts = ['<div class="cc-chart"><div class="cc-title">Confusion matrices</div>'
             f'<div class="cc-scroll" tabindex="0" role="region" aria-label="{CONFUSION_REGION_LABEL}" '
             'style="display:flex;flex-wrap:wrap;gap:24px;overflow-x:auto">']
    short = [str(index) for index in range(len(snapshot.class_names))]
    row_labels = [f"{index} {name}" for index, name in enumerate(snapshot.class_names)]
    for loss, evaluation in snapshot.latest.items():
        matrix = evaluation.confusion_matrix
        hue = colour(loss)
        parts.append(f'<div><b style="color:{hue}">{html.escape(display_name(loss))}</b>'
                     '<table style="border-collapse:collapse;font-size:11px;margin-top:4px">'
                     '<tr><td style="padding:2px 4px">true ↓ / predicted →</td>')
        parts += [f'<td style="padding:2px 4px">{html.escape(name)}</td>' for name in short]
        parts.append("</tr>")
        for row_index, row in enumerate(matrix):
            row = [int(finite(value) or 0) for value in row]  # a count that is missing draws as 0
            total = max(1, sum(row))
            label = row_labels[row_index] if row_index < len(row_labels) else str(row_index)
            parts.append(f'<tr><td style="padding:2px 4px;white-space:nowrap">{html.escape(label)}</td>')
            for value in row:
                background, text = confusion_cell_colours(hue, value / total)
                parts.append(f'<td style="padding:2px 4px;text-align:right;color:{text};background:{background}">'
                             f'{value}</td>')
            parts.append("</tr>")
        parts.append("</table></div>")
    parts.append("</div></div>")
    return "".join(parts)
