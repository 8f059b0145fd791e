"""Resume: a run stopped between epochs (or killed during one) and continued from its saved training state ends
bit-identical to the same run trained without a break — weights, evaluations, paired comparisons and the event
log (less its timings and the one line that says it resumed). Synthetic data, a few seconds each."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cce_demo.config import TrainConfig
from cce_demo.engine import train_paired
from cce_demo.reproduce import Grid, run_cell
from cce_demo.run_directory import (
    RunCorruptError, RunWriter, checkpoint_file_name, load_models, read_checkpoints, read_run,
)
from cce_demo.status import JobStatus
from cce_demo.training_state import TrainingStateError, from_tensors, to_tensors

ROOT = Path(__file__).resolve().parent.parent


class Killed(Exception):
    """Stands for the process dying right after an epoch's state reached the disk."""


def resume_config() -> TrainConfig:
    # Two seeds, three losses (one with deferred re-weighting that switches on at epoch 3), BatchNorm,
    # augmentation, momentum with Nesterov, warm-up and a decaying schedule: every piece of state a resume needs.
    return TrainConfig(
        dataset="synthetic", imbalance_ratio=4.0, epochs=4, batch_size=32, learning_rate=0.05, warmup_epochs=0.5,
        device="cpu", max_per_class=40, synthetic_test_per_class=10, losses=("ce", "cce", "ldam_drw"),
        seeds=(0, 1), drw_start_fraction=0.5, schedule="cosine", nesterov=True, momentum=0.9,
    )


def train_to_disk(config: TrainConfig, runs_dir: Path, run_id: str, stop_after: tuple[int, int] | None = None) -> Path:
    """Train into a run directory; with `stop_after` = (seed, epoch), die right after that epoch's checkpoint."""
    writer = RunWriter(runs_dir, config, run_id)

    def on_checkpoint(state):
        writer.save_checkpoint(state)
        if stop_after == (state.seed, state.epoch):
            raise Killed

    try:
        result = train_paired(config, writer.record, on_checkpoint=on_checkpoint)
    except Killed:
        writer.fail("killed")
        return writer.run_dir
    writer.finish(result)
    return writer.run_dir


def resume_on_disk(run_dir: Path) -> None:
    writer, states = RunWriter.reopen(run_dir)
    config = TrainConfig.from_dict(writer.metadata["config"])
    result = train_paired(config, writer.record, on_checkpoint=writer.save_checkpoint, resume=states)
    writer.finish(result)


def comparable_events(run_dir: Path) -> list[dict]:
    """The event log less what a break changes: wall-clock timings, and the status lines (one says "Resumed")."""
    events = []
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["kind"] == "status":
            continue
        event.pop("images_per_second", None)
        events.append(event)
    return events


def assert_same_weights(first: Path, second: Path) -> None:
    names = sorted(path.name for path in first.glob("model-*.safetensors"))
    assert names and names == sorted(path.name for path in second.glob("model-*.safetensors"))
    for name in names:
        expected, actual = load_file(first / name), load_file(second / name)
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), f"{name}: {key} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    return train_to_disk(resume_config(), tmp_path_factory.mktemp("whole"), "whole")


@pytest.mark.parametrize("stop_after", [(0, 1), (0, 3), (0, 4), (1, 2)],
                         ids=["first-epoch", "after-drw-start", "first-seed-finished", "second-seed"])
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, uninterrupted, stop_after):
    run_dir = train_to_disk(resume_config(), tmp_path, "broken", stop_after)
    record = read_run(run_dir)
    assert record.status == JobStatus.FAILED and record.resumable and record.checkpoint_epoch == stop_after
    resume_on_disk(run_dir)

    resumed, whole = read_run(run_dir), read_run(uninterrupted)
    assert resumed.status == JobStatus.DONE
    assert_same_weights(uninterrupted, run_dir)
    assert resumed.metadata["final"] == whole.metadata["final"]  # evaluations and paired comparisons
    assert comparable_events(run_dir) == comparable_events(uninterrupted)
    # The break is recorded, and a finished run keeps no training state.
    assert [entry["after_epoch"] for entry in resumed.metadata["resumes"]] == [stop_after[1]]
    assert not list(run_dir.glob("checkpoint-*")) and "checkpoint" not in resumed.metadata


def test_a_resumed_run_says_where_it_went_on(tmp_path):
    run_dir = train_to_disk(resume_config(), tmp_path, "broken", (1, 2))
    resume_on_disk(run_dir)
    statuses = [json.loads(line)["message"] for line in (run_dir / "events.jsonl").read_text().splitlines()
                if json.loads(line)["kind"] == "status"]
    assert "Resumed seed 1 after epoch 2 of 4." in statuses


def test_training_state_survives_the_file_format(tmp_path):
    run_dir = train_to_disk(resume_config(), tmp_path, "broken", (0, 2))
    states, events_bytes = read_checkpoints(read_run(run_dir))
    assert list(states) == [0] and states[0].epoch == 2 and events_bytes > 0
    tensors, metadata = to_tensors(states[0])
    again = from_tensors(tensors, metadata)
    assert again.evaluations == states[0].evaluations and again.losses == ("ce", "cce", "ldam_drw")
    for loss in again.losses:
        for key, value in states[0].model_states[loss].items():
            assert torch.equal(again.model_states[loss][key], value)
    # After two epochs every parameter that gets a gradient has a momentum buffer (LDAM's cosine head leaves
    # the linear bias unused, and SGD gives it none: saved as absent, restored as absent).
    assert all(buffer is not None for loss in ("ce", "cce") for buffer in again.momentum[loss])
    assert sum(buffer is None for buffer in again.momentum["ldam_drw"]) == sum(
        buffer is None for buffer in states[0].momentum["ldam_drw"])
    with pytest.raises(TrainingStateError, match="format"):
        from_tensors(tensors, {**metadata, "state_format": "0"})
    with pytest.raises(TrainingStateError, match="malformed"):
        from_tensors({key: value for key, value in tensors.items() if key != "rng.data_generator"}, metadata)


def test_an_interrupted_run_classifies_with_its_last_complete_epoch(tmp_path):
    run_dir = train_to_disk(resume_config(), tmp_path, "broken", (0, 2))
    record = read_run(run_dir)
    assert record.has_weights and not record.metadata["weights"]
    models = load_models(record)
    states, _ = read_checkpoints(record)
    assert set(models) == {"ce", "cce", "ldam_drw"}
    for loss, model in models.items():
        assert not model.training
        for key, value in model.state_dict().items():
            assert torch.equal(value, states[0].model_states[loss][key])


def test_what_cannot_be_resumed_is_refused_with_the_reason(tmp_path, uninterrupted):
    with pytest.raises(RunCorruptError, match="a done run cannot be resumed"):
        RunWriter.reopen(uninterrupted)
    # Stopped before its first epoch ended: nothing to go on from.
    writer = RunWriter(tmp_path, resume_config(), "early")
    writer.fail("killed in epoch 1")
    assert not read_run(writer.run_dir).resumable
    with pytest.raises(RunCorruptError, match="no saved training state"):
        RunWriter.reopen(writer.run_dir)
    # A state of another seed in the wrong file is named, not loaded.
    broken = train_to_disk(resume_config(), tmp_path, "broken", (1, 1))
    (broken / checkpoint_file_name(0)).unlink()
    (broken / checkpoint_file_name(1)).rename(broken / checkpoint_file_name(0))
    with pytest.raises(RunCorruptError, match="holds seed 1"):
        RunWriter.reopen(broken)


def test_resume_refuses_states_the_run_does_not_train(tmp_path):
    run_dir = train_to_disk(resume_config(), tmp_path, "broken", (0, 2))
    states, _ = read_checkpoints(read_run(run_dir))
    with pytest.raises(ValueError, match="seeds \\[0\\], which this run does not train"):
        train_paired(resume_config().replace(seeds=(5,)), lambda event: None, resume=states)
    with pytest.raises(ValueError, match="saved after epoch 2; this run has 1"):
        train_paired(resume_config().replace(epochs=1), lambda event: None, resume=states)


def test_a_diverged_run_keeps_no_state_to_resume(tmp_path):
    config = resume_config().replace(learning_rate=1e6, warmup_epochs=0.0, seeds=(0,))
    run_dir = train_to_disk(config, tmp_path, "diverged")
    record = read_run(run_dir)
    assert record.status == JobStatus.DIVERGED and not record.resumable
    assert not list(run_dir.glob("checkpoint-*"))


# ---------------------------------------------------------------- the CLI, killed for real


def cli(*arguments: str, **kwargs) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.Popen([sys.executable, "-m", "cce_demo.train", *arguments], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


CLI_SETTINGS = ("--dataset", "synthetic", "--imbalance-ratio", "4", "--epochs", "8", "--batch-size", "16",
                "--max-per-class", "60", "--losses", "ce,cce",
                "--device", "cpu", "--threads", "1")


def test_the_cli_resumes_a_killed_run_bit_identically(tmp_path):
    whole = cli(*CLI_SETTINGS, "--output-dir", str(tmp_path), "--run-id", "whole")
    assert whole.wait(timeout=300) == 0, whole.stdout.read()
    process = cli(*CLI_SETTINGS, "--output-dir", str(tmp_path), "--run-id", "killed", start_new_session=True)
    run_json = tmp_path / "killed" / "run.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill -9 once the second epoch's state is on disk, wherever it is then
        try:
            saved = json.loads(run_json.read_text()).get("checkpoint") or {}
        except (OSError, ValueError):
            saved = {}
        if saved.get("epoch", 0) >= 2 or process.poll() is not None:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed: " + process.stdout.read()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    record = read_run(tmp_path / "killed")
    assert record.status == JobStatus.INTERRUPTED and record.resumable
    assert record.resume_command == f"python -m cce_demo.train --resume {tmp_path.name}/killed"

    refused = cli("--resume", str(tmp_path / "killed"), "--epochs", "9")
    output = refused.communicate(timeout=120)[0]
    assert refused.returncode == 2 and "keeps its own settings; drop --epochs" in output

    resumed = cli("--resume", str(tmp_path / "killed"), "--no-download")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert read_run(tmp_path / "killed").status == JobStatus.DONE
    assert_same_weights(tmp_path / "whole", tmp_path / "killed")
    assert comparable_events(tmp_path / "killed") == comparable_events(tmp_path / "whole")


# ---------------------------------------------------------------- a grid cell, cut off and resumed


def test_a_grid_cell_resumes_and_counts_both_sessions(tmp_path):
    grid = Grid(name="resume", preset="quick", datasets=("synthetic",), imbalance_ratios=(4.0,), losses=("ce", "cce"),
                seeds=(3,), overrides={"epochs": 3, "max_per_class": 30, "synthetic_test_per_class": 10,
                                       "batch_size": 32, "device": "cpu"}, subset_draw="per_seed")
    (cell,) = grid.cells()
    assert cell.config.subset_seed == 3  # each seed its own long-tailed draw
    whole = run_cell(cell, tmp_path / "whole", None, False)

    steps_per_epoch = None

    def cut_off(step, total):
        nonlocal steps_per_epoch
        if total is not None:
            steps_per_epoch = total // 3
        elif step == steps_per_epoch + 1:  # the first step of epoch 2: epoch 1's state is saved
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cell(cell, tmp_path / "cut", None, False, cut_off)
    assert read_run(tmp_path / "cut" / cell.run_id).checkpoint_epoch == (3, 1)
    again = run_cell(cell, tmp_path / "cut", None, False)
    assert again["evaluations"] == whole["evaluations"]
    assert_same_weights(tmp_path / "whole" / cell.run_id, tmp_path / "cut" / cell.run_id)
    cell_record = json.loads((tmp_path / "cut" / cell.run_id / "cell.json").read_text())
    assert cell_record["sessions"] == 2 and cell_record["wall_seconds"] > 0


def test_a_per_seed_grid_cannot_also_fix_the_subset():
    with pytest.raises(ValueError, match="drop the subset_seed override"):
        Grid(name="both", overrides={"subset_seed": 1}, subset_draw="per_seed")
    with pytest.raises(ValueError, match="subset_draw: one of fixed, per_seed"):
        Grid(name="neither", subset_draw="sometimes")


def test_the_app_says_an_interrupted_run_can_go_on_and_how(tmp_path):
    from cce_demo.run_state import snapshot_from_run_dir
    from cce_demo.ui.api import job_summary
    from cce_demo.ui.compare.views import status_html

    run_dir = train_to_disk(resume_config(), tmp_path / "runs", "broken", (1, 2))
    snapshot = snapshot_from_run_dir(run_dir)
    assert snapshot.resumable_from == (1, 2)
    html = status_html(snapshot)
    assert "seed 1, epoch 2 of 4" in html and "python -m cce_demo.train --resume runs/broken" in html
    assert str(tmp_path) not in html  # the app's own folder, never the server's absolute path
    summary = job_summary(snapshot)
    assert summary["resumable_from"] == [1, 2] and summary["resume_command"].endswith("--resume runs/broken")
    resume_on_disk(run_dir)
    assert snapshot_from_run_dir(run_dir).resumable_from is None


def test_the_final_predictions_survive_a_resume_and_match_mcnemar(tmp_path, uninterrupted):
    """A seed that finished before the break wrote its per-image answers into its last state; the resumed run
    writes the same predictions files as the unbroken one, and their discordant counts are McNemar's."""
    from cce_demo.run_directory import read_predictions
    from cce_demo.per_image_predictions import discordant

    run_dir = train_to_disk(resume_config(), tmp_path, "broken", (1, 1))  # seed 0 finished, seed 1 in progress
    resume_on_disk(run_dir)
    resumed, whole = read_run(run_dir), read_run(uninterrupted)
    for seed in (0, 1):
        labels, answers = read_predictions(resumed, seed)
        whole_labels, whole_answers = read_predictions(whole, seed)
        assert torch.equal(labels, whole_labels)
        for loss in ("ce", "cce", "ldam_drw"):
            assert torch.equal(answers[loss].predicted, whole_answers[loss].predicted)
            assert torch.equal(answers[loss].confidence, whole_answers[loss].confidence)
        for comparison in resumed.metadata["final"]["comparisons"]:
            if comparison["seed"] != seed:
                continue
            pair = discordant(labels, answers[comparison["baseline"]], answers[comparison["other"]])
            assert (len(pair.only_a), len(pair.only_b)) == (comparison["mcnemar"]["only_a_correct"],
                                                            comparison["mcnemar"]["only_b_correct"])
