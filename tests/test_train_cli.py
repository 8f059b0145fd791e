import subprocess
import sys

import pytest
import torch

from cce_demo import train
from cce_demo.run_directory import list_runs


def test_cli_trains_writes_a_run_and_prints_the_table(tmp_path, capsys):
    code = train.main([
        "--dataset", "synthetic", "--imbalance-ratio", "2", "--max-per-class", "30", "--epochs", "1",
        "--batch-size", "64", "--seeds", "0,1", "--device", "cpu", "--output-dir", str(tmp_path), "--run-id", "cli",
        "--threads", str(torch.get_num_threads()),  # the same count: other tests in this process keep theirs
    ])
    assert code == 0
    output = capsys.readouterr().out
    assert "McNemar p vs ce" in output and "cce" in output and "95% CI" in output
    records, problems = list_runs([tmp_path])
    assert [record.run_id for record in records] == ["cli"] and not problems
    assert records[0].config.seeds == (0, 1) and records[0].status == "done"
    environment = records[0].metadata["environment"]  # what a bit-for-bit replay needs (issue 19)
    assert environment["torch_threads"] == torch.get_num_threads() and environment["torchvision"] and environment["cpu"]
    assert "deterministic_algorithms" in environment["deterministic"]
    assert records[0].metadata["data"]["copy"] == "synthetic (generated)"


def test_cli_rejects_invalid_settings_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        train.main(["--epochs", "-3", "--output-dir", str(tmp_path)])
    assert caught.value.code == 2
    assert "epochs" in capsys.readouterr().err


def test_cli_reports_missing_data(tmp_path, capsys):
    code = train.main(["--data-dir", str(tmp_path / "none"), "--no-download", "--output-dir", str(tmp_path / "runs")])
    assert code == 2
    assert "not available" in capsys.readouterr().err
    records, _ = list_runs([tmp_path / "runs"])
    assert records[0].status == "failed"


def test_help_runs_as_a_module():
    completed = subprocess.run([sys.executable, "-m", "cce_demo.train", "--help"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "--imbalance-ratio" in completed.stdout and "--preset" in completed.stdout
