"""The README's ETA block is generated from bench/estimate_results.json (issue 20's ETA benchmark): it must be
current, and it quotes only runs made with the ETA rule the app now uses."""
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_bench_module():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("estimate_accuracy", ROOT / "bench" / "estimate_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_eta_block_matches_the_results():
    bench = load_bench_module()
    results = json.loads((ROOT / "bench" / "estimate_results.json").read_text())
    text = (ROOT / "README.md").read_text()
    start, end = text.index(bench.ETA_BEGIN), text.index(bench.ETA_END) + len(bench.ETA_END)
    assert text[start:end] == bench.eta_report(results), "run: python bench/estimate_accuracy.py --write README.md"


def test_the_block_shows_each_checkpoint_against_the_time_that_remained():
    bench = load_bench_module()
    run = {"formula": "the pace is the last minute's", "torch_threads": 2, "measured_wall_seconds": 130.0,
           "environment": {"cpu_model": "Test CPU"}, "load_average": {"mean": 2.5},
           "busy_processes": {"count": 2, "at_progress": 0.5},
           "checkpoints": {"25%": {"relative_error": 0.1, "eta_seconds": 110.0, "actual_remaining_seconds": 100.0}}}
    old = {**run, "formula": "since the start", "torch_threads": 9}
    block = bench.eta_report({"eta": [old, run]})
    assert "| Test CPU, 2 torch threads, load average 2.5; 2 busy processes from 50 % progress | +10 % (110 s vs 100 s) | — |" in block
    assert "9 torch threads" not in block  # a run of the earlier rule is not quoted
