import json
import os

import pytest
import torch

from cce_demo import run_directory
from cce_demo.run_directory import RunCorruptError, RunWriter, list_runs, load_models, read_events, read_run
from cce_demo.data import synthetic_dataset, to_model_input
from cce_demo.engine import train_paired


@pytest.fixture
def finished_run(tmp_path, tiny_config):
    writer = RunWriter(tmp_path, tiny_config, "run-a")
    result = train_paired(tiny_config, writer.record)
    writer.finish(result)
    return tmp_path, writer, result


def test_round_trip_rebuilds_the_models_from_the_directory(finished_run, tiny_config):
    root, writer, result = finished_run
    record = read_run(writer.run_dir)
    assert record.status == "done" and record.config == tiny_config
    assert record.class_counts == result.class_counts and len(record.class_names) == 10
    assert record.metadata["versions"]["torch"] == torch.__version__
    assert record.final["evaluations"]["0"]["cce"]["balanced_accuracy"] == result.evaluations[0]["cce"].balanced_accuracy
    models = load_models(record)
    images = to_model_input(synthetic_dataset(test_per_class=10).test.images[:8], (0.5,) * 3, (0.25,) * 3)
    for loss in ("ce", "cce"):
        original = result.models[0][loss].eval()
        assert torch.allclose(models[loss](images), original(images), atol=1e-6)
    kinds = [event["kind"] for event in read_events(writer.run_dir)]
    assert kinds[0] == "status" and kinds[-1] == "finished" and "step" in kinds and "epoch" in kinds


def test_no_pickle_is_written(finished_run):
    _, writer, _ = finished_run
    for path in writer.run_dir.iterdir():
        assert path.suffix in {".json", ".jsonl", ".safetensors"}, path


def test_corrupt_runs_are_reported_without_hiding_the_others(finished_run):
    root, writer, _ = finished_run
    (root / "garbled").mkdir()
    (root / "garbled" / "run.json").write_text("{not json")
    (root / "empty").mkdir()
    records, problems = list_runs([root, root / "missing-root"])
    assert [record.run_id for record in records] == ["run-a"]
    assert len(problems) == 2 and any("garbled" in problem for problem in problems)


def test_truncated_weights_give_a_clear_error(finished_run):
    _, writer, _ = finished_run
    path = writer.run_dir / run_directory.weights_file_name("cce", 0)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RunCorruptError, match="cannot load"):
        load_models(read_run(writer.run_dir))


def test_weights_of_another_architecture_are_rejected(finished_run):
    _, writer, _ = finished_run
    metadata = json.loads((writer.run_dir / "run.json").read_text())
    metadata["config"]["model"] = "resnet20"
    (writer.run_dir / "run.json").write_text(json.dumps(metadata))
    with pytest.raises(RunCorruptError, match="cannot load"):
        load_models(read_run(writer.run_dir))


def test_torn_event_line_is_skipped(finished_run):
    _, writer, _ = finished_run
    count = len(list(read_events(writer.run_dir)))
    with open(writer.run_dir / "events.jsonl", "a") as file:
        file.write('{"kind": "step", "los')
    assert len(list(read_events(writer.run_dir))) == count


def test_a_running_run_of_a_dead_process_reads_as_interrupted(tmp_path, tiny_config):
    writer = RunWriter(tmp_path, tiny_config, "live")
    assert read_run(writer.run_dir).status == "running"  # this process owns it
    metadata = json.loads((writer.run_dir / "run.json").read_text())
    metadata["owner"] = {"token": "someone-else", "pid": 2**22 + 12345, "start_time": "1"}
    (writer.run_dir / "run.json").write_text(json.dumps(metadata))
    assert read_run(writer.run_dir).status == "interrupted"


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    target.write_text('{"old": true}')

    def broken_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        run_directory.write_json_atomic(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.json"]


def test_failed_weights_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from cce_demo.models import build_model

    def broken_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_directory, "save_file", broken_save)
    with pytest.raises(OSError):
        run_directory.save_weights_atomic(tmp_path / "model.safetensors", build_model("resnet8", 10), {})
    assert list(tmp_path.iterdir()) == []


def test_run_ids_are_restricted(tmp_path, tiny_config):
    with pytest.raises(ValueError, match="run_id"):
        RunWriter(tmp_path, tiny_config, "../escape")


def test_an_ldam_model_loads_with_its_cosine_classifier(tmp_path, tiny_config):
    """The safetensors keys are the plain model's; load_models rebuilds the head the loss trained with."""
    from cce_demo.heads import ScaledCosineLinear
    from cce_demo.models import build_model

    config = tiny_config.replace(losses=("ce", "ldam_drw"), epochs=1)
    writer = RunWriter(tmp_path, config, "run-ldam")
    result = train_paired(config, writer.record)
    writer.finish(result)
    models = load_models(read_run(writer.run_dir))
    assert isinstance(models["ldam_drw"].linear, ScaledCosineLinear)
    assert set(models["ldam_drw"].state_dict()) == set(build_model(config.model, 10).state_dict())
    images = to_model_input(synthetic_dataset(test_per_class=10).test.images[:8], (0.5,) * 3, (0.25,) * 3)
    assert torch.allclose(models["ldam_drw"](images), result.models[0]["ldam_drw"].eval()(images), atol=1e-5)


def test_epochs_are_counted_from_parsed_events_whatever_the_key_order(tmp_path):
    """The Runs table's epoch count: an imported log need not write "kind" first (it was matched as text)."""
    import json as json_module

    from cce_demo.run_directory import epochs_evaluated

    run = tmp_path / "run"
    run.mkdir()
    lines = [{"kind": "epoch", "seed": 0, "epoch": 1}, {"seed": 0, "epoch": 2, "kind": "epoch"},
             {"kind": "step", "seed": 0}, {"kind": "status", "message": '{"kind": "epoch"'}]
    (run / "events.jsonl").write_text("".join(json_module.dumps(line) + "\n" for line in lines) + "{torn")
    assert epochs_evaluated(run) == 2
    with open(run / "events.jsonl", "a") as file:  # the count follows the log as it grows
        file.write("\n" + json_module.dumps({"kind": "epoch", "seed": 0, "epoch": 3}) + "\n")
    assert epochs_evaluated(run) == 3
    assert epochs_evaluated(tmp_path / "missing") == 0
