"""The README's measured-figure blocks are generated from the bench/*.json results by bench/readme_blocks.py:
each block must equal the rendering of the committed JSON (so no measured number in them is typed by hand), and
the renderers follow their formatting rules on small hand-made results."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_module():
    spec = importlib.util.spec_from_file_location("readme_blocks", ROOT / "bench" / "readme_blocks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_blocks"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


blocks = load_module()
README = (ROOT / "README.md").read_text(encoding="utf-8")
LOADED = blocks.load_sources()


@pytest.mark.parametrize("block", blocks.BLOCKS, ids=lambda block: block.name)
def test_the_readme_block_matches_the_committed_results(block):
    begin, end = block.markers()
    assert README.count(begin) == 1 and README.count(end) == 1, f"README.md lacks the {block.name} block's markers"
    required = [source for source in block.sources if source not in block.optional]
    for source in required:
        assert LOADED[source] is not None, f"bench/{source} is missing"
    # A missing optional file renders as "no run recorded": figures in the README without their file fail here.
    start = README.index(begin)
    assert README[start:README.index(end, start) + len(end)] == block.rendered(LOADED), \
        "run: python bench/readme_blocks.py --write README.md"


def test_the_check_command_agrees():
    assert blocks.main(["--check", str(ROOT / "README.md")]) == 0


# ---- formatting rules --------------------------------------------------------------------------------------

def test_ranges_and_thousands():
    assert blocks.span([6.72, 0.59, 4.47]) == "0.6–6.7"
    assert blocks.span([1.04, 1.01]) == "1.0"  # equal at this precision: one value, not "1.0–1.0"
    assert blocks.span([170.7, 175.7], 0) == "171–176"
    assert blocks.thousands(1364.2) == "1,364"


def test_hosts_say_what_the_file_does_not_record():
    assert blocks.short_cpu("Intel(R) Xeon(R) Processor") == "Intel Xeon"
    assert blocks.host_text("AMD EPYC", 1) == "AMD EPYC, 1 torch thread"
    assert blocks.host_text(None, None) == "CPU not recorded, torch threads not recorded"


def test_the_verdict_counts_only_measured_targets():
    assert blocks.verdict(3, 3) == "misses all three targets"
    assert blocks.verdict(2, 2) == "misses 2 of the 2 targets it measured"
    assert blocks.verdict(0, 3) == "meets the targets it measured"


# ---- the Docker figures, before and after the smoke runs' file exists ------------------------------------

def smoke_run(real_data, peak_cgroup_mib, **changes):
    run = {"date": "2026-12-02", "commit": "abc1234", "image": "cce-demo", "image_bytes": 6_180_000_000,
           "host": {"cpu": "AMD EPYC 7B13", "cores": 2, "load_average_1min": 3.5},
           "job": {"preset": "quick", "epochs": 1} if real_data else {"preset": "quick", "dataset": "synthetic", "epochs": 1},
           "real_data": real_data, "health_interval": "2s", "healthy_seconds": 15.54, "restart_healthy_seconds": 10.0,
           "stop_after_job_seconds": 0.74, "classify_first_ms": 354.4, "classify_warm_ms": 1267.0, "job_seconds": 12.3,
           "peak_job_mib": 1480, "memory_samples": 40, "peak_cgroup_mib": peak_cgroup_mib,
           "early_stops": [{"first_200_seconds": 9.0, "delay_seconds": delay, "probe_running": delay < 4,
                            "exit_code": 0, "stop_seconds": seconds} for delay, seconds in ((0, 2.31), (2, 7.2), (4, 3.0))]}
    return {**run, **changes}


def test_the_docker_table_has_one_column_per_job_and_its_host():
    older = smoke_run(False, 964, healthy_seconds=99.0)
    table = blocks.render_docker({"runs": [older, smoke_run(False, None), smoke_run(True, 1610)]})
    assert table.splitlines()[0] == ("| figure | tiny synthetic job (`quick` preset, 1 epoch) | `quick` preset on CIFAR-10, 1 epoch |")
    assert "| image size | 6,180 MB (6.18 GB) | 6,180 MB (6.18 GB) |" in table
    assert "99.0 s" not in table  # the rerun of the same job replaces the older record
    assert "| the cgroup's high-water mark since start, page cache included | not available on this host's cgroup | 1,610 MiB |" in table
    assert "3 stops 0–4 s after the first HTTP 200: exit 0, 0, 0, speed probe still running in 2 of 3, 2.3–7.2 s" in table
    assert "| `/classify`, warm (median of 3) | 1,267 ms |" in table
    assert "commit `abc1234`, AMD EPYC 7B13, torch threads not recorded, 2 cores, load average 3.5 (1 min)" in table


def test_without_the_smoke_file_the_blocks_carry_no_docker_figure():
    assert "No smoke run is recorded yet" in blocks.render_docker(None)
    memory = {"job": {"preset": "standard"}, "peak_rss_high_water_mib": 1364.2}
    text = blocks.render_minimum_hardware(None, memory)
    # 1,364 MiB of 16 GB (decimal, as the hardware is listed): 1364 * 2**20 / 16e9 = 8.9 %
    assert "A `standard` job peaks at 1,364 MiB outside Docker (9 % of the memory" in text
    with_docker = blocks.render_minimum_hardware({"runs": [smoke_run(True, 1610)]}, memory)
    assert "with a `quick` preset on CIFAR-10, 1 epoch job peaks at 1,610 MiB (11 % of the memory" in with_docker


def test_the_early_stop_sentence_names_the_commit_only_when_recorded():
    results = {"command": "python bench/early_stop.py --rounds 2", "rounds": 2, "passed": 2, "probe_running_at_signal": 1,
               "stop_seconds_median": 2.0, "load_average_1min_at_end": 7.62, "cpu_count": 2,
               "details": [{"signal": "SIGINT", "delay_after_first_200_seconds": 1.0, "stop_seconds": 0.59},
                           {"signal": "SIGTERM", "delay_after_first_200_seconds": 3.93, "stop_seconds": 6.72}]}
    sentence = blocks.render_early_stop(results)
    assert "1.0–3.9 s after its first HTTP 200, alternately with SIGINT and SIGTERM, 2 times: 2 of 2" in sentence
    assert "the speed probe still running in 1 of 2, in 0.6–6.7 s (median 2.0 s, load average 7.6" in sentence
    assert "commit" not in sentence
    assert "2 cores, CPU not recorded, torch threads not recorded;" in sentence
    newer = blocks.render_early_stop({**results, "commit": "f5abc28", "cpu_model": "AMD EPYC 7B13"})
    assert "2 cores, AMD EPYC 7B13, torch threads not recorded, commit `f5abc28`;" in newer
