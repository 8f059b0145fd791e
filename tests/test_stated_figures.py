"""Figures the README and the docs state in prose, checked against the files or the code they come from.

A typed number that no test reads goes stale silently (issue 19: the README kept a test count, an estimate
and a model size from several commits back). Each test here reads the source of one stated figure — a
results file, a run record, a bench file, the cost model, the model itself — and fails when the prose and
the source disagree, so whoever changes one is told to change the other.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from cce_demo.budget import estimate_seconds
from cce_demo.config import PRESETS
from cce_demo.grid_tables import seeds_text
from cce_demo.models import build_model, count_parameters
from cce_demo.provenance import deterministic_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DESIGN = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
RECIPE = (ROOT / "docs" / "recipe.md").read_text(encoding="utf-8")

SHIPPED_RUN = ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce"
STANDARD_SEED_0 = ROOT / "results" / "cifar10-lt-standard" / "runs" / "cifar10-exp-r100-seed0"
RUN_FILES = sorted([*ROOT.glob("checkpoints/*/run.json"), *ROOT.glob("results/*/runs/*/run.json")])
RESULTS_FILES = sorted(ROOT.glob("results/*/results.json"))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def flat(text: str) -> str:
    """Prose with its line breaks as spaces: a stated figure may wrap."""
    return re.sub(r"\s+", " ", text)


def duration_text(estimate) -> str:
    """"19 min" from the estimate's "about 19 min on this machine"."""
    return estimate.text.removeprefix("about ").removesuffix(" on this machine")


# ---------------------------------------------------------------- the shipped run and the grid it belongs to


def test_the_shipped_run_is_the_seed_0_cell_of_the_standard_grid():
    # The README says the seed-0 cell of cifar10-lt-standard holds the same CE and CCE models as the shipped
    # run (same CPU type, thread count, versions and data). A paired run's models see only their initial
    # weights and the shared batches, so the other losses in the cell do not change them.
    shipped, cell = read_json(SHIPPED_RUN / "run.json"), read_json(STANDARD_SEED_0 / "run.json")
    assert "the seed-0 cell of the `cifar10-lt-standard` grid" in flat(README)
    different = {key for key in shipped["config"] if shipped["config"][key] != cell["config"].get(key)}
    assert different == {"losses"}
    assert set(shipped["config"]["losses"]) <= set(cell["config"]["losses"])
    assert shipped["environment"] == cell["environment"] and shipped["data"] == cell["data"]
    for loss in shipped["config"]["losses"]:
        assert shipped["final"]["evaluations"]["0"][loss] == cell["final"]["evaluations"]["0"][loss], loss
    cell_comparisons = {(entry["seed"], entry["other"]): entry for entry in cell["final"]["comparisons"]}
    for comparison in shipped["final"]["comparisons"]:
        assert comparison == cell_comparisons[(comparison["seed"], comparison["other"])]


# ---------------------------------------------------------------- what every shipped record must say


def _assert_environment(record: dict) -> None:
    assert isinstance(record.get("cpu"), str) and record["cpu"].strip()
    assert isinstance(record.get("torch_threads"), int) and record["torch_threads"] >= 1
    assert isinstance(record.get("torch"), str) and record["torch"]
    assert isinstance(record.get("torchvision"), str) and record["torchvision"]
    assert set(record.get("deterministic") or {}) == set(deterministic_settings())


def _assert_data(record: dict) -> None:
    assert isinstance(record.get("copy"), str) and record["copy"] and record.get("how")
    hashes = record.get("sha256") or {}
    assert set(hashes) == {"train.npz", "test.npz"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in hashes.values())


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_shipped_run_records_what_it_replays_under(path):
    run = read_json(path)
    _assert_environment(run["environment"])
    _assert_data(run["data"])


@pytest.mark.parametrize("path", RESULTS_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_shipped_grid_records_what_it_replays_under(path):
    results = read_json(path)
    assert results["format_version"] == 2
    _assert_environment(results["hardware"])
    _assert_data(results["data"])
    for table in results["tables"]:
        _assert_data(table["data"])


def test_there_are_shipped_records_to_check():
    # The parametrised tests above pass vacuously on an empty glob.
    assert SHIPPED_RUN / "run.json" in RUN_FILES and STANDARD_SEED_0 / "run.json" in RUN_FILES
    assert len(RESULTS_FILES) == 2 and "Both shipped grids are results files of format 2" in README


@pytest.mark.parametrize("path", RESULTS_FILES, ids=lambda path: path.parent.name)
def test_a_grid_header_names_the_seeds_in_its_tables(path):
    results = read_json(path)
    header = (path.parent / "results.md").read_text(encoding="utf-8").split("\n## ")[0]
    trained = sorted({seed for table in results["tables"] for seed in table["seeds"]})
    assert f"seeds in the tables {', '.join(map(str, trained))}" in header
    for seed in set(results["grid"]["seeds"]) - set(trained):
        assert re.search(rf"seeds? [0-9, ]*\b{seed}\b[0-9, ]* configured, not trained yet", header), seed


def test_seeds_text_separates_trained_from_configured_seeds():
    grid = {"grid": {"seeds": [0, 1, 2, 3, 4]}, "tables": [{"seeds": [0, 1]}, {"seeds": [0, 2]}]}
    assert seeds_text(grid) == "seeds in the tables 0, 1, 2 (seeds 3, 4 configured, not trained yet)"
    grid["tables"] = [{"seeds": [0, 1, 2, 3]}]
    assert seeds_text(grid) == "seeds in the tables 0, 1, 2, 3 (seed 4 configured, not trained yet)"
    grid["tables"] = [{"seeds": [4, 3, 2, 1, 0]}]
    assert seeds_text(grid) == "seeds in the tables 0, 1, 2, 3, 4"


# ---------------------------------------------------------------- commands


def _commands(text: str) -> list[str]:
    """Every `python -m cce_demo.train` / `cce_demo.reproduce` command in the text's fenced blocks, with its
    backslash continuations joined."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("#", 1)[0].strip()
            if re.match(r"python -m cce_demo\.(train|reproduce)\b", command) and "--help" not in command:
                commands.append(command)
    return commands


def test_every_train_and_reproduce_command_sets_the_thread_count():
    # A run replays bit for bit only at the same torch thread count, so a command that leaves it to torch
    # reproduces nothing exactly. (torchrun commands give each rank its share of the cores themselves.)
    commands = [command for text in (README, DESIGN, RECIPE) for command in _commands(text)]
    assert len(commands) >= 7
    assert [command for command in commands if not re.search(r"--threads \d+", command)] == []


# ---------------------------------------------------------------- figures from the code


def test_the_stated_parameter_count_of_convnet_s():
    thousands = round(count_parameters(build_model("convnet-s", 10)) / 1000)
    for text in (README, RECIPE):
        assert f"{thousands} k parameters" in flat(text)


def multiply_adds(name: str) -> int:
    """Multiply-adds of one 32x32 image through the model's convolutions and linear layers (what
    models.py's widths were chosen by), counted with forward hooks."""
    import torch
    from torch import nn

    model, total = build_model(name, 10).eval(), [0]

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            total[0] += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear):
            total[0] += module.in_features * module.out_features

    for module in model.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    return total[0]


def test_the_stated_multiply_adds_of_the_conv_nets():
    resnet8 = multiply_adds("resnet8")
    ratios = {name: multiply_adds(name) / resnet8 for name in ("convnet-s", "convnet-m", "convnet-l")}
    assert abs(ratios["convnet-s"] - 1) < 0.05  # "about as many multiply-adds per image as ResNet-8"
    assert "about as many multiply-adds per image as ResNet-8" in flat(README)
    models_source = flat((ROOT / "cce_demo" / "models.py").read_text(encoding="utf-8"))
    assert f"{ratios['convnet-m']:.1f}x (m) and {ratios['convnet-l']:.1f}x (l)" in models_source


def test_the_stated_size_of_the_shipped_run():
    size = sum(path.stat().st_size for path in SHIPPED_RUN.iterdir() if path.is_file())
    assert f"`checkpoints/cifar10-lt100-standard-ce-cce/` ({size / 1e6:.1f} MB" in README


def test_the_stated_estimates_of_the_gpu_presets_and_of_batch_1():
    text = flat(README)
    for name in ("ldam-drw", "authors"):
        hours = estimate_seconds(PRESETS[name], "cpu").total_seconds / 3600
        assert f"`{name}` (≈ {hours:.1f} h)" in text, name
    quick = PRESETS["quick"]
    batch_1 = duration_text(estimate_seconds(dataclasses.replace(quick, batch_size=1), "cpu"))
    batch_256 = duration_text(estimate_seconds(quick, "cpu"))
    assert quick.batch_size == 256
    assert f"batch 1 of `quick` is estimated at {batch_1} against {batch_256} at batch 256" in text
    # The API example starts `quick` with seeds 0, 1, 2 and prints the estimate the table gives it.
    three_seeds = estimate_seconds(dataclasses.replace(quick, seeds=(0, 1, 2)), "cpu").text
    assert '{"preset": "quick", "seeds": [0, 1, 2]}' in README
    assert 'print(job["estimate"])' in README and f'# e.g. "{three_seeds}"' in README


# ---------------------------------------------------------------- figures from bench files


def test_quick_at_ratio_100_leaves_the_tail_almost_unlearnt():
    # README "Why quick uses ratio 10" and design.md's measured facts: CE's tail recall under 10 % at the
    # frontier's 8-epoch convnet-s point at ratio 100.
    points = {point["label"]: point for point in read_json(ROOT / "bench" / "frontier_results.json")["points"]}
    point = points["r100-recipe-e8"]
    assert (point["ratio"], point["model"], point["epochs"]) == (100.0, "convnet-s", 8)
    assert point["scores"]["ce"]["tail_recall"] < 0.10
    assert "CE's tail recall stays under 10 % in the frontier's 8-epoch `convnet-s` point at ratio 100" in flat(README)
    assert "CE's tail recall under 10 % at the frontier's 8-epoch `convnet-s` point" in DESIGN
    # docs/recipe.md: the old ResNet-8 presets stayed under 50 % balanced accuracy.
    for label in ("r10-resnet8-preset", "r100-resnet8-preset"):
        assert points[label]["scores"]["ce"]["reported"] < 0.50, label
    assert "under 50 % balanced accuracy on CIFAR-10-LT" in flat(RECIPE)


def test_the_evaluation_subset_saving_is_on_the_stated_sides_of_the_rule():
    rows = {row["preset"]: row for row in read_json(ROOT / "bench" / "eval_subset_results.json")["rows"]}
    assert rows["standard"]["saving_percent"] >= 10 > rows["quick"]["saving_percent"]
    assert "saved just over the rule's 10 % and `quick`" in flat(DESIGN)
    for name in ("standard", "quick"):
        assert f"{rows[name]['train_images']:,} training images" in flat(DESIGN) or f"{rows[name]['train_images']:,} images" in flat(DESIGN)


def test_the_recipe_floors_and_goals_as_docs_recipe_states_them():
    def candidates(stage: str) -> dict[str, dict]:
        entries = read_json(ROOT / "bench" / f"recipe_search_{stage}.json")["candidates"]
        return {entry["name"]: entry["validation"] for entry in entries}

    quick, standard = candidates("quick"), candidates("standard")
    in_budget = [scores for name, scores in quick.items() if name != "resnet8-today" and "-e10-" not in name]
    best_quick = max(scores["plain"] for scores in in_budget)
    chosen_standard = standard["s-e33-lr0.2-cos"]
    # "The floors (+10 and +8 points over ResNet-8) are cleared"
    assert best_quick - quick["resnet8-today"]["plain"] >= 0.10
    assert chosen_standard["plain"] - standard["resnet8-today"]["plain"] >= 0.08
    # "with prior correction standard's CE gets past 70 % on validation"
    assert chosen_standard["flip_prior_corrected"] > 0.70
    # "neither goal is reached on validation": 75 % (quick) and 70 % (standard), plain balanced accuracy.
    assert best_quick < 0.75 and chosen_standard["plain"] < 0.70
    text = flat(RECIPE)
    assert "The floors (+10 and +8 points over ResNet-8) are cleared" in text and "neither goal is reached" in text


def test_the_recipe_budget_epochs_of_each_net():
    # docs/recipe.md: "the budget (which gives convnet-s 6 epochs and convnet-m 4)".
    import importlib.util

    spec = importlib.util.spec_from_file_location("recipe_search", ROOT / "bench" / "recipe_search.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    epochs: dict[str, set[int]] = {}
    for settings in search.STAGES["quick"]["candidates"].values():
        if settings["epochs"] < 10:  # the 10-epoch points ran before the budget rule
            epochs.setdefault(settings["model"], set()).add(settings["epochs"])
    assert epochs["convnet-s"] == {6} and epochs["convnet-m"] == {4}
    assert "gives `convnet-s` 6 epochs and `convnet-m` 4" in flat(RECIPE)


def test_the_stated_step_cap_of_an_upload():
    from cce_demo import transfer

    assert f"held to {transfer.MAX_STEP_EVENTS:,}\ntraining steps (`transfer.MAX_STEP_EVENTS`" in README
