"""Every interval in every shipped results.json, recomputed from its per-seed values with a t-quantile and a
McNemar test written here, independently of cce_demo.metrics (issue 19). Format-1 files hold no per-seed
values: they are skipped with that reason, and their results.md must still be what the code writes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cce_demo.grid_tables import markdown_report, read_results
from cce_demo.reproduce import Distribution, Grid, build_results

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "results").glob("*/results.json"))
SCORE_KEYS = ("losses", "prior_corrected", "per_class_recall")  # accuracies and recalls: clipped to [0, 1]


def t_cdf(t: float, df: int, steps: int = 4000) -> float:
    """P(T <= t) by Simpson's rule on the Student-t density over [0, |t|]."""
    constant = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    density = lambda x: constant * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    width = abs(t) / steps
    area = density(0) + density(abs(t)) + sum((4 if i % 2 else 2) * density(i * width) for i in range(1, steps))
    half = area * width / 3
    return 0.5 + half if t >= 0 else 0.5 - half


def t_quantile_975(df: int) -> float:
    low, high = 0.0, 100.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < 0.975 else (low, middle)
    return (low + high) / 2


def test_the_independent_quantile_is_right():
    assert t_quantile_975(2) == pytest.approx(4.302653, abs=1e-5)  # published tables
    assert t_quantile_975(9) == pytest.approx(2.262157, abs=1e-5)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert t_quantile_975(4) == pytest.approx(float(scipy_stats.t.ppf(0.975, 4)), abs=1e-6)


def mcnemar_exact(b: int, c: int) -> float:
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))  # exact integers
    return min(1.0, 2 * tail / 2**n)


def intervals(node, path=()):
    """Every interval entry (a dict with mean, low, high, seeds) in the tree, with the keys leading to it."""
    if isinstance(node, dict):
        if {"mean", "low", "high", "seeds"} <= set(node):
            yield path, node
            return
        for key, value in node.items():
            yield from intervals(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from intervals(value, (*path, index))


def check_results(results: dict) -> int:
    """Recompute everything; returns how many entries were checked (an interval, or a one-seed mean's
    missing interval)."""
    checked = 0
    for table in results["tables"]:
        for path, entry in intervals({key: table[key] for key in table if key != "per_seed"}):
            assert "values" in entry, path
            kept = [value for value in entry["values"] if value is not None]
            assert entry["seeds"] == len(kept), path
            if not kept:
                assert entry["mean"] is None, path
                continue
            mean = sum(kept) / len(kept)
            assert entry["mean"] == pytest.approx(mean, abs=1e-12), path
            if len(kept) < 2:  # one seed: a mean and no interval (one seed cannot say how much seeds vary)
                assert entry["low"] is None and entry["high"] is None, path
                checked += 1
                continue
            sd = math.sqrt(sum((value - mean) ** 2 for value in kept) / (len(kept) - 1))
            half = t_quantile_975(len(kept) - 1) * sd / math.sqrt(len(kept))
            bounds = (0.0, 1.0) if path[0] in SCORE_KEYS else (-1.0, 1.0)
            low, high = max(bounds[0], mean - half), min(bounds[1], mean + half)
            # The code's tabulated quantiles are rounded up at the sixth decimal (wide side).
            assert entry["low"] == pytest.approx(low, abs=1e-5 * half + 1e-12), path
            assert entry["high"] == pytest.approx(high, abs=1e-5 * half + 1e-12), path
            assert entry.get("clipped", False) == (mean - half < bounds[0] or mean + half > bounds[1]), path
            checked += 1
        # The per-seed block holds the same values the intervals were computed from.
        baseline = table["baseline"]
        for index, cell in enumerate(table["per_seed"]):
            assert cell["seed"] == table["seeds"][index]
            for loss, record in cell["losses"].items():
                for metric, value in record["scores"].items():
                    assert table["losses"][loss][metric]["values"][index] == value
                    assert table["prior_corrected"][loss][metric]["values"][index] == record["prior_corrected"]["scores"][metric]
                assert [entry["values"][index] for entry in table["per_class_recall"][loss]] == record["per_class_recall"]
                if loss != baseline:
                    base = cell["losses"][baseline]["scores"]["balanced_accuracy"]
                    difference = table["versus_baseline"][loss]["balanced_accuracy"]["values"][index]
                    assert difference == pytest.approx(record["scores"]["balanced_accuracy"] - base, abs=1e-12)
                    test = record["mcnemar"]
                    assert test["p_value"] == pytest.approx(mcnemar_exact(test["b_only_baseline_correct"], test["c_only_this_loss_correct"]), rel=1e-9, abs=1e-300)
        # Holm, by hand: m p-values sorted, adjusted = running max of (m - rank) * p.
        block = table["multiplicity"]
        assert block["comparisons"] == len(table["versus_baseline"])
        ordered = sorted(block["results"].items(), key=lambda item: item[1]["p_value"])
        running = 0.0
        for rank, (loss, entry) in enumerate(ordered):
            running = max(running, min(1.0, (len(ordered) - rank) * entry["p_value"]))
            assert entry["adjusted_p"] == pytest.approx(running) and entry["survives"] == (running < block["alpha"])
    return checked


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.parent.name)
def test_every_shipped_interval_recomputes_from_its_per_seed_values(path):
    results = json.loads(path.read_text(encoding="utf-8"))
    if results["format_version"] == 1:
        pytest.skip("format 1: written before results.json held per-seed values; retrain the grid to ship them")
    assert check_results(results) > 0


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.parent.name)
def test_shipped_markdown_is_what_the_code_writes(path):
    assert (path.parent / "results.md").read_text(encoding="utf-8") == markdown_report(read_results(path))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.parent.name)
def test_shipped_files_name_no_path_of_the_machine_that_made_them(path):
    """The reproduce command and the data source are for a reader's machine: DIR, never a local folder
    (a --tables-only run with an absolute --output-dir once wrote that folder into the shipped command)."""
    for shipped in (path, path.parent / "results.md", *sorted(path.parent.glob("runs/*/*.json"))):
        text = shipped.read_text(encoding="utf-8")
        assert "/work/" not in text and "/home/" not in text and "/root/" not in text, shipped


def fake_cell(seed, ce, other, b, c):
    counts = [5000, 50]

    def evaluation(recall):
        balanced = sum(recall) / 2
        scores = {"accuracy": balanced, "balanced_accuracy": balanced, "per_class_recall": recall,
                  "group_recall": {"head": recall[0], "medium": float("nan"), "tail": recall[1]}}
        return {**scores, "prior_corrected": dict(scores)}

    return {"dataset": "synthetic", "profile": "exp", "imbalance_ratio": 100.0, "seed": seed, "class_names": ["a", "b"],
            "class_counts": counts, "baseline": "ce", "wall_seconds": 3.0, "hardware": {"cpu": "test cpu", "torch_threads": 1},
            "subset_seed": 0, "data": {"copy": "synthetic (generated)", "how": "generated"},
            "evaluations": {"ce": evaluation(ce), "cce": evaluation(other), "focal": evaluation([0.99, 0.0])},
            "comparisons": [{"other": "cce", "mcnemar": {"only_a_correct": b, "only_b_correct": c, "p_value": mcnemar_exact(b, c)}},
                            {"other": "focal", "mcnemar": {"only_a_correct": c, "only_b_correct": b, "p_value": mcnemar_exact(c, b)}}]}


def test_the_checker_on_a_format_2_file_built_by_the_code():
    """What the shipped files will be once their grids are retrained: the same checks, on fake cells."""
    grid = Grid(name="tiny", datasets=("synthetic",), seeds=(0, 1, 2), losses=("ce", "cce", "focal"))
    cells = [fake_cell(0, [0.9, 0.1], [0.8, 0.2], 12, 30), fake_cell(1, [0.7, 0.3], [0.6, 0.45], 5, 9),
             fake_cell(2, [0.98, 0.02], [0.9, 0.3], 40, 41)]
    results = json.loads(json.dumps(build_results(grid, cells, "python -m cce_demo.reproduce", Distribution()),
                                    default=lambda value: None).replace("NaN", "null"))
    assert results["format_version"] == 2
    assert check_results(results) > 10
    table = results["tables"][0]
    assert table["losses"]["focal"]["rank_tail"]["low"] == 0.0 and table["losses"]["focal"]["rank_tail"]["clipped"] is False
    assert table["losses"]["ce"]["rank_tail"]["clipped"] is True  # 0.1, 0.3, 0.02: the t-interval reaches below 0
    assert "*" in markdown_report(results) and "Holm" in markdown_report(results)
