"""Issue 20, item 7: the theme's colours meet WCAG 2.1 AA (4.5:1 for text), the text uses a system font stack,
the Runs table's column shares fit the page, and scrolled chart rows can be reached from a keyboard. The
contrast oracle is the WCAG 2.1 definition (relative luminance, (L1 + 0.05) / (L2 + 0.05))."""
import re

import pytest

from cce_demo.ui.catalog import TABLE_COLUMNS
from cce_demo.ui.classify.layout import example_labels
from cce_demo.ui.kit.charts import Bars, RowLabel, bar_rows
from cce_demo.ui.kit.theme import (RUNS_COLUMN_WIDTHS, RUNS_PHONE_COLUMN_WIDTHS, RUNS_PHONE_HIDDEN_COLUMNS, RUNS_STYLE,
                                   STYLE)

WHITE, DARK_BACKGROUND = "#ffffff", "#0b0f19"  # Gradio's light and dark page backgrounds


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour.lstrip("#")[index:index + 2], 16) / 255 for index in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def variables(block_selector: str) -> dict[str, str]:
    block = re.search(re.escape(block_selector) + r"\{([^}]*)\}", STYLE).group(1)
    return dict(re.findall(r"--([\w-]+):([^;]+)", block))


def expand(colour: str) -> str:
    colour = colour.strip()
    return "#" + "".join(c * 2 for c in colour[1:]) if len(colour) == 4 else colour


def test_the_oracle_matches_known_ratios():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#bbbbc2", "#ffffff") == pytest.approx(1.91, abs=0.01)  # the old grey, as the issue measured
    assert contrast("#ffffff", "#f97316") == pytest.approx(2.8, abs=0.01)  # the old Start button


def test_light_theme_text_and_buttons_meet_aa():
    light = variables(":root,:root .gradio-container")
    assert contrast(expand(light["body-text-color-subdued"]), WHITE) >= 4.5
    assert contrast(expand(light["body-text-color-subdued"]), "#f9fafb") >= 4.5  # on the secondary background too
    assert contrast(expand(light["color-accent"]), WHITE) >= 4.5  # the selected tab's label
    for kind in ("primary", "cancel"):
        text = expand(light[f"button-{kind}-text-color"])
        for state in ("", "-hover"):
            assert contrast(text, expand(light[f"button-{kind}-background-fill{state}"])) >= 4.5, (kind, state)


def test_dark_theme_secondary_text_meets_aa():
    dark = variables(":root.dark,:root .dark")
    assert contrast(expand(dark["body-text-color-subdued"]), DARK_BACKGROUND) >= 4.5
    assert contrast(expand(dark["color-accent"]), DARK_BACKGROUND) >= 4.5


def test_fonts_are_a_system_stack_without_web_fonts():
    light = variables(":root,:root .gradio-container")
    assert light["font"].startswith("system-ui") and light["font"].rstrip().endswith("sans-serif")
    assert "IBM Plex" not in STYLE and "Source Sans" not in STYLE


def test_runs_columns_shares_fill_the_width_and_keep_the_key_columns():
    assert len(RUNS_COLUMN_WIDTHS) == len(TABLE_COLUMNS)
    assert sum(float(share.rstrip("%")) for share in RUNS_COLUMN_WIDTHS) == pytest.approx(100)
    kept = [TABLE_COLUMNS[n - 1] for n in range(1, len(TABLE_COLUMNS) + 1) if n not in RUNS_PHONE_HIDDEN_COLUMNS]
    assert kept == ["run", "status", "balanced accuracy % (first seed)", "Δ balanced accuracy vs CE (points)",
                    "Δ tail recall vs CE (points)"]
    assert [n for n, _ in RUNS_PHONE_COLUMN_WIDTHS] == [TABLE_COLUMNS.index(name) + 1 for name in kept]
    assert sum(float(share.rstrip("%")) for _, share in RUNS_PHONE_COLUMN_WIDTHS) == pytest.approx(100)
    assert "@media (max-width:560px)" in RUNS_STYLE


def test_scrolled_chart_rows_are_a_focusable_named_region():
    html = bar_rows(title="Per-class recall", rows=[RowLabel("cat")], bars=[Bars("CE", "#111111", [0.5])])
    assert 'class="cc-rows two" style="max-height:640px" tabindex="0" role="region" aria-label="Per-class recall"' in html


def test_example_chips_do_not_name_the_class():
    labels = example_labels(10)
    assert labels[0] == "Example 1" and labels[-1] == "Example 10" and len(set(labels)) == 10
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert not any(name in label.lower() for label in labels for name in classes)
