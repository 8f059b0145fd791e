"""Issue 20, the general answer on the first screen: the verdict card states what the shipped grid with the
same settings and ratio concludes (its mean, its 95 % interval, the one verdict rule), computed from
results/<grid>/results.json, and links to the Results tab; or says that no shipped grid covers the settings."""
from __future__ import annotations

import types

import pytest

from cce_demo.config import PRESETS



def test_the_verdict_card_names_the_shipped_grids_conclusion(monkeypatch):
    """Oracle: the shipped quick grid's own numbers (results/cifar10-lt-quick/results.json) and the project's
    one verdict rule; the card must state the same mean, interval and conclusion for every loss it shows."""
    from conftest import ROOT

    from cce_demo.grid_tables import read_results
    from cce_demo.metrics import Direction, direction_of
    from cce_demo.ui.compare.verdict import general_answer_html
    from cce_demo.ui.kit.formatting import points
    from cce_demo.ui.kit.names import display_name

    path = ROOT / "results" / "cifar10-lt-quick" / "results.json"
    if not path.exists():
        pytest.skip("the quick grid is not shipped in this checkout")
    monkeypatch.setenv("CCE_RESULTS_DIR", str(ROOT / "results"))
    grid = read_results(path)
    table = next(table for table in grid["tables"] if table["imbalance_ratio"] == PRESETS["quick"].imbalance_ratio)
    losses = tuple(table["versus_baseline"])
    config = PRESETS["quick"].replace(losses=(table["baseline"], *losses))
    card = general_answer_html(types.SimpleNamespace(config=config))
    assert "cifar10-lt-quick" in card and f"{len(table['seeds'])} seeds" in card and "Results tab" in card
    for loss in losses:
        entry = table["versus_baseline"][loss]["balanced_accuracy"]
        stated = (f"{display_name(loss)} − {display_name(table['baseline'])} {points(100 * entry['mean'])} points balanced "
                  f"accuracy (95 % interval {points(100 * entry['low'])} to {points(100 * entry['high'])})")
        assert stated in card
        direction = direction_of(entry["low"], entry["high"])
        survives = "survives" if table["multiplicity"]["results"][loss]["survives"] else "does not survive"
        conclusion = ("no clear difference" if direction == Direction.UNCLEAR
                      else f"{display_name(loss)} {'higher' if direction == Direction.ABOVE else 'lower'}, and it {survives} "
                           f"Holm’s correction over the grid’s {table['multiplicity']['comparisons']} comparisons")
        assert f"{stated}: <b>{conclusion}" in card


def test_without_a_shipped_grid_the_card_says_so(tmp_path, monkeypatch):
    from cce_demo.ui.compare.verdict import general_answer_html

    monkeypatch.setenv("CCE_RESULTS_DIR", str(tmp_path))  # no grids here
    card = general_answer_html(types.SimpleNamespace(config=PRESETS["standard"]))
    assert "no shipped result grid covers the standard preset at ratio 100" in card and "Results tab" in card
