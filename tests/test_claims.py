"""README's results block and About's summary are computed from the shipped results.json files (issue 19)."""
import shutil

import pytest

from cce_demo import claims
from cce_demo.ui.about.layout import ABOUT, about_markdown
from conftest import ROOT


def test_the_readme_results_block_is_current():
    assert claims.main(["--check", str(ROOT / "README.md")]) == 0, "run: python -m cce_demo.claims --write README.md"


def test_about_states_what_the_shipped_grids_say():
    grids = claims.shipped_grids()
    assert claims.about_summary(grids) in ABOUT
    family = claims.headline_family(grids)
    for name, data in grids:
        for table in data["tables"]:
            for sentence in claims.statements(table, name, family):
                assert sentence in ABOUT
    assert "Balanced Softmax" in ABOUT and "CIFAR-10 (JPEG q75 copy)" in ABOUT


def test_directions_follow_the_interval():
    assert claims.direction({"mean": 0.01, "low": -0.01, "high": 0.03}, "ce") == "no clear difference"
    assert claims.direction({"mean": 0.02, "low": 0.01, "high": 0.03}, "ce") == "above CE"
    assert claims.direction({"mean": -0.02, "low": -0.03, "high": -0.01}, "ce") == "below CE"
    assert claims.direction({"mean": 0.02, "low": None, "high": None}, "ce") == "one seed: no interval"


def test_a_broken_results_file_is_named_in_about_not_fatal(tmp_path):
    shutil.copytree(ROOT / "results" / "cifar10-lt-quick", tmp_path / "cifar10-lt-quick", ignore=shutil.ignore_patterns("runs"))
    (tmp_path / "missing-keys").mkdir()
    (tmp_path / "missing-keys" / "results.json").write_text('{"format_version": 1, "tables": [{"no": "keys"}]}')
    (tmp_path / "not-json").mkdir()
    (tmp_path / "not-json" / "results.json").write_text("{")
    text = about_markdown(tmp_path)  # once a KeyError at import time, which stopped the app
    assert "`missing-keys/results.json`" in text and "`not-json/results.json`" in text
    good = claims.readable_shipped_grids(tmp_path)[0]
    assert [name for name, _ in good] == ["cifar10-lt-quick"] and claims.about_summary(good) in text
    with pytest.raises(ValueError, match="missing-keys/results.json, not-json/results.json"):
        claims.shipped_grids(tmp_path)  # the README writer stops instead of skipping a grid


def test_the_headline_family_spans_every_shipped_grid():
    grids = claims.shipped_grids()
    family = claims.headline_family(grids)
    expected = sum(len(table["versus_baseline"]) for _, data in grids for table in data["tables"])
    assert len(family) == expected and len({grid for grid, _, _ in family}) == len(grids)
    # Holm over the larger family is never more lenient than within one grid.
    for name, data in grids:
        for table in data["tables"]:
            within = table["multiplicity"]["results"]
            for loss, result in within.items():
                assert family[(name, table["imbalance_ratio"], loss)]["adjusted_p"] >= result["adjusted_p"] - 1e-12


def test_every_no_clear_difference_says_what_it_could_detect():
    grids = claims.shipped_grids()
    family = claims.headline_family(grids)
    for name, data in grids:
        for table in data["tables"]:
            for sentence in claims.statements(table, name, family):
                if "no clear difference" in sentence:
                    assert "seeds could detect about" in sentence and "of zero: " in sentence


def test_no_page_says_the_presets_reproduce_the_paper():
    """Issue 30: `ldam-drw` is Cao et al.'s recipe and no CCE-paper number has been checked, so neither the
    README, About nor the Results tab may say the paper's gains come from the presets or that a CLI
    reproduces the paper's protocols."""
    from cce_demo.ui.results.views import results_tab_html

    texts = {"README": (ROOT / "README.md").read_text(), "About": ABOUT, "Results": results_tab_html(ROOT / "results")}
    for name, text in texts.items():
        flat = " ".join(text.split())
        for claim in ("paper's gains come from", "paper's own gains", "reproduces the paper's", "paper's 200-epoch protocols"):
            assert claim not in flat, (name, claim)
        if name != "Results":
            assert "no number of the CCE paper has been checked" in flat or "no number of the paper has been checked" in flat, name
