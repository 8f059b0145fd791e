"""The replay check retrains a finished run from its record and reports honestly: bit-identical on the same
machine and threads, a difference in points when the record says otherwise, and which provenance fields differ."""
import json

import pytest

from cce_demo import replay
from cce_demo.config import TrainConfig
from cce_demo.engine import train_paired
from cce_demo.provenance import machine
from cce_demo.run_directory import RunWriter


def finished_run(tmp_path, losses=("ce", "cce")):
    config = TrainConfig(dataset="synthetic", imbalance_ratio=4.0, epochs=2, batch_size=32, learning_rate=0.05,
                         warmup_epochs=0.0, device="cpu", max_per_class=30, synthetic_test_per_class=10, losses=losses,
                         seeds=(0, 1))
    writer = RunWriter(tmp_path, config, "run")
    writer.finish(train_paired(config, writer.record))
    return writer.run_dir


def test_a_replay_on_the_same_machine_is_bit_identical(tmp_path):
    run_dir = finished_run(tmp_path, losses=("ce", "cce", "focal"))
    rows, differences = replay.replay(run_dir, ["ce"], [1], None, False)
    assert [(row.loss, row.seed) for row in rows] == [("ce", 1)]  # CE alone replays the CE of a three-loss run
    assert rows[0].identical and rows[0].weights_identical and rows[0].difference_points == 0.0
    assert not [key for key, _, _ in differences if key not in replay.INCIDENTAL_FIELDS]
    assert "seed 1 ce: bit-identical weights and evaluation" in replay.report(rows, differences)


def test_a_replay_that_differs_says_by_how_much_and_which_fields_differ(tmp_path, capsys):
    run_dir = finished_run(tmp_path)
    record = json.loads((run_dir / "run.json").read_text())
    record["final"]["evaluations"]["0"]["ce"]["balanced_accuracy"] -= 0.0125  # as if trained elsewhere
    record["environment"]["machine"]["torch_cpu_capability"] = "AVX2"
    (run_dir / "run.json").write_text(json.dumps(record))
    assert replay.main([str(run_dir), "--losses", "ce", "--seed", "0", "--no-download"]) == 1
    output = capsys.readouterr().out
    assert "seed 0 ce: differs by +1.25 points of balanced accuracy" in output
    assert "machine.torch_cpu_capability: 'AVX2' →" in output


def test_replay_refuses_what_the_run_did_not_train(tmp_path, capsys):
    run_dir = finished_run(tmp_path)
    assert replay.main([str(run_dir), "--losses", "ldam_drw", "--no-download"]) == 2
    assert "did not train ldam_drw" in capsys.readouterr().err
    assert replay.main([str(run_dir), "--seed", "7", "--no-download"]) == 2


def test_provenance_names_the_machine_exactly():
    cpuinfo = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
               "stepping\t: 1\nmicrocode\t: 0x1000065\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f hypervisor\n\n"
               "processor\t: 1\nvendor_id\t: Other\n")
    configuration = ("  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build\n"
                     "  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80af)\n  - OpenMP 201511 (a.k.a. OpenMP 4.5)\n")
    record = machine(cpuinfo, configuration)
    assert {key: record[key] for key in ("vendor", "family", "model", "stepping", "microcode")} == {
        "vendor": "AuthenticAMD", "family": "25", "model": "17", "stepping": "1", "microcode": "0x1000065"}
    assert record["instruction_flags"] == ["sse4_2", "avx", "avx2", "fma", "avx512f"]
    assert record["virtualised"] is True
    assert (record["mkl"], record["onednn"], record["openmp"]) == ("2024.2", "v3.12.0", "201511")
    assert record["torch_cpu_capability"]  # this host's, from torch
    bare = machine("processor\t: 0\nflags\t: sse4_2\n", "")
    assert bare["virtualised"] is False and bare["onednn"] == "" and "family" not in bare


def test_every_run_records_the_machine_and_the_commit(tmp_path):
    run_dir = finished_run(tmp_path)
    environment = json.loads((run_dir / "run.json").read_text())["environment"]
    assert {"family", "model", "stepping", "instruction_flags", "virtualised", "torch_cpu_capability", "onednn",
            "mkl"} <= set(environment["machine"]) or environment["machine"].get("architecture") != "x86_64"
    assert "source_commit" in environment


@pytest.mark.parametrize("recorded, here, expected", [
    ({"a": 1, "m": {"x": 1}}, {"a": 1, "m": {"x": 2}}, [("m.x", 1, 2)]),
    ({"a": 1}, {"a": 1, "m": {"x": 2}}, [("m.x", "not recorded", 2)]),
])
def test_provenance_differences_are_listed_by_dotted_field(recorded, here, expected):
    assert replay.provenance_differences(recorded, here) == expected


def test_the_readme_states_the_replay_only_as_far_as_it_was_verified():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    outcome = json.loads((root / "bench" / "replay_results.json").read_text())
    assert outcome["losses"] and all(row["identical"] for row in outcome["losses"])
    assert outcome["run"] == "results/cifar10-lt-quick/runs/cifar10-exp-r10-seed0" and outcome["threads"] == 1
    text = (root / "README.md").read_text()
    assert "`bench/replay_results.json` holds the replay of the `quick` grid's seed-0 CE" in text
