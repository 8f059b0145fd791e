"""The grid CLI: a tiny synthetic grid end to end, resuming, the tables' arithmetic, and torchrun."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cce_demo import grid_tables, reproduce
from cce_demo.run_directory import read_run
from cce_demo.grid_tables import aggregate, interval_of
from cce_demo.reproduce import Distribution, Grid, load_grid_file, named_grid_path

TINY = ["--dataset", "synthetic", "--losses", "ce,cce", "--seeds", "0,1", "--epochs", "1", "--batch-size", "64",
        "--no-progress"]


def test_tiny_grid_writes_tables_and_resumes(tmp_path):
    output = tmp_path / "grid"
    assert reproduce.main([*TINY, "--output-dir", str(output)]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["cells_done"] == 2
    [table] = results["tables"]
    assert table["seeds"] == [0, 1] and table["baseline"] == "ce"
    assert set(table["losses"]) == {"ce", "cce"} and set(table["versus_baseline"]) == {"cce"}
    assert len(table["mcnemar_p"]["cce"]) == 2
    assert "prior_corrected" in table and len(table["per_class_recall"]["ce"]) == 10
    assert "python -m cce_demo.reproduce" in results["command"]
    assert "| ce |" in (output / "results.md").read_text()
    # Format 2: per-seed data, McNemar's b and c, Holm, the data copy, the environment, threads in the command.
    assert results["format_version"] == 2 and "--threads" in results["command"]
    assert [cell["seed"] for cell in table["per_seed"]] == [0, 1]
    test = table["per_seed"][0]["losses"]["cce"]["mcnemar"]
    assert isinstance(test["b_only_baseline_correct"], int) and isinstance(test["c_only_this_loss_correct"], int)
    assert table["multiplicity"]["comparisons"] == 1 and "cce" in table["multiplicity"]["results"]
    assert results["data"]["copy"] == "synthetic (generated)" and table["subset_seed"] == 0
    assert "torchvision" in results["hardware"] and "deterministic" in results["hardware"]
    record = read_run(output / "runs" / "synthetic-exp-r100-seed0")
    assert record.metadata["environment"]["torch_threads"] >= 1 and record.metadata["data"]["copy"] == "synthetic (generated)"

    # --tables-only rewrites the tables from the finished cells without training.
    (output / "results.json").unlink()
    assert reproduce.main([*TINY, "--output-dir", str(output), "--tables-only"]) == 0
    assert json.loads((output / "results.json").read_text())["cells_done"] == 2

    # Resume: finished cells are skipped (their files stay as they were); an unfinished one is redone.
    seed0, seed1 = output / "runs" / "synthetic-exp-r100-seed0", output / "runs" / "synthetic-exp-r100-seed1"
    stamp = (seed0 / "run.json").stat().st_mtime_ns
    (seed1 / "cell.json").unlink()  # as if the process died before the cell was recorded as finished
    assert reproduce.main([*TINY, "--output-dir", str(output)]) == 0
    assert (seed0 / "run.json").stat().st_mtime_ns == stamp
    assert (seed1 / "cell.json").exists() and read_run(seed1).status == "done"


def test_hardware_of_cells_that_disagree_lists_every_value():
    first = {"cpu": "X", "cpu_count": 2, "torch_threads": 1}
    second = {"cpu": "X", "cpu_count": 2, "torch_threads": 2, "gpu": "G", "gpu_count": 1}
    combined = reproduce.combined_hardware([first, second, first])
    assert combined == {"cpu": "X", "cpu_count": 2, "torch_threads": "1 or 2", "gpu": "G", "gpu_count": 1}
    assert reproduce.combined_hardware([first]) == first
    assert "1 or 2 torch threads" in grid_tables.describe_hardware(combined)


def test_data_dir_is_not_recorded_in_the_command():
    assert reproduce.portable_flags(["--data-dir", "/home/me/cifar", "--epochs", "1"]) == ["--data-dir", "DIR", "--epochs", "1"]


@pytest.mark.parametrize("name", sorted(path.stem for path in (Path(__file__).resolve().parent.parent / "grids").glob("*.toml")))
def test_named_grid_is_valid(name):
    grid = load_grid_file(named_grid_path(name))
    assert grid.preset in reproduce.PRESETS and grid.name == name
    # Both CCE forms beside CE and the field's two strongest baselines, in every grid; several seeds.
    assert {"ce", "cce", "cce_reference", "logit_adjusted", "ldam_drw"} <= set(grid.losses) and len(grid.seeds) >= 3
    assert len(grid.cells()) == len(grid.seeds) * len(grid.imbalance_ratios)


def test_invalid_grid_is_refused_before_training():
    with pytest.raises(ValueError, match="losses"):
        Grid(name="bad", losses=("ce", "nope"))
    with pytest.raises(ValueError, match="imbalance_ratio"):
        Grid(name="bad", imbalance_ratios=(0.5,))
    with pytest.raises(SystemExit):
        reproduce.main(["--dataset", "synthetic", "--losses", "ce,unknown", "--output-dir", "/nonexistent/x"])


def test_ranks_split_cells_round_robin():
    cells = Grid(name="g", datasets=("synthetic",), seeds=(0, 1, 2, 3, 4)).cells()
    shares = [Distribution(rank, 2, rank, 2).my_cells(cells) for rank in range(2)]
    assert [cell.seed for cell in shares[0]] == [0, 2, 4] and [cell.seed for cell in shares[1]] == [1, 3]


def test_interval_oracle():
    entry = interval_of([0.1, 0.2, 0.3])
    # mean 0.2, sd 0.1, t(2) = 4.302653: half-width 4.302653 * 0.1 / sqrt(3)
    assert entry["mean"] == pytest.approx(0.2) and entry["high"] - 0.2 == pytest.approx(4.302653 * 0.1 / 3 ** 0.5)
    assert interval_of([0.5])["low"] is None and interval_of([float("nan")])["mean"] is None


def _cell(seed, ce_recall, cce_recall):
    counts = [5000, 50]

    def evaluation(recall):
        balanced = sum(recall) / 2
        return {"accuracy": balanced, "balanced_accuracy": balanced, "per_class_recall": recall,
                "group_recall": {"head": recall[0], "medium": None, "tail": recall[1]},
                "prior_corrected": {"accuracy": balanced, "balanced_accuracy": balanced, "per_class_recall": recall,
                                    "group_recall": {"head": recall[0], "medium": None, "tail": recall[1]}}}

    return {"dataset": "d", "profile": "exp", "imbalance_ratio": 100.0, "seed": seed, "class_names": ["a", "b"],
            "class_counts": counts, "baseline": "ce", "wall_seconds": 1.0,
            "evaluations": {"ce": evaluation(ce_recall), "cce": evaluation(cce_recall)},
            "comparisons": [{"other": "cce", "mcnemar": {"p_value": 0.5}}]}


def test_aggregate_pairs_differences_by_seed():
    cells = [_cell(0, [0.9, 0.1], [0.8, 0.2]), _cell(1, [0.7, 0.3], [0.6, 0.4])]
    [table] = aggregate(cells, ["ce", "cce"])
    tail = table["versus_baseline"]["cce"]["rank_tail"]
    assert tail["mean"] == pytest.approx(0.1) and tail["low"] == pytest.approx(0.1)  # +0.1 on both seeds
    assert table["losses"]["ce"]["balanced_accuracy"]["mean"] == pytest.approx(0.5)
    assert table["per_class_difference"]["cce"][0]["mean"] == pytest.approx(-0.1)
    # Count groups: 5000 images is "many", 50 is "medium", nothing is "few".
    assert table["groups"]["count_members"] == {"many": [0], "medium": [1], "few": []}
    assert table["losses"]["ce"]["count_few"]["mean"] is None


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_torchrun_two_ranks_share_the_cells(tmp_path):
    output = tmp_path / "grid"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "cce_demo.reproduce", *TINY, "--output-dir", str(output)],
        capture_output=True, text=True, timeout=300, env=environment, cwd=Path(__file__).resolve().parent.parent,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((output / "results.json").read_text())
    assert results["cells_done"] == 2 and results["hardware"]["processes"] == 2
    assert results["command"].startswith("torchrun")
    # Each rank trained one cell: both run directories exist and are finished.
    assert all(read_run(output / "runs" / f"synthetic-exp-r100-seed{seed}").status == "done" for seed in (0, 1))


def test_format_1_files_are_still_read_and_their_score_intervals_clipped(tmp_path):
    table = {"baseline": "ce", "versus_baseline": {"cce": {}}, "per_class_recall": {"ce": [{"mean": 0.02, "low": -0.05, "high": 0.09, "seeds": 3}]},
             "losses": {"ce": {"rank_tail": {"mean": 0.02, "low": -0.05, "high": 0.09, "seeds": 3}}}, "prior_corrected": {}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format_version": 1, "tables": [table], "config": {"subset_seed": 4}}))
    results = grid_tables.read_results(path)
    entry = results["tables"][0]["losses"]["ce"]["rank_tail"]
    assert entry["low"] == 0.0 and entry["clipped"] is True and entry["high"] == 0.09
    assert results["tables"][0]["per_class_recall"]["ce"][0]["low"] == 0.0
    assert results["tables"][0]["multiplicity"]["results"] is None and results["tables"][0]["subset_seed"] == 4
    assert results["data"]["copy"] == "CIFAR-10 (JPEG q75 copy)" and "declared" in results["data"]["how"]
    path.write_text(json.dumps({"format_version": 3, "tables": []}))
    with pytest.raises(ValueError, match="format"):
        grid_tables.read_results(path)
