"""The difference against training length: points gathered from every grid at a ratio, shortest budget first,
and words that follow the one verdict rule (oracle: hand-made intervals whose verdicts are known)."""
from pathlib import Path

import pytest

from cce_demo.budget_curve import budget_curves, curve_statement
from cce_demo.grid_tables import load_results
from cce_demo.metrics import Direction
from cce_demo.schema import GridResults
from cce_demo.ui.results.views import budget_section_html, load_result_sets

ROOT = Path(__file__).resolve().parent.parent


def grid(epochs: int, differences: dict[str, tuple[float, float, float] | tuple[float]], ratio: float = 100.0,
         subset_seeds: tuple[int, ...] = (0, 0, 0)) -> GridResults:
    def interval(values):
        if len(values) == 1:
            return {"mean": values[0], "seeds": 1}
        mean, low, high = values
        return {"mean": mean, "low": low, "high": high, "seeds": 3}

    seeds = list(range(len(subset_seeds)))
    return GridResults.model_validate({
        "format_version": 2, "config": {"epochs": epochs},
        "tables": [{
            "dataset": "cifar10", "profile": "exp", "imbalance_ratio": ratio, "seeds": seeds,
            "class_names": ["a", "b"], "class_counts": [10, 1], "baseline": "ce",
            "losses": {"ce": {}, **{loss: {} for loss in differences}},
            "versus_baseline": {loss: {"balanced_accuracy": interval(values)} for loss, values in differences.items()},
            "subset_seeds": list(subset_seeds),
        }],
    })


def test_points_are_gathered_per_ratio_and_sorted_by_budget():
    curves = budget_curves([
        ("long", grid(132, {"cce": (-0.005, -0.02, 0.01)}, subset_seeds=(0, 1, 2))),
        ("short", grid(33, {"cce": (-0.023, -0.036, -0.010)})),
        ("ten", grid(6, {"cce": (0.01, -0.01, 0.03)}, ratio=10.0)),
    ])
    assert [curve.imbalance_ratio for curve in curves] == [100.0, 10.0]
    points = curves[0].points["cce"]
    assert [(point.grid, point.epochs) for point in points] == [("short", 33), ("long", 132)]
    assert [point.verdict for point in points] == [Direction.BELOW, Direction.UNCLEAR]
    assert [point.subset_per_seed for point in points] == [False, True]
    assert curves[0].budgets == (33, 132)


@pytest.mark.parametrize("short, long, words", [
    ((-0.02, -0.03, -0.01), (-0.005, -0.02, 0.01), "the below-CE difference at 33 epochs is no longer clear at 132"),
    ((-0.02, -0.03, -0.01), (-0.02, -0.03, -0.01), "the verdict is the same from 33 to 132 epochs"),
    ((0.00, -0.01, 0.01), (0.02, 0.01, 0.03), "a difference appears from 33 to 132 epochs: above CE at 132 epochs"),
    ((-0.02, -0.03, -0.01), (0.02, 0.01, 0.03), "the sign flips from 33 to 132 epochs: below CE, then above"),
    ((0.00, -0.01, 0.01), (0.00, -0.01, 0.01), "no clear difference at any budget from 33 to 132 epochs"),
])
def test_the_words_follow_the_verdict_rule(short, long, words):
    (curve,) = budget_curves([("a", grid(33, {"cce": short})), ("b", grid(132, {"cce": long}))])
    statement = curve_statement(curve, "cce")
    assert statement.endswith(f"So {words}.")
    assert "33 epochs (3 seeds)" in statement and "132 epochs (3 seeds)" in statement


def test_one_budget_or_one_seed_states_no_trend():
    (curve,) = budget_curves([("a", grid(33, {"cce": (-0.02, -0.03, -0.01)}))])
    assert curve_statement(curve, "cce").endswith("(one budget shipped: no trend yet).")
    (curve,) = budget_curves([("a", grid(33, {"cce": (-0.02, -0.03, -0.01)})), ("b", grid(132, {"cce": (0.01,)}, subset_seeds=(0,)))])
    statement = curve_statement(curve, "cce")
    assert "one seed: no verdict" in statement and statement.endswith("no trend is stated).")


def test_the_shipped_grids_give_a_curve_per_ratio_on_the_results_tab():
    sets, problems = load_result_sets(ROOT / "results")
    assert not problems
    html = budget_section_html(sets)
    shipped = budget_curves([(path.parent.name, load_results(path)) for path in sorted((ROOT / "results").glob("*/results.json"))])
    assert {curve.imbalance_ratio for curve in shipped} >= {10.0, 100.0}
    for curve in shipped:
        if len(curve.budgets) < 2:
            assert f"ratio {curve.imbalance_ratio:g} (cifar10): only {curve.budgets[0]} epochs" in html
            continue
        assert f"against training length, ratio {curve.imbalance_ratio:g}" in html
        for loss in curve.points:
            # The sentence under the chart is the claims module's, HTML-escaped.
            assert curve_statement(curve, loss)[:40] in html


def test_a_curve_of_two_budgets_is_drawn_with_its_sentences(tmp_path):
    from cce_demo.ui.results.views import ResultSet, results_html

    sets = [ResultSet("short", tmp_path, grid(33, {"cce": (-0.02, -0.03, -0.01)})),
            ResultSet("long", tmp_path, grid(132, {"cce": (-0.005, -0.02, 0.01)}, subset_seeds=(0, 1, 2)))]
    html = budget_section_html(sets)
    assert "against training length, ratio 100" in html and "no longer clear at 132" in html
    assert "covers the data draw too" in html
    assert results_html(sets).index("The difference against training length") < results_html(sets).index("Grid <code>short")
