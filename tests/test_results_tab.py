"""The Results tab (issue 10): the app reads results/<grid>/results.json (or CCE_RESULTS_DIR) once when it is
built and shows it; a results.json built here from fake cells with the real aggregation."""
import json
import os
import sys

import pytest

from cce_demo.reproduce import Distribution, Grid, build_results
from conftest import ROOT


def fake_cell(seed, ce_recall, cce_recall):
    counts = [5000, 50]

    def evaluation(recall):
        balanced = sum(recall) / 2
        scores = {"accuracy": balanced, "balanced_accuracy": balanced, "per_class_recall": recall,
                  "group_recall": {"head": recall[0], "medium": None, "tail": recall[1]}}
        return {**scores, "prior_corrected": dict(scores)}

    return {"dataset": "synthetic", "profile": "exp", "imbalance_ratio": 100.0, "seed": seed, "class_names": ["a", "b"],
            "class_counts": counts, "baseline": "ce", "wall_seconds": 3.0, "hardware": {"device": "cpu", "cpu": "test cpu"},
            "evaluations": {"ce": evaluation(ce_recall), "cce": evaluation(cce_recall)},
            "comparisons": [{"other": "cce", "mcnemar": {"p_value": 0.5}}]}


@pytest.fixture
def results_dir(tmp_path):
    grid = Grid(name="tiny-grid", datasets=("synthetic",), seeds=(0, 1))
    cells = [fake_cell(0, [0.9, 0.1], [0.8, 0.2]), fake_cell(1, [0.7, 0.3], [0.6, 0.4])]
    results = build_results(grid, cells, "python -m cce_demo.reproduce --grid tiny-grid", Distribution())
    (tmp_path / "tiny-grid").mkdir()
    (tmp_path / "tiny-grid" / "results.json").write_text(json.dumps(results))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    return tmp_path


def results_tab_html(demo):
    [block] = [block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "results"]
    return block.value


def build(results_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CCE_RESULTS_DIR", str(results_dir))
    monkeypatch.setenv("CCE_RUNS_DIR", str(tmp_path / "runs"))
    sys.path.insert(0, str(ROOT))
    import app as app_module

    demo, manager = app_module.create_app()
    manager.shutdown()
    return demo


def test_results_tab_shows_the_grid_and_names_unreadable_files(results_dir, monkeypatch, tmp_path):
    html = results_tab_html(build(results_dir, monkeypatch, tmp_path))
    assert "tiny-grid" in html and "python -m cce_demo.reproduce --grid tiny-grid" in html
    assert "Unreadable" in html and "broken" in html


def test_results_tab_without_grids_says_how_to_make_one(monkeypatch, tmp_path):
    html = results_tab_html(build(tmp_path / "none", monkeypatch, tmp_path))
    assert "No result grid" in html and "python -m cce_demo.reproduce" in html


def test_the_app_reads_the_repositorys_results_folder_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("CCE_RESULTS_DIR", raising=False)
    monkeypatch.setenv("CCE_RUNS_DIR", str(tmp_path / "runs"))
    sys.path.insert(0, str(ROOT))
    import app as app_module

    demo, manager = app_module.create_app()
    manager.shutdown()
    grids = sorted(path.parent.name for path in (ROOT / "results").glob("*/results.json"))
    html = results_tab_html(demo)
    assert all(name in html for name in grids)
    assert os.path.isdir(ROOT / "results") or "No result grid" in html


def test_each_grid_gets_one_sentence_by_the_verdict_rule():
    """The sentence names a direction only for a loss whose 95 % interval excludes zero, and Holm's survivors."""
    from cce_demo.schema import GridTable, Interval, MetricIntervals, Multiplicity
    from cce_demo.ui.results.views import grid_sentence

    def versus(low, high):
        return MetricIntervals(balanced_accuracy=Interval(mean=(low + high) / 2, low=low, high=high, seeds=3))

    table = GridTable(
        dataset="cifar10", profile="exp", imbalance_ratio=10.0, seeds=(0, 1, 2), class_names=("a", "b"),
        class_counts=(10, 1), baseline="ce", losses={},
        versus_baseline={"cce": versus(-0.02, 0.01), "ldam_drw": versus(0.02, 0.08), "focal": versus(-0.09, -0.01)},
        multiplicity=Multiplicity(results={"ldam_drw": {"p_value": 0.001, "adjusted_p": 0.003, "survives": True},
                                           "focal": {"p_value": 0.04, "adjusted_p": 0.08, "survives": False},
                                           "cce": {"p_value": 0.5, "adjusted_p": 0.5, "survives": False}}),
    )
    text = grid_sentence(table)
    assert text.startswith("Over 3 seeds at imbalance ratio 10")
    from cce_demo.ui.kit.names import display_name

    ldam, focal, cce, ce = (display_name(loss) for loss in ("ldam_drw", "focal", "cce", "ce"))
    assert f"{ldam} higher than {ce}" in text and f"{focal} lower than {ce}" in text
    assert f"no clear difference from {ce} for {cce}" in text and f"{ldam} holds up" in text
    one_seed = table.model_copy(update={"seeds": (0,)})
    assert "names no direction" in grid_sentence(one_seed)


def test_per_class_differences_share_one_scale():
    """Issue 31: with a scale per loss, a +3 was as long as a +10. Now every loss's bar is drawn on one scale:
    one axis under the column, and bar width / |value| is the same for every bar that the scale does not clip."""
    import re

    from cce_demo.grid_tables import load_results
    from cce_demo.ui.results.views import recall_chart

    table = load_results(ROOT / "results" / "cifar10-lt-standard" / "results.json").tables[0]
    html = recall_chart(table)
    assert html.count('<div class="cc-axis">') == 2  # the recall axis and one difference axis
    scale = float(re.findall(r">\+([\d.]+)</em>", html)[-1])
    ratios = []
    for points, width in re.findall(r'title="[^"]*?: ([+-][\d.]+) points[^"]*"><span class="cc-dtrack"><i style="left:[\d.]+%;width:([\d.]+)%',
                                    html.replace("−", "-")):
        points, width = float(points), float(width)
        if 1.0 <= abs(points) < scale:
            ratios.append(width / abs(points))
    assert len(ratios) > 20 and max(ratios) / min(ratios) < 1.1  # rounding to 0.1 point in the tooltip only


def test_per_class_intervals_say_they_are_uncorrected():
    from cce_demo.grid_tables import load_results
    from cce_demo.ui.results.views import recall_chart

    table = load_results(ROOT / "results" / "cifar10-lt-standard" / "results.json").tables[0]
    count = len(table.per_class_difference) * len(table.class_names)
    assert f"These {count} per-class intervals are not corrected for multiplicity" in recall_chart(table)
