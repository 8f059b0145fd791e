"""Issue 20, screen details without a browser: the confusion matrices' text colour by WCAG contrast, their
focusable scroll region, the empty slots above the Preset radio, and a Runs picker that takes only run ids.
Nothing here trains: the shipped run supplies the snapshot."""
import re

import gradio as gr
import pytest

from conftest import ROOT

from cce_demo.jobs import JobManager
from cce_demo.predict import ModelCache
from cce_demo.run_state import snapshot_from_run_dir
from cce_demo.ui import RunCatalog
from cce_demo.ui.compare.views import (
    confusion_cell_colours, confusion_html, contrast_ratio, relative_luminance, text_colour_on,
)
from cce_demo.ui.context import AppContext, UiContext
from cce_demo.ui.kit.theme import STYLE
from cce_demo.ui.layout import build_layout
from cce_demo.ui.runs import handlers as runs

SHIPPED = ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce"


def rgb(hex_colour):
    hex_colour = hex_colour.lstrip("#")
    if len(hex_colour) == 3:
        hex_colour = "".join(2 * digit for digit in hex_colour)
    return tuple(int(hex_colour[index : index + 2], 16) for index in (0, 2, 4))


@pytest.mark.parametrize("background, expected", [
    ("#ffffff", "#000"), ("#000000", "#fff"),
    ("#ff0000", "#000"),  # luminance 0.2126: black 5.25:1, white 3.998:1
    ("#0000ff", "#fff"),  # luminance 0.0722: white 8.59:1
    ("#00ff00", "#000"), ("#ffff00", "#000"),
    ("#777777", "#000"),  # black 4.69:1, white 4.48:1
    ("#737373", "#fff"),  # black 4.35:1, white 4.83:1
    ("#1f77b4", "#fff"), ("#c2410c", "#fff"), ("#f59e0b", "#000"),
])
def test_text_colour_is_the_one_with_the_higher_contrast(background, expected):
    assert text_colour_on(rgb(background)) == expected
    chosen, other = rgb(expected), rgb("#fff" if expected == "#000" else "#000")
    assert contrast_ratio(chosen, rgb(background)) >= max(4.5, contrast_ratio(other, rgb(background)))


def test_luminance_and_contrast_match_wcag():
    assert relative_luminance((255, 255, 255)) == pytest.approx(1.0)
    assert relative_luminance((0, 0, 0)) == 0.0
    assert relative_luminance((255, 0, 0)) == pytest.approx(0.2126)
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)  # #767676, AA on white


def test_every_cell_of_every_shade_is_readable():
    for hue in ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#f59e0b", "#64748b", "#c2410c"):
        for step in range(101):
            background, text = confusion_cell_colours(hue, step / 100)
            assert contrast_ratio(rgb(text), rgb(background)) >= 4.5, (hue, step, background, text)
    assert confusion_cell_colours("#1f77b4", 0) == ("#ffffff", "#000")
    assert confusion_cell_colours("#1f77b4", 1) == ("#1f77b4", "#fff")


@pytest.fixture(scope="module")
def shipped_snapshot():
    return snapshot_from_run_dir(SHIPPED)


def test_confusion_cells_carry_their_own_readable_colours(shipped_snapshot):
    page = confusion_html(shipped_snapshot)
    cells = re.findall(r"color:(#[0-9a-f]{3,6});background:(#[0-9a-f]{6})\">\d+<", page)
    assert len(cells) == 2 * 10 * 10, len(cells)  # two models, 10×10 counts each
    assert {text for text, _ in cells} == {"#000", "#fff"}  # both occur: pale and dark cells
    for text, background in cells:
        assert text == text_colour_on(rgb(background))
        assert contrast_ratio(rgb(text), rgb(background)) >= 4.5
    assert "rgba(" not in page  # opaque backgrounds: the contrast does not depend on the theme behind
    assert "text-shadow" not in STYLE  # the old hack for white text on pale cells is gone


def test_confusion_matrices_scroll_in_a_labelled_focusable_region(shipped_snapshot):
    page = confusion_html(shipped_snapshot)
    region = re.search(r'<div class="cc-scroll"([^>]*)>', page)
    assert region, page[:300]
    attributes = region.group(1)
    assert 'tabindex="0"' in attributes and 'role="region"' in attributes and "overflow-x:auto" in attributes
    assert re.search(r'aria-label="Confusion matrices[^"]*"', attributes)
    assert ".cc-scroll:focus-visible" in STYLE


def test_empty_slots_above_the_preset_take_no_room():
    assert "#link-note:not(:has(.cc-card)),#public-panel-box:not(:has(.cc-card)){display:none!important}" in STYLE


@pytest.fixture()
def ctx(tmp_path):
    live = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0)
    with gr.Blocks():
        layout = build_layout()
    yield UiContext(AppContext(live, RunCatalog(live.runs_dir, (SHIPPED.parent,)), ModelCache()), layout)
    live.shutdown()


def test_the_run_picker_drops_typed_fragments_and_keeps_the_valid_selections(ctx, monkeypatch):
    ui = ctx.ui
    warned = []
    monkeypatch.setattr(runs.gr, "Warning", lambda message, *args, **kwargs: warned.append(message))
    updates = runs.on_runs_selected(ctx, [SHIPPED.name, "cifar10-lt", "no-such-run"])
    picker = updates[ui.runs.run_choice]
    assert picker.value == [SHIPPED.name] and SHIPPED.name in [value for _, value in picker.choices]
    assert updates[ui.runs.delete_button].interactive is False  # judged on the run that stays (a shipped one)
    assert len(warned) == 1 and "“cifar10-lt”, “no-such-run” are not runs here" in warned[0]
    assert "other selections stay" in warned[0]
    only_typed = runs.on_runs_selected(ctx, ["cifar"])
    assert only_typed[ui.runs.run_choice].value == [] and "“cifar” is not a run here" in warned[1]
    assert "other selections stay" not in warned[1]
    assert ui.runs.run_choice not in runs.on_runs_selected(ctx, [SHIPPED.name])  # nothing to drop: left as it is
    assert len(warned) == 2


def test_opening_the_runs_tab_lists_the_runs_on_disk_and_keeps_the_classify_run(ctx):
    updates = runs.on_runs_tab(ctx)
    ui = ctx.ui
    assert ui.classify.classify_run not in updates  # the visitor's pick on Classify stays
    assert SHIPPED.name in [value for _, value in updates[ui.runs.run_choice].choices]
    assert set(updates) == {ui.runs.runs_frame, ui.runs.run_choice, ui.runs.runs_problems}
