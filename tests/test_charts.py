"""Issue 20, "Charts you can read values from": hover values on the line charts, a y-axis title, labels inside
the card, legend keys drawn like their lines, no repeated tick labels, one-decimal tooltips, a text
alternative (a summary and a hidden table), and a scale per difference column in the bar rows. The oracles
are the numbers put in; the browser test measures the labels' boxes against the card's."""
import dataclasses
import re
import shutil

import pytest

from conftest import ROOT
from cce_demo.run_state import snapshot_from_run_dir
from cce_demo.ui.compare.views import epoch_chart, loss_chart
from cce_demo.ui.kit.charts import (DASH_PATTERN, MAX_TABLE_ROWS, Bars, Diffs, Line, RowLabel, Separator, bar_rows,
                                    diff_scale, label_number, labels_match_values, legend_html, line_chart,
                                    readable_y_axis, spread)
from cce_demo.ui.kit.theme import STYLE
from cce_demo.ui.runs.handlers import overlay_accuracy

SHIPPED_RUN = ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce"


def percent(value):
    return f"{100 * value:.0f} %"


def percent_one_decimal(value):
    return f"{100 * value:.1f} %"


def hover_titles(chart):
    return re.findall(r'<rect class="hover"[^>]*><title>([^<]*)</title></rect>', chart)


def tick_texts(chart, kind="cc-yt"):
    return re.findall(rf'<span class="{kind}[^"]*"[^>]*>([^<]*)</span>', chart)


def loss_lines():
    steps = range(0, 201, 10)
    return [Line("CCE", "#d62728", [(step, 2.0 - step / 200) for step in steps]),
            Line("CE", "#1f77b4", [(step, 3.0 - step / 100) for step in steps])]


@pytest.fixture(scope="module")
def shipped():
    return snapshot_from_run_dir(SHIPPED_RUN)


# ---------------------------------------------------------------- 1. hover values


def test_every_x_position_has_a_hover_band_with_every_lines_value():
    chart = line_chart(title="Loss", lines=loss_lines(), x_label="training step", x_name="step")
    titles = hover_titles(chart)
    assert len(titles) == 21  # one band per step drawn
    assert titles[12] == "step 120\nCCE: 1.4\nCE: 1.8"  # 2 − 120/200 and 3 − 120/100
    bands = re.findall(r'<rect class="hover" fill="transparent" x="([\d.]+)" y="0" width="([\d.]+)"', chart)
    assert float(bands[0][0]) == 0 and float(bands[-1][0]) + float(bands[-1][1]) == pytest.approx(1000)  # the whole width
    assert chart.rindex('<rect class="hover"') < chart.index('<path d="M')  # under the lines: theirs stay on top


def test_hover_bands_are_thinned_and_skip_lines_without_a_value_there():
    long = Line("CE", "#111111", [(step, 1.0) for step in range(5000)])
    sparse = Line("CCE", "#222222", [(0, 2.0), (4999, 3.0)])
    titles = hover_titles(line_chart(title="t", lines=[long, sparse], x_label="step"))
    assert len(titles) <= 150 and titles[0] == "step 0\nCE: 1\nCCE: 2" and titles[-1] == "step 4,999\nCE: 1\nCCE: 3"
    assert "CCE" not in titles[len(titles) // 2]  # no CCE point near the middle: not invented


def test_hover_texts_follow_the_legend_order_and_leave_out_the_unnamed_lines():
    raw = Line("CE (raw)", "#1f77b4", [(0, 9.0), (1, 9.0)], style="faint", in_legend=False)
    lines = [raw, Line("CE part", "#d62728", [(0, 1.0), (1, 1.0)], style="dashed"), Line("CE", "#1f77b4", [(0, 2.0), (1, 2.0)])]
    legend = [("CE", "#1f77b4", "solid"), ("CE part", "#d62728", "dashed")]
    titles = hover_titles(line_chart(title="t", lines=lines, x_label="step", legend=legend))
    assert titles[0] == "step 0\nCE: 2\nCE part: 1"


def test_shipped_loss_chart_hovers_show_step_and_smoothed_values(shipped):
    chart = loss_chart(shipped, 0.8)
    titles = hover_titles(chart)
    assert 100 <= len(titles) <= 150
    first = titles[0].split("\n")
    assert first[0] == f"step {shipped.steps[0].global_step:,}" and first[1].startswith("CE: ")
    assert first[2].startswith("CCE (paper form): ") and first[3].startswith("CCE (paper form) · CE part: ")
    assert not any("(raw)" in title for title in titles)  # the faint raw lines are not listed


# ---------------------------------------------------------------- 2. y-axis title


def test_line_charts_name_their_y_axis(shipped):
    chart = line_chart(title="Loss", lines=loss_lines(), x_label="step", y_title="training loss")
    assert '<div class="cc-plot has-y"' in chart and '<span class="cc-yl">training loss</span>' in chart
    assert "cc-yl" not in line_chart(title="Loss", lines=loss_lines(), x_label="step")  # none asked: no room taken
    assert '<span class="cc-yl">training loss</span>' in loss_chart(shipped)
    accuracy = epoch_chart(shipped, lambda scores: scores.balanced_accuracy, "Test balanced accuracy per epoch", as_percent=True)
    assert '<span class="cc-yl">test balanced accuracy (%)</span>' in accuracy
    test_loss = epoch_chart(shipped, lambda scores: scores.test_loss, "Test cross entropy per epoch")
    assert '<span class="cc-yl">test cross entropy</span>' in test_loss
    assert '<span class="cc-yl">balanced accuracy (%)</span>' in overlay_accuracy([("A", shipped)])


def css_pixels(rule_selector, prop, css=STYLE):
    block = re.search(r"(?:^|[\n}])\s*" + re.escape(rule_selector) + r"\{([^}]*)\}", css).group(1)  # that rule alone
    return float(re.search(rf"(?:^|;){prop}:(-?[\d.]+)px", block).group(1))


def test_the_y_title_sits_in_the_plots_left_margin_desktop_and_phone():
    desktop_room, desktop_left = css_pixels(".cc-plot.has-y", "margin-left"), css_pixels(".cc-yl", "left")
    assert 0 < -desktop_left <= desktop_room  # inside the margin, so inside the card
    phone = STYLE.split("@media (max-width:560px){\n")[1]
    phone_room, phone_left = css_pixels(".cc-plot.has-y", "margin-left", phone), css_pixels(".cc-plot.has-y .cc-yl", "left", phone)
    assert 0 < -phone_left <= phone_room
    assert -desktop_left - 14 > 40  # clear of the tick labels (right-aligned 6 px from the plot, about 35 px wide)


# ---------------------------------------------------------------- 3. labels inside the card


def test_labels_at_the_right_end_are_right_aligned():
    chart = line_chart(title="t", lines=[Line("CE", "#111111", [(step, 1.0) for step in range(0, 1551, 50)])],
                       x_label="step", separators=[Separator(1500, "seed 1"), Separator(400, "seed 0")])
    assert '<span class="cc-xt end" style="left:96.77%">1,500</span>' in chart
    assert '<span class="cc-xt" style="left:32.26%">500</span>' in chart  # the others centred under their tick
    assert '<span class="cc-sl end" style="left:96.77%">seed 1</span>' in chart
    assert '<span class="cc-sl" style="left:25.81%">seed 0</span>' in chart
    assert ".cc-xt.end{transform:translateX(-100%)}" in STYLE and ".cc-sl.end{transform:translateX(calc(-100% - 4px))}" in STYLE


def rendered_page(charts, width):
    """The charts in a page of that width with the app's CSS and light-theme colours."""
    colours = ("<style>:root{--body-text-color:#1f2937;--body-text-color-subdued:#595966;--border-color-primary:#e5e7eb;"
               f"--block-background-fill:#fff}}body{{margin:8px;font-family:system-ui,sans-serif}}.w{{width:{width - 16}px}}</style>")
    return f"<!doctype html><html><head><meta charset=utf-8>{STYLE}{colours}</head><body><div class=w>{''.join(charts)}</div></body></html>"


OUTSIDE_THE_CARD = """() => [...document.querySelectorAll('.cc-chart')].flatMap(card => {
  const c = card.getBoundingClientRect();
  return [...card.querySelectorAll('span, .cc-plot')].filter(e => !e.closest('.cc-sr') && e.getClientRects().length)
    .map(e => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.left < c.left || r.right > c.right || r.top < c.top || r.bottom > c.bottom)
    .map(([e, r]) => `${e.className} "${e.textContent.slice(0, 30)}" ${JSON.stringify(r)}`);
})"""


def test_in_a_browser_no_label_lies_outside_its_card(shipped):
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")
    wide_steps = [Line("CE", "#1f77b4", [(step, 2.0 - step / 20000) for step in range(0, 10001, 5)])]  # ends on "10,000"
    charts = [loss_chart(shipped, 0.8),
              epoch_chart(shipped, lambda scores: scores.balanced_accuracy, "Test balanced accuracy per epoch", as_percent=True),
              line_chart(title="Long run", lines=wide_steps, x_label="training step (all seeds)", y_title="training loss",
                         separators=[Separator(9800, "seed 3")])]
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            for width in (390, 1000):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_content(rendered_page(charts, width))
                assert page.evaluate(OUTSIDE_THE_CARD) == [], width
                # The hidden tables take no room: the page is as tall as the cards.
                assert page.evaluate("document.documentElement.scrollHeight") <= page.evaluate(
                    "document.querySelector('.w').getBoundingClientRect().bottom") + 16
                page.close()
        finally:
            browser.close()


# ---------------------------------------------------------------- 4. legend keys like their lines


def test_a_dashed_line_has_a_dashed_legend_key():
    legend = legend_html([("CE", "#1f77b4", "solid"), ("CE part", "#d62728", "dashed"), ("raw", "#888888", "faint")])
    keys = re.findall(r'<span><svg class="cc-key"[^>]*><line ([^>]*)/></svg>([^<]*)</span>', legend)
    styles = {label: attributes for attributes, label in keys}
    assert set(styles) == {"CE", "CE part", "raw"}
    assert f'stroke-dasharray="{DASH_PATTERN}"' in styles["CE part"] and 'stroke="#d62728"' in styles["CE part"]
    assert "dasharray" not in styles["CE"] and "dasharray" not in styles["raw"] and 'stroke-opacity="0.35"' in styles["raw"]
    chart = line_chart(title="t", lines=[Line("CE part", "#d62728", [(0, 1.0), (1, 2.0)], style="dashed")], x_label="step")
    assert chart.count(f'stroke-dasharray="{DASH_PATTERN}"') == 2  # the key and the line, one pattern
    assert 'aria-hidden="true"' in legend  # the label beside the key names the line
    assert '<i class="cc-sw box" style="background:#111111"></i>' in legend_html([("bars", "#111111", "box")])
    # Inline beside its label: Gradio's ".gradio-container-6-… svg{display:block}" (one class and a tag) loses to two classes.
    assert ".cc-legend .cc-key{display:inline-block" in STYLE


def test_on_a_phone_the_epoch_charts_take_a_line_each():
    phone = STYLE.split("@media (max-width:560px){\n")[1]
    assert "#test-loss-chart,#accuracy-chart{min-width:100%!important}" in phone


# ---------------------------------------------------------------- 5. no repeated tick labels


def test_one_epoch_at_32_percent_has_distinct_tick_labels():
    lines = [Line("CE", "#111111", [(1, 0.3243)], markers=True), Line("CCE", "#222222", [(1, 0.3251)], markers=True)]
    chart = line_chart(title="t", lines=lines, x_label="epoch", y_format=percent, y_floor=0.0)
    texts = tick_texts(chart)
    assert len(texts) >= 2 and len(set(texts)) == len(texts), texts
    assert "32 %" in texts


def test_ticks_read_as_their_values():
    assert labels_match_values([0.2, 0.25, 0.3], ["20 %", "25 %", "30 %"])
    assert not labels_match_values([0.2, 0.225, 0.25], ["20 %", "22 %", "25 %"])  # 22.5 % rounded away
    assert not labels_match_values([0.235, 0.24], ["24 %", "24 %"])
    assert labels_match_values([0, 500, 1000], ["0", "500", "1,000"])
    assert label_number("−0.5") == -0.5 and label_number("1,500") == 1500 and label_number("n/a") is None
    low, high, values = readable_y_axis(0.2, 0.32, percent, floor=0.0)
    assert labels_match_values(values, [percent(value) for value in values]) and len(values) >= 3
    assert low <= 0.2 and high >= 0.32
    assert readable_y_axis(0.23, 2.31, lambda value: f"{value:g}") == (0.23, 2.31, [0.5, 1.0, 1.5, 2.0])  # unchanged when readable


def test_shipped_one_epoch_chart_prints_each_tick_once(shipped):
    first = dataclasses.replace(shipped, epochs=tuple(point for point in shipped.epochs if point.epoch == 1))
    texts = tick_texts(epoch_chart(first, lambda scores: scores.balanced_accuracy, "Test balanced accuracy per epoch", as_percent=True))
    assert len(texts) >= 2 and len(set(texts)) == len(texts), texts


# ---------------------------------------------------------------- 6. one-decimal tooltips


def test_marker_tooltips_have_one_decimal(shipped):
    chart = line_chart(title="t", lines=[Line("CE", "#111111", [(1, 0.3243), (2, 0.35)], markers=True)], x_label="epoch",
                       y_format=percent, value_format=percent_one_decimal)
    assert "<title>CE: 32.4 % at epoch 1</title>" in chart and "<title>CE: 35.0 % at epoch 2</title>" in chart
    accuracy = epoch_chart(shipped, lambda scores: scores.balanced_accuracy, "Test balanced accuracy per epoch", as_percent=True)
    first = next(point for point in shipped.epochs if point.epoch == 1)
    expected = f"{100 * first.losses['ce'].balanced_accuracy:.1f} %"
    assert f"<title>CE: {expected} at epoch 1</title>" in accuracy
    assert re.search(r"<title>A · CE: \d+\.\d % at epoch 1</title>", overlay_accuracy([("A", shipped)]))


def test_several_seeds_name_the_seed_in_tooltips(shipped):
    config = shipped.config.replace(seeds=(0, 1))
    second = tuple(point.model_copy(update={"seed": 1}) for point in shipped.epochs)
    two = dataclasses.replace(shipped, config=config, epochs=shipped.epochs + second)
    chart = epoch_chart(two, lambda scores: scores.test_loss, "Test cross entropy per epoch")
    epochs = shipped.config.epochs
    titles = hover_titles(chart)
    assert titles[0].startswith("seed 0, epoch 1\nCE: ") and titles[-1].startswith(f"seed 1, epoch {epochs}\nCE: ")
    assert f"seed 1, epoch 2\nCE: {second[1].losses['ce'].test_loss:.3f}\n" in "\n".join(titles) + "\n"


# ---------------------------------------------------------------- 7. a text alternative


def test_a_line_chart_has_a_summary_and_a_hidden_table():
    chart = line_chart(title="Loss", lines=loss_lines(), x_label="training step", x_name="step", y_title="training loss")
    label = re.search(r'<svg [^>]*role="img" aria-label="([^"]*)"', chart).group(1)
    assert label.startswith("Loss. Line chart of training loss by step.")
    assert "CE: 3 at step 0, 1 at step 200 (lowest 1, highest 3)." in label
    table = re.search(r'<div class="cc-sr"><table>(.*?)</table></div>', chart).group(1)
    assert '<thead><tr><th scope="col">step</th><th scope="col">CCE</th><th scope="col">CE</th></tr></thead>' in table
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td>([^<]*)</td><td>([^<]*)</td></tr>', table)
    assert len(rows) == MAX_TABLE_ROWS and rows[0] == ("step 0", "2", "3") and rows[-1] == ("step 200", "1", "1")


def test_the_hidden_table_is_clipped_by_the_theme():
    rule = re.search(r"\.cc-sr\{([^}]*)\}", STYLE).group(1)
    for declaration in ("position:absolute", "width:1px", "height:1px", "overflow:hidden", "clip:rect(0,0,0,0)", "white-space:nowrap"):
        assert declaration in rule


def test_spread_keeps_the_ends_and_the_limit():
    assert spread(list(range(100)), 20)[0] == 0 and spread(list(range(100)), 20)[-1] == 99
    assert len(spread(list(range(100)), 20)) == 20 and spread([1, 2], 20) == [1, 2]


def test_shipped_charts_tables_are_short(shipped):
    for chart in (loss_chart(shipped, 0.8), epoch_chart(shipped, lambda scores: scores.test_loss, "Test cross entropy per epoch")):
        table = re.search(r'<div class="cc-sr"><table>(.*?)</table></div>', chart).group(1)
        assert 2 <= table.count('<th scope="row">') <= MAX_TABLE_ROWS
        assert "n/a" not in table  # every row is a position where each line has a value


# ---------------------------------------------------------------- 8. a scale per difference column


def diff_bar_widths(chart):
    return [float(width) for width in re.findall(r'<span class="cc-dtrack"><i style="left:[\d.]+%;width:([\d.]+)%', chart)]


def test_per_diff_scale_gives_each_difference_column_its_own_scale():
    rows = [RowLabel("cat"), RowLabel("dog")]
    bars = [Bars("CE", "#111111", [0.5, 0.6])]
    diffs = [Diffs("big", "#d62728", [100.0, -60.0]), Diffs("small", "#2ca02c", [3.0, -1.5])]
    shared = bar_rows(title="t", rows=rows, bars=bars, diffs=diffs)
    own = bar_rows(title="t", rows=rows, bars=bars, diffs=diffs, per_diff_scale=True)
    assert diff_scale(diffs) == 100 and diff_scale(diffs[1:]) == 5
    # Shared (the default): 3 points of 100 is a 1.5 % sliver. Own scale: 3 of 5 points is 30 % of the track.
    assert diff_bar_widths(shared) == pytest.approx([50, 1.5, 30, 0.75])
    assert diff_bar_widths(own) == pytest.approx([50, 30, 30, 15])
    assert shared.count('<div class="cc-axis">') == 2 and "−100" in shared and "−5<" not in shared
    axes = re.findall(r'<div class="cc-axis" title="([^"]*)">', own)
    assert axes == ["big: ±100 points", "small: ±5 points"]  # one axis per series, in the bars' order
    assert "small: +3.0 points" in own  # the tooltip keeps the value


def test_the_default_diff_layout_is_unchanged():
    rows = [RowLabel("cat")]
    bars = [Bars("CE", "#111111", [0.5])]
    diffs = [Diffs("CCE − CE", "#d62728", [4.0])]
    chart = bar_rows(title="t", rows=rows, bars=bars, diffs=diffs)
    assert chart == bar_rows(title="t", rows=rows, bars=bars, diffs=diffs, per_diff_scale=True)  # one series: one scale
    assert ('<div class="cc-axis"><span><em style="left:0%">−5</em><em style="left:50%">0</em><em style="left:100%">+5</em>'
            "</span><b></b></div>") in chart
