"""The verdict's seed spread is computed from the shipped grid for the same settings and names it; without
such a grid it says so (issue 19: no typed spread)."""
import json

import pytest
from types import SimpleNamespace

from cce_demo.config import preset
from cce_demo.reproduce import Distribution, Grid, build_results
from cce_demo.ui.kit.evidence import shipped_spread
from cce_demo.ui.compare.verdict import spread_sentence


def cell(seed, ce, cce):
    def evaluation(balanced):
        scores = {"accuracy": balanced, "balanced_accuracy": balanced, "per_class_recall": [balanced] * 10,
                  "group_recall": {"head": balanced, "medium": balanced, "tail": balanced}}
        return {**scores, "prior_corrected": dict(scores)}

    return {"dataset": "cifar10", "profile": "exp", "imbalance_ratio": 10.0, "seed": seed, "class_names": [str(i) for i in range(10)],
            "class_counts": [5000 - 450 * i for i in range(10)], "baseline": "ce", "wall_seconds": 1.0, "hardware": {},
            "evaluations": {"ce": evaluation(ce), "cce": evaluation(cce)},
            "comparisons": [{"other": "cce", "mcnemar": {"only_a_correct": 1, "only_b_correct": 2, "p_value": 1.0}}]}


def write_grid(root, name="my-grid", preset_name="quick"):
    grid = Grid(name=name, preset=preset_name, imbalance_ratios=(10.0,), losses=("ce", "cce"), seeds=(0, 1, 2))
    results = build_results(grid, [cell(0, 0.40, 0.41), cell(1, 0.43, 0.42), cell(2, 0.46, 0.44)], "python -m cce_demo.reproduce", Distribution())
    (root / name).mkdir(parents=True)
    (root / name / "results.json").write_text(json.dumps(results))


def test_spread_comes_from_the_matching_grid_and_names_it(tmp_path, monkeypatch):
    write_grid(tmp_path)
    monkeypatch.setenv("CCE_RESULTS_DIR", str(tmp_path))
    spread = shipped_spread(preset("quick", imbalance_ratio=10.0, losses=("ce", "cce", "focal"), seeds=(5,)))
    assert spread is not None and spread.grid == "my-grid" and spread.seeds == 3
    assert round(spread.baseline_sd, 6) == 3.0 and round(spread.baseline_range, 6) == 6.0  # 40, 43, 46 %
    text = spread_sentence(SimpleNamespace(config=preset("quick", imbalance_ratio=10.0)), "cce", "ce")
    assert "my-grid" in text and "3.0 points" in text and "range 6.0" in text
    assert "averaged −0.7" in text  # (1 - 1 - 2) / 3 points


def test_without_a_matching_grid_the_verdict_says_so(tmp_path, monkeypatch):
    write_grid(tmp_path)
    monkeypatch.setenv("CCE_RESULTS_DIR", str(tmp_path))
    for config in (preset("quick", imbalance_ratio=100.0), preset("quick", epochs=9), preset("standard")):
        assert shipped_spread(config) is None
        text = spread_sentence(SimpleNamespace(config=config), "cce", "ce")
        assert "not been measured yet" in text and "no shipped result grid" in text


def test_format_1_grids_give_the_spread_from_their_interval(tmp_path, monkeypatch):
    """A format-1 file holds no per-seed values: sd = half-width * sqrt(n) / t(n - 1), no range."""
    write_grid(tmp_path)
    path = tmp_path / "my-grid" / "results.json"
    data = json.loads(path.read_text())
    data["format_version"] = 1
    for table in data["tables"]:
        for scores in table["losses"].values():
            for entry in scores.values():
                entry.pop("values", None), entry.pop("clipped", None)
    path.write_text(json.dumps(data))
    monkeypatch.setenv("CCE_RESULTS_DIR", str(tmp_path))
    spread = shipped_spread(preset("quick", imbalance_ratio=10.0))
    assert spread is not None and spread.baseline_range is None and round(spread.baseline_sd, 6) == 3.0


def test_a_one_seed_grid_is_named_with_its_seed_count(tmp_path, monkeypatch):
    """A grid with one seed so far covers the settings but gives no spread: the sentence says so, and names it."""
    name = "one-seed"
    grid = Grid(name=name, preset="quick", imbalance_ratios=(10.0,), losses=("ce", "cce"), seeds=(0,))
    results = build_results(grid, [cell(0, 0.40, 0.41)], "python -m cce_demo.reproduce", Distribution())
    (tmp_path / name).mkdir()
    (tmp_path / name / "results.json").write_text(json.dumps(results))
    monkeypatch.setenv("CCE_RESULTS_DIR", str(tmp_path))
    spread = shipped_spread(preset("quick", imbalance_ratio=10.0))
    assert spread is not None and spread.seeds == 1 and spread.baseline_sd is None
    text = spread_sentence(SimpleNamespace(config=preset("quick", imbalance_ratio=10.0)), "cce", "ce")
    assert "one-seed" in text and "has 1 seed" in text and "not been measured" not in text


def test_the_default_root_is_the_repository_results_folder():
    """Without CCE_RESULTS_DIR the card reads the grids where they ship (it once looked one folder too deep)."""
    from pathlib import Path

    from cce_demo.ui.kit import evidence

    assert evidence.REPOSITORY_RESULTS == Path(__file__).resolve().parent.parent / "results"


def test_the_verdict_names_the_data_copy_from_the_run_record():
    """From the run's start event, which the snapshot carries (the card no longer re-reads run.json each second);
    the shipped run's snapshot names the copy its run.json records."""
    from conftest import ROOT
    from cce_demo.run_state import snapshot_from_run_dir
    from cce_demo.ui.compare.verdict import data_sentence

    config = preset("quick")
    recorded = {"copy": "CIFAR-10 (JPEG q75 copy)", "how": "detected from the files' hashes"}
    assert "CIFAR-10 (JPEG q75 copy), detected" in data_sentence(SimpleNamespace(config=config, data=recorded))
    assert "not recorded" in data_sentence(SimpleNamespace(config=config, data={}))
    assert "synthetic" in data_sentence(SimpleNamespace(config=config.replace(dataset="synthetic"), data={}))
    shipped = ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce"
    copy = json.loads((shipped / "run.json").read_text())["data"]["copy"]
    assert f"Data: {copy}," in data_sentence(snapshot_from_run_dir(shipped))


def test_the_shipped_run_records_its_own_prior_correction():
    """Classify reads the corrected scores from the run itself (no typed copy); the benchmark that measured them
    separately agrees with what the run recorded."""
    from conftest import ROOT
    from cce_demo.run_directory import read_run
    from cce_demo.ui.classify.handlers import balanced_accuracies

    measured = json.loads((ROOT / "bench" / "prior_correction_results.json").read_text())
    scores = balanced_accuracies(read_run(ROOT / "checkpoints" / measured["run_id"]))
    for row in measured["rows"]:
        plain, corrected = scores[row["loss"]]
        assert abs(plain - row["balanced_accuracy"]) < 1e-4 and abs(corrected - row["corrected_balanced_accuracy"]) < 1e-4


def test_a_malformed_data_record_reads_as_not_recorded():
    """The start event's schema admits only an object; within it, a copy that is not a name reads as unrecorded
    (an imported run is untrusted)."""
    from cce_demo.schema import parse_event
    from cce_demo.ui.compare.verdict import data_sentence

    for data in ({"copy": 5}, {"copy": ""}, {}):
        assert "not recorded" in data_sentence(SimpleNamespace(config=preset("quick"), data=data))
    with pytest.raises(ValueError):
        parse_event({"kind": "started", "config": {}, "class_names": [], "class_counts": [], "num_train": 1, "num_test": 1,
                     "device": "cpu", "steps_per_epoch": 1, "total_steps": 1, "data_source": "x", "data": [1, 2]})
