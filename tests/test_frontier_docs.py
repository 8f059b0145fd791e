"""The README's frontier block is generated from bench/frontier_results.json: it must be current, and the
timing run it quotes must cover every point and every preset pair."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_frontier_module():
    spec = importlib.util.spec_from_file_location("frontier", ROOT / "bench" / "frontier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_frontier_block_matches_the_results():
    frontier = load_frontier_module()
    results = json.loads((ROOT / "bench" / "frontier_results.json").read_text())
    text = (ROOT / "README.md").read_text()
    start, end = text.index(frontier.BEGIN), text.index(frontier.END) + len(frontier.END)
    assert text[start:end] == frontier.report(results), "run: python bench/frontier.py --write README.md"


def test_every_point_has_a_time_from_the_one_timing_run():
    frontier = load_frontier_module()
    results = json.loads((ROOT / "bench" / "frontier_results.json").read_text())
    for point in results["points"]:
        assert frontier.point_seconds(results, point) is not None, point["label"]
    labels = {target["label"] for target in results["timing"]["targets"]}
    assert labels == {label for label, _, _ in frontier.target_pairs()}


def test_time_is_linear_in_epochs():
    frontier = load_frontier_module()
    family = {"fixed_seconds": 4.0, "epoch_seconds": 10.0}
    assert frontier.predicted_seconds(family, 6) == 64.0


def test_the_frontier_table_names_its_data_copy():
    # Points that recorded their data are named from the record; older points are labelled as declared.
    frontier = load_frontier_module()
    results = json.loads((ROOT / "bench" / "frontier_results.json").read_text())
    assert "Data: CIFAR-10 (JPEG q75 copy), " in frontier.table(results)
    recorded = {"copy": "CIFAR-10 (original)", "how": "detected from the files' hashes", "sha256": {}}
    assert frontier.points_data_text([{"data": recorded}]) == "CIFAR-10 (original), detected from the files' hashes"
    assert frontier.points_data_text([{}]).startswith("CIFAR-10 (JPEG q75 copy), declared")
    # A new point beside old ones: named from its record, the old ones counted, never "the cells disagree".
    assert frontier.points_data_text([{"data": recorded}, {}]) == (
        "CIFAR-10 (original), detected from the files' hashes; 1 of these frontier points predate the data record")


def test_the_long_grid_trains_for_the_budget_the_frontier_rule_picked():
    """The rule was fixed before its points ran, on CE alone; the grid's epoch count is its output, not a
    number typed twice."""
    import sys
    sys.path.insert(0, str(ROOT))
    from cce_demo.reproduce import load_grid_file, named_grid_path

    frontier = load_frontier_module()
    results = json.loads((ROOT / "bench" / "frontier_results.json").read_text())
    budget = frontier.long_budget(results)
    assert budget in frontier.LONG_BUDGET_EPOCHS
    grid = load_grid_file(named_grid_path("cifar10-lt-long"))
    assert {cell.config.epochs for cell in grid.cells()} == {budget}
    assert [cell.config.subset_seed for cell in grid.cells()] == list(grid.seeds)  # a draw per seed
    assert {cell.config.imbalance_ratio for cell in grid.cells()} == {100.0}
