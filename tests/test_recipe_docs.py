"""docs/recipe.md's search tables are generated from bench/recipe_search_*.json: the doc must be current, and
the CPU presets must use what the search chose."""
import importlib.util
import json
from pathlib import Path

from cce_demo.config import PRESETS

ROOT = Path(__file__).resolve().parent.parent


def load_search_module():
    spec = importlib.util.spec_from_file_location("recipe_search", ROOT / "bench" / "recipe_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_doc_tables_match_the_search_results():
    search = load_search_module()
    text = (ROOT / "docs" / "recipe.md").read_text()
    start, end = text.index(search.BEGIN), text.index(search.END) + len(search.END)
    assert text[start:end] == search.report(), "run: python bench/recipe_search.py --write docs/recipe.md"


def test_the_presets_use_the_best_in_budget_quick_candidate():
    # The rule: the quick stage's best plain validation score among candidates within the budget decides the
    # net, learning rate and schedule of both CPU presets (the 10-epoch points ran at 2.5x the budget).
    entries = json.loads((ROOT / "bench" / "recipe_search_quick.json").read_text())["candidates"]
    in_budget = [entry for entry in entries if entry["name"] != "resnet8-today" and entry["config"]["epochs"] < 10]
    best = max(in_budget, key=lambda entry: entry["validation"]["plain"])["config"]
    for name in ("quick", "standard"):
        preset = PRESETS[name]
        assert (preset.model, preset.learning_rate, preset.schedule) == (best["model"], best["learning_rate"], best["schedule"])
    assert PRESETS["quick"].epochs == best["epochs"]


def test_every_search_table_names_its_data_copy():
    # A result table without its data copy cannot be compared with another (issue 19): each stage's table is
    # followed by the copy's name, and a candidate that recorded its data is named from that record.
    search = load_search_module()
    report = search.report()
    stages = [stage for stage in search.STAGES if (ROOT / "bench" / f"recipe_search_{stage}.json").exists()]
    assert report.count("Data: CIFAR-10 (JPEG q75 copy)") == len(stages)
    recorded = {"copy": "CIFAR-10 (original)", "how": "detected from the files' hashes"}
    assert search.recorded_data_text([recorded], "these candidates") == "CIFAR-10 (original), detected from the files' hashes"
