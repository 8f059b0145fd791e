"""Chart primitives: data in, an HTML string out (shown with `gr.HTML`). No plotting library: every chart
here is plain HTML with CSS (bars) or an SVG drawing under HTML axis labels (lines), so that

- labels are real text at a fixed font size, readable on a 390 px phone as on a desktop (the drawing
  stretches, the text does not);
- nothing is drawn in the browser by a charting runtime: no console warnings, no empty-domain glitches;
- a test can read exactly what is shown from the string;
- values can be read without a script (gr.HTML drops <script>): hovering a line chart shows every line's value
  at that x (SVG <title>s), and a screen reader gets a summary (aria-label) and a hidden table of the numbers.

The functions know nothing about runs or losses; `views.py` turns a snapshot into their inputs.
"""
from __future__ import annotations

import dataclasses
import html
import math
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ...metrics import signed


CHART_WIDTH = 1000.0  # SVG user units; the drawing stretches to the element, strokes keep their width
CHART_HEIGHT = 1000.0
MAX_LINE_POINTS = 400  # points drawn per line: more than a chart's pixel width only costs bytes
MAX_MARKERS = 60  # beyond this many points a line gets no markers
MAX_HOVER_BANDS = 150  # hover bands per chart: about one per 5 px of a phone-wide chart, a few kB of titles
MAX_TABLE_ROWS = 20  # rows of a line chart's hidden table: enough to follow the curve, short enough to listen to
DASH_PATTERN = "7 5"  # the dashed lines' pattern, shared by the chart and its legend swatch
EDGE_FRACTION = 0.94  # an x label this far right is right-aligned, so it never runs past the card


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def finite(value: Any) -> float | None:
    """A plottable number, or None (a gap) for None, NaN, ±inf and anything that is not a number: a diverged
    run's metrics are drawn as missing, never raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def percent_text(value: float | None) -> str:
    """A fraction as a percentage for bar labels: whole numbers, one decimal below 1 % (so 0.3 % is not "0")."""
    value = finite(value)
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}" if 0 < value < 0.01 else f"{100 * value:.0f}"


# ---------------------------------------------------------------- axes


def nice_step(span: float, target: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks over `span`."""
    if not math.isfinite(span) or span <= 0:
        return 1.0
    raw = span / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * power:
            return multiple * power
    return 10 * power


def ticks(low: float, high: float, target: int = 5, integer: bool = False) -> list[float]:
    """Round tick positions inside [low, high] (whole numbers only when `integer`)."""
    step = nice_step(high - low, target)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(low / step - 1e-9) * step
    values, value = [], first
    while value <= high + 1e-9 * max(1.0, abs(high)):
        values.append(round(value, 10))
        value += step
    return values


def padded_range(values: Sequence[float], pad: float = 0.06, floor: float | None = None) -> tuple[float, float]:
    """A y range around `values` with a margin, never empty."""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        margin = max(abs(high) * 0.05, 0.01)
        return (low - margin if floor is None else max(floor, low - margin)), high + margin
    margin = (high - low) * pad
    low -= margin
    if floor is not None:
        low = max(floor, low)
    return low, high + margin


def number_text(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.4g}"


LABEL_NUMBER = re.compile(r"[−-]?\d[\d,]*(?:\.\d+)?")


def label_number(text: str) -> float | None:
    """The number a tick label shows ("1,500" -> 1500, "32 %" -> 32, "−0.5" -> -0.5), or None."""
    match = LABEL_NUMBER.search(text)
    return float(match.group().replace(",", "").replace("−", "-")) if match else None


def labels_match_values(values: Sequence[float], texts: Sequence[str]) -> bool:
    """Whether every tick label reads as its own tick: no two labels alike ("32 %" three times when the range
    is tiny) and one factor between label and value for all (a 22.5 % tick shown as "22 %" breaks it, since
    the others read 100 times their value). Labels without a number are only checked for repeats."""
    if len(set(texts)) < len(texts):
        return False
    ratios = []
    for value, text in zip(values, texts):
        shown = label_number(text)
        if shown is None:
            continue
        if value == 0 or shown == 0:
            if (value == 0) != (shown == 0):
                return False
            continue
        ratios.append(shown / value)
    return all(math.isclose(ratio, ratios[0], rel_tol=1e-6) for ratio in ratios)


def readable_y_axis(low: float, high: float, y_format: Callable[[float], str], floor: float | None = None,
                    target: int = 5) -> tuple[float, float, list[float]]:
    """(low, high, ticks) whose tick labels read as their values: about `target` ticks, else fewer, else the
    range widened around its middle (twice as wide each try) until the labels' rounding can tell them apart;
    as a last resort the ticks whose label repeats an earlier one are dropped."""
    for _ in range(12):
        for count in (target, target - 1, target + 1, target - 2):
            values = ticks(low, high, max(2, count))
            if len(values) >= 2 and labels_match_values(values, [y_format(value) for value in values]):
                return low, high, values
        middle, span = (low + high) / 2, high - low
        low, high = middle - span, middle + span
        if floor is not None and low < floor:
            low, high = floor, floor + 2 * span
    values, seen = [], set()
    for value in ticks(low, high, target):
        if y_format(value) not in seen:
            seen.add(y_format(value))
            values.append(value)
    return low, high, values


# ---------------------------------------------------------------- line charts


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: Sequence[tuple[float, float | None]]  # None: a gap
    style: str = "solid"  # "solid", "dashed" or "faint"
    width: float = 2.0
    markers: bool = False
    in_legend: bool = True


@dataclass(frozen=True)
class Separator:
    x: float
    label: str


def thin(points: Sequence[tuple[float, float | None]], limit: int = MAX_LINE_POINTS) -> list[tuple[float, float | None]]:
    """Every k-th point so at most about `limit` remain, always keeping the last."""
    if len(points) <= limit:
        return list(points)
    stride = math.ceil(len(points) / limit)
    kept = list(points[::stride])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def line_swatch(colour: str, style: str) -> str:
    """A legend key drawn like its line (an SVG stroke with the same dash pattern), so a dashed line has a
    dashed key. Hidden from screen readers: the label beside it names the line."""
    width = {"solid": 3, "dashed": 2, "faint": 2}.get(style, 3)
    dash = f' stroke-dasharray="{DASH_PATTERN}"' if style == "dashed" else ""
    opacity = ' stroke-opacity="0.35"' if style == "faint" else ""
    return (f'<svg class="cc-key" width="24" height="8" viewBox="0 0 24 8" aria-hidden="true" focusable="false">'
            f'<line x1="0" y1="4" x2="24" y2="4" stroke="{colour}" stroke-width="{width}"{dash}{opacity}/></svg>')


def legend_html(entries: Sequence[tuple[str, str, str]]) -> str:
    """(label, colour, style) with style "solid", "dashed", "faint" or "box"."""
    parts = []
    for label, colour, style in entries:
        if style == "box":
            swatch = f'<i class="cc-sw box" style="background:{colour}"></i>'
        else:
            swatch = line_swatch(colour, style)
        parts.append(f"<span>{swatch}{escape(label)}</span>")
    return f'<div class="cc-legend">{"".join(parts)}</div>'


def placeholder(text: str, height: int) -> str:
    return f'<div class="cc-empty" style="height:{height}px">{escape(text)}</div>'


def spread(values: Sequence[Any], limit: int) -> list[Any]:
    """At most `limit` of `values`, evenly spaced, always with the first and the last."""
    if len(values) <= limit:
        return list(values)
    if limit < 2:
        return [values[-1]]
    return [values[round(index * (len(values) - 1) / (limit - 1))] for index in range(limit)]


def known_points(line: Line) -> tuple[list[float], list[float]]:
    """A line's x and y values where it has a value, in x order."""
    pairs = sorted((x, y) for x, y in line.points if y is not None)
    return [x for x, _ in pairs], [y for _, y in pairs]


def value_near(xs: Sequence[float], ys: Sequence[float], x: float, left: float, right: float) -> float | None:
    """The value of the point nearest to `x` within [left, right] (xs sorted), or None when there is none."""
    index = bisect_left(xs, x)
    candidates = [i for i in (index - 1, index) if 0 <= i < len(xs) and left <= xs[i] <= right]
    if not candidates:
        return None
    return ys[min(candidates, key=lambda i: abs(xs[i] - x))]


def band_edges(positions: Sequence[float]) -> list[tuple[float, float]]:
    """(left, right) of each hover band: from the midpoint with the previous position to the midpoint with the
    next, the outer bands ending at the first and last positions."""
    edges = []
    for index, position in enumerate(positions):
        left = (positions[index - 1] + position) / 2 if index > 0 else position
        right = (position + positions[index + 1]) / 2 if index + 1 < len(positions) else position
        edges.append((left, right))
    return edges


def hover_text(x_text: str, lines: Sequence[Line], values: Sequence[float | None], value_format: Callable[[float], str]) -> str:
    """One hover band's tooltip: the x position, then one line per series that has a value there."""
    rows = [f"{line.label}: {value_format(value)}" for line, value in zip(lines, values) if value is not None]
    return "\n".join([x_text, *rows])


def chart_summary(title: str, y_title: str, x_name: str, lines: Sequence[Line], x_text: Callable[[float], str],
                  value_format: Callable[[float], str]) -> str:
    """What a line chart shows, in a sentence per line, for its aria-label: each line's first and last value
    and its range."""
    parts = [f"{title}. Line chart of {y_title or 'the values'} by {x_name}."]
    for line in lines:
        xs, ys = known_points(line)
        if not xs:
            continue
        parts.append(f"{line.label}: {value_format(ys[0])} at {x_text(xs[0])}, {value_format(ys[-1])} at {x_text(xs[-1])}"
                     f" (lowest {value_format(min(ys))}, highest {value_format(max(ys))}).")
    parts.append("The values follow in a table.")
    return " ".join(parts)


def values_table(title: str, x_name: str, lines: Sequence[Line], x_text: Callable[[float], str],
                 value_format: Callable[[float], str], limit: int = MAX_TABLE_ROWS) -> str:
    """The chart's numbers as a table that only screen readers see (in a cc-sr box): one row per x position,
    thinned to at most `limit` rows, one column per line."""
    known = [known_points(line) for line in lines]
    positions = spread(sorted({x for xs, _ in known for x in xs}), limit)
    exact = [dict(zip(xs, ys)) for xs, ys in known]
    head = "".join(f'<th scope="col">{escape(line.label)}</th>' for line in lines)
    rows = []
    for x in positions:
        cells = "".join(f"<td>{escape(value_format(values[x]) if x in values else 'n/a')}</td>" for values in exact)
        rows.append(f'<tr><th scope="row">{escape(x_text(x))}</th>{cells}</tr>')
    # The class sits on a wrapper: a table ignores the 1 px height and would still take up its full size.
    return (f'<div class="cc-sr"><table><caption>{escape(title)}: values at {len(positions)} positions</caption>'
            f'<thead><tr><th scope="col">{escape(x_name)}</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def legend_order(lines: Sequence[Line], legend: Sequence[tuple[str, str, str]]) -> list[Line]:
    """`lines` in the order the legend names them (lines are drawn bottom to top, which is not reading order);
    lines the legend does not name keep their order, after the others."""
    rank = {label: index for index, (label, _, _) in enumerate(legend)}
    return sorted(lines, key=lambda line: rank.get(line.label, len(rank)))


def x_tick_labels(x_ticks: Sequence[tuple[float, str]], position: Callable[[float], float]) -> list[str]:
    """The x tick labels, centred under their ticks; the ones near the right end right-aligned instead, so
    that half a label never hangs past the card."""
    labels = []
    for value, text in x_ticks:
        fraction = position(value)
        edge = " end" if fraction >= EDGE_FRACTION else ""
        labels.append(f'<span class="cc-xt{edge}" style="left:{fraction * 100:.2f}%">{escape(text)}</span>')
    return labels


def line_chart(
    *,
    title: str,
    lines: Sequence[Line],
    x_label: str,
    y_title: str = "",
    y_format: Callable[[float], str] = number_text,
    value_format: Callable[[float], str] | None = None,
    x_name: str = "",
    x_text: Callable[[float], str] | None = None,
    x_integer: bool = False,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    y_floor: float | None = None,
    height: int = 220,
    empty_text: str = "No data yet.",
    subtitle: str = "",
    separators: Sequence[Separator] = (),
    legend: Sequence[tuple[str, str, str]] | None = None,
) -> str:
    """Lines over a shared x axis that ends at the data. `x_integer`: whole-number ticks only (epochs).

    `y_title` names the y axis beside it. `y_format` writes the tick labels, `value_format` (default: three or
    four significant digits) the exact values in tooltips and in the hidden table. `x_text` writes an x position
    for them ("step 120", "seed 1, epoch 3"); by default `x_name` (default `x_label`) and the number.
    Hovering anywhere over the plot shows every legend line's value at the nearest x position (one invisible
    band per position, with an SVG <title>: no script needed)."""
    value_format = value_format or number_text
    x_name = x_name or x_label
    x_text = x_text or (lambda x: f"{x_name} {number_text(x)}")
    head = f'<div class="cc-title">{escape(title)}</div>' + (f'<div class="cc-sub">{escape(subtitle)}</div>' if subtitle else "")
    lines = [dataclasses.replace(line, points=[(x, finite(y)) for x, y in line.points if finite(x) is not None]) for line in lines]
    drawn = [line for line in lines if any(y is not None for _, y in line.points)]
    if not drawn:
        return f'<div class="cc-chart">{head}{placeholder(empty_text, height)}</div>'
    if legend is None:
        legend = [(line.label, line.colour, line.style) for line in drawn if line.in_legend]
    described = legend_order([line for line in drawn if line.in_legend] or drawn, legend)  # what hovers and the table report
    xs = [x for line in drawn for x, y in line.points if y is not None]
    ys = [y for line in drawn for _, y in line.points if y is not None]
    x_low, x_high = min(xs), max(xs)
    if x_high - x_low < 1e-12:  # one point: centre it
        x_low, x_high = x_low - 0.5, x_high + 0.5
    y_low, y_high = padded_range(ys, floor=y_floor)
    y_low, y_high, y_tick_values = readable_y_axis(y_low, y_high, y_format, floor=y_floor)

    def sx(x: float) -> float:
        return (x - x_low) / (x_high - x_low) * CHART_WIDTH

    def sy(y: float) -> float:
        return (1 - (y - y_low) / (y_high - y_low)) * CHART_HEIGHT

    summary = chart_summary(title, y_title, x_name, described, x_text, value_format)
    svg = [f'<svg viewBox="0 0 {CHART_WIDTH:g} {CHART_HEIGHT:g}" preserveAspectRatio="none" role="img" '
           f'aria-label="{escape(summary)}">']
    for value in y_tick_values:
        svg.append(f'<path class="grid" d="M0 {sy(value):.1f}H{CHART_WIDTH:g}" vector-effect="non-scaling-stroke"/>')
    for separator in separators:
        svg.append(f'<path class="sep" d="M{sx(separator.x):.1f} 0V{CHART_HEIGHT:g}" vector-effect="non-scaling-stroke"/>')
    # Hover bands under the lines: the lines and markers stay on top, with their own tooltips.
    known = [known_points(line) for line in described]
    positions = spread(sorted({x for line_xs, _ in known for x in line_xs}), MAX_HOVER_BANDS)
    for x, (left, right) in zip(positions, band_edges(positions)):
        values = [value_near(line_xs, line_ys, x, left, right) for line_xs, line_ys in known]
        band_left, band_right = sx(left), sx(right)
        if len(positions) == 1:  # one position: the whole plot
            band_left, band_right = 0.0, CHART_WIDTH
        svg.append(f'<rect class="hover" fill="transparent" x="{band_left:.1f}" y="0" width="{max(band_right - band_left, 1.0):.1f}" '
                   f'height="{CHART_HEIGHT:g}"><title>{escape(hover_text(x_text(x), described, values, value_format))}</title></rect>')
    for line in drawn:
        segments, current = [], []
        for x, y in thin(line.points):
            if y is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(f"{sx(x):.1f},{sy(y):.1f}")
        if current:
            segments.append(current)
        path = "".join("M" + "L".join(segment) for segment in segments)
        dash = f' stroke-dasharray="{DASH_PATTERN}"' if line.style == "dashed" else ""
        opacity = ' stroke-opacity="0.3"' if line.style == "faint" else ""
        svg.append(f'<path d="{path}" fill="none" stroke="{line.colour}" stroke-width="{line.width:g}"{dash}{opacity} '
                   f'stroke-linejoin="round" vector-effect="non-scaling-stroke"><title>{escape(line.label)}</title></path>')
        points = [(x, y) for x, y in line.points if y is not None]
        if line.markers and len(points) <= MAX_MARKERS:
            for x, y in points:
                # A zero-length stroke with round caps is a circle that keeps its shape when the drawing stretches.
                svg.append(f'<path d="M{sx(x):.1f},{sy(y):.1f}h0" stroke="{line.colour}" stroke-width="8" '
                           f'stroke-linecap="round" vector-effect="non-scaling-stroke">'
                           f'<title>{escape(line.label)}: {escape(value_format(y))} at {escape(x_text(x))}</title></path>')
    svg.append("</svg>")
    labels = []
    for value in y_tick_values:
        labels.append(f'<span class="cc-yt" style="top:{sy(value) / CHART_HEIGHT * 100:.2f}%">{escape(y_format(value))}</span>')
    if x_ticks is None:
        x_ticks = [(value, f"{value:,.0f}" if x_integer or value == int(value) else f"{value:g}")
                   for value in ticks(x_low, x_high, 5, integer=x_integer) if x_low <= value <= x_high]
    labels += x_tick_labels(x_ticks, lambda value: sx(value) / CHART_WIDTH)
    for separator in separators:
        fraction = sx(separator.x) / CHART_WIDTH
        edge = " end" if fraction >= 0.85 else ""  # near the right end: the label goes left of its line
        labels.append(f'<span class="cc-sl{edge}" style="left:{fraction * 100:.2f}%">{escape(separator.label)}</span>')
    labels.append(f'<span class="cc-xl">{escape(x_label)}</span>')
    if y_title:
        labels.append(f'<span class="cc-yl">{escape(y_title)}</span>')
    plot_class = "cc-plot has-y" if y_title else "cc-plot"
    table = values_table(title, x_name, described, x_text, value_format)
    return (f'<div class="cc-chart">{head}{legend_html(legend)}'
            f'<div class="{plot_class}" style="height:{height}px">{"".join(svg)}{"".join(labels)}</div>{table}</div>')


# ---------------------------------------------------------------- bar rows (per class)


@dataclass(frozen=True)
class RowLabel:
    name: str
    detail: str = ""  # second line, e.g. "5,000 training images"
    group: str = ""  # a group heading is drawn where this changes (head / medium / tail)


@dataclass(frozen=True)
class Bars:
    label: str
    colour: str
    values: Sequence[float | None]
    hatched: bool = False


@dataclass(frozen=True)
class Diffs:
    label: str
    colour: str
    values: Sequence[float | None]  # percentage points
    intervals: Sequence[tuple[float, float] | None] | None = None  # 95 % interval per row, points


def diff_scale(diffs: Sequence[Diffs]) -> float:
    """Half-width of the difference axis in points: a round number covering every value and interval."""
    largest = 0.0
    for series in diffs:
        for value in series.values:
            if value is not None and math.isfinite(value):
                largest = max(largest, abs(value))
        for interval in series.intervals or ():
            if interval is not None:
                largest = max(largest, *(abs(end) for end in interval if math.isfinite(end)))
    for candidate in (5, 10, 20, 25, 50, 100):
        if largest <= candidate:
            return float(candidate)
    return float(math.ceil(largest / 50) * 50)


def diff_scales(diffs: Sequence[Diffs], per_diff: bool) -> list[float]:
    """The half-width of each difference column: one shared scale (the default, so columns compare at a
    glance), or each column's own (`per_diff`), so one loss's ±100 points do not shrink another's ±3 to slivers."""
    if per_diff:
        return [diff_scale([series]) for series in diffs]
    shared = diff_scale(diffs)
    return [shared] * len(diffs)


def diff_axis(scale: float, series: Diffs | None = None) -> str:
    """The marks under a difference column: −scale, 0, +scale. With `series` (one axis per series), its colour
    beside the marks and its name in a tooltip say which series the axis belongs to."""
    marks = ((0.0, f"−{scale:g}"), (0.5, "0"), (1.0, f"+{scale:g}"))
    tip = f' title="{escape(series.label)}: ±{scale:g} points"' if series else ""
    key = f'<i class="cc-sw box" style="background:{series.colour}"></i>' if series else ""
    return (f'<div class="cc-axis"{tip}><span>' + "".join(f'<em style="left:{p * 100:.0f}%">{t}</em>' for p, t in marks)
            + f"</span><b>{key}</b></div>")


def _diff_cell(diffs: Sequence[Diffs], row: int, scales: Sequence[float]) -> str:
    parts = []
    for series, scale in zip(diffs, scales):
        value = series.values[row]
        if value is None or not math.isfinite(value):
            parts.append('<div class="cc-diff"><span class="cc-dtrack"></span><b>n/a</b></div>')
            continue

        def position(points: float) -> float:
            return 50 + max(-scale, min(scale, points)) / scale * 50

        left, right = sorted((position(0), position(value)))
        bar = f'<i style="left:{left:.2f}%;width:{max(right - left, 0.6):.2f}%;background:{series.colour}"></i>'
        interval = series.intervals[row] if series.intervals else None
        whisker = ""
        tip = f"{series.label}: {value:+.1f} points"
        if interval is not None:
            low, high = sorted((position(interval[0]), position(interval[1])))
            whisker = f'<u style="left:{low:.2f}%;width:{max(high - low, 0.4):.2f}%"></u>'
            tip += f" (95 % interval {interval[0]:+.1f} to {interval[1]:+.1f})"
        text = signed(value, 0) if abs(value) >= 0.5 else "0"
        parts.append(f'<div class="cc-diff" title="{escape(tip)}"><span class="cc-dtrack">{bar}{whisker}</span><b>{text}</b></div>')
    return f"<div>{''.join(parts)}</div>"


def bar_rows(
    *,
    title: str,
    rows: Sequence[RowLabel],
    bars: Sequence[Bars],
    maximum: float = 1.0,
    value_text: Callable[[float | None], str] = percent_text,
    label_heading: str = "class",
    bars_heading: str = "",
    axis: Sequence[tuple[float, str]] = ((0.0, "0"), (0.5, "50"), (1.0, "100 %")),
    mark_zero: bool = True,
    diffs: Sequence[Diffs] = (),
    diffs_heading: str = "",
    subtitle: str = "",
    max_height: int | None = 640,
    empty_text: str = "No data yet.",
    value_texts: Sequence[Sequence[str]] | None = None,
    wide_numbers: bool = False,
    per_diff_scale: bool = False,
) -> str:
    """One row per item (class), one bar per series side by side within the row, and optionally a difference
    column beside them (diverging bars around zero, with 95 % intervals when given). Zero values are marked
    in red, so an empty bar never reads as missing data. `value_texts` (per series, per row) replaces the
    numbers written beside the bars. `per_diff_scale`: each difference series on its own scale (one axis per
    series under the column, in the order of the bars) instead of one scale shared by all."""
    head = f'<div class="cc-title">{escape(title)}</div>' + (f'<div class="cc-sub">{escape(subtitle)}</div>' if subtitle else "")
    if not rows or not bars:
        return f'<div class="cc-chart">{head}{placeholder(empty_text, 120)}</div>'
    layout = "three" if diffs else "two"
    scales = diff_scales(diffs, per_diff_scale) if diffs else []
    cells = [f'<div class="cc-head">{escape(label_heading)}</div>',
             f'<div class="cc-head">{legend_html([(series.label, series.colour, "box") for series in bars])}{escape(bars_heading)}</div>']
    if diffs:
        cells.append(f'<div class="cc-head">{escape(diffs_heading)}</div>')
    group = None
    for index, row in enumerate(rows):
        if row.group and row.group != group:
            group = row.group
            cells.append(f'<div class="cc-group">{escape(group)}</div>')
        detail = f"<small>{escape(row.detail)}</small>" if row.detail else ""
        cells.append(f'<div class="cc-label">{escape(row.name)}{detail}</div>')
        bar_parts = []
        for position, series in enumerate(bars):
            value = finite(series.values[index]) if index < len(series.values) else None
            known = value is not None
            width = 0.0 if not known else max(0.0, min(1.0, value / maximum)) * 100 if maximum > 0 else 0.0
            zero = mark_zero and known and value == 0
            hatch = ' class="hatch"' if series.hatched else ""
            text = value_texts[position][index] if value_texts else value_text(value)
            tip = f"{series.label} · {row.name}: {text}" + (" — zero: none right" if zero and maximum == 1.0 else "")
            bar_parts.append(
                f'<div class="cc-bar" title="{escape(tip)}"><span class="cc-track{" zero" if zero else ""}">'
                f'<i{hatch} style="width:{width:.2f}%;background:{series.colour}"></i></span>'
                f'<b{" class=zero" if zero else ""}>{escape(text)}</b></div>'
            )
        cells.append(f"<div>{''.join(bar_parts)}</div>")
        if diffs:
            cells.append(_diff_cell(diffs, index, scales))
    # Axis under the bars (and the difference scale under the differences).
    axis_marks = "".join(f'<em style="left:{position * 100:.1f}%">{escape(text)}</em>' for position, text in axis)
    cells += ['<div></div>', f'<div class="cc-axis"><span>{axis_marks}</span><b></b></div>']
    if diffs and len(set(scales)) == 1:
        cells.append(diff_axis(scales[0]))
    elif diffs:  # a scale per series: one axis each, stacked like the series' bars in every row
        cells.append("<div>" + "".join(diff_axis(scale, series) for series, scale in zip(diffs, scales)) + "</div>")
    style = f' style="max-height:{max_height}px"' if max_height else ""
    wide = " wide" if wide_numbers else ""
    # The rows scroll when they are taller than max_height: focusable, so a keyboard can scroll them (WCAG 2.1.1).
    return (f'<div class="cc-chart">{head}<div class="cc-rows {layout}{wide}"{style} tabindex="0" role="region" '
            f'aria-label="{escape(title)}">{"".join(cells)}</div></div>')


# ---------------------------------------------------------------- progress


def progress_bar(fraction: float, queued: bool = False) -> str:
    fraction = 0.0 if not math.isfinite(fraction) else max(0.0, min(1.0, fraction))
    return (f'<div class="cc-progress{" queued" if queued else ""}" role="progressbar" aria-valuemin="0" '
            f'aria-valuemax="100" aria-valuenow="{100 * fraction:.0f}"><i style="width:{100 * fraction:.1f}%"></i></div>')


def head_to_tail(counts: Sequence[int]) -> list[int]:
    """Class indices from the most to the fewest training images (ties keep their index order)."""
    return sorted(range(len(counts)), key=lambda index: -counts[index])


DEFAULT_SMOOTHING = 0.8
