"""UI handlers and view functions, without a server."""
import dataclasses

import pytest

from cce_demo.config import PRESETS, TrainConfig
from cce_demo.jobs import JobManager
from cce_demo.ui import (
    RunCatalog, config_from_form, config_from_request, confusion_html, groups_table, loss_curve_frame,
    recall_frame, runs_table, verdict_markdown,
)
from cce_demo.data import planned_class_counts


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished paired run with two seeds, as the manager sees it."""
    manager = JobManager(tmp_path_factory.mktemp("ui-runs"), allow_download=False, worker_niceness=0)
    config = TrainConfig(dataset="synthetic", imbalance_ratio=2.0, epochs=2, batch_size=64, device="cpu",
                         max_per_class=40, synthetic_test_per_class=10, seeds=(0, 1))
    job_id = manager.submit(config)
    snapshot = manager.wait(job_id, timeout=120)
    manager.shutdown()
    assert snapshot.status == "done"
    return manager, snapshot


def form_values(**changes):
    values = dict(preset_name="quick", dataset="synthetic", profile="exp", imbalance_ratio=10, losses=["CE", "CCE (paper form)"],
                  gamma=-1, model="resnet8", epochs=3, batch_size=64, learning_rate=0.1, seeds="0, 1", device="cpu")
    values.update(changes)
    return values


def test_form_to_config():
    config = config_from_form(**form_values())
    assert config.losses == ("ce", "cce") and config.seeds == (0, 1) and config.epochs == 3
    for change, field in [({"epochs": 2.5}, "epochs"), ({"seeds": "a,b"}, "seeds"), ({"losses": []}, "losses"),
                          ({"imbalance_ratio": 0.2}, "imbalance_ratio"), ({"batch_size": None}, "batch_size")]:
        with pytest.raises(ValueError, match=field):
            config_from_form(**form_values(**change))


def test_api_request_to_config():
    config = config_from_request({"preset": "standard", "epochs": 2, "seed": 5})
    assert config.imbalance_ratio == PRESETS["standard"].imbalance_ratio and config.epochs == 2 and config.seeds == (5,)
    with pytest.raises(ValueError, match="unknown config field"):
        config_from_request({"epochz": 2})
    with pytest.raises(ValueError, match="JSON object"):
        config_from_request(["ce"])


def test_planned_counts_without_data():
    assert planned_class_counts(PRESETS["standard"]) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    with pytest.raises(ValueError, match="imbalance_ratio"):
        planned_class_counts(PRESETS["quick"].replace(imbalance_ratio=6000))


def test_views_of_a_finished_run(finished):
    _, snapshot = finished
    curve = loss_curve_frame(snapshot)
    assert set(curve["series"]) == {"CE", "CCE (paper form)", "CCE (paper form) · CE part"}
    recall = recall_frame(snapshot)
    assert len(recall) == 20 and recall["recall"].between(0, 1).all()
    assert list(recall["series"][:2]) == ["CE", "CCE (paper form)"]  # side by side per class
    table = groups_table(snapshot)
    assert list(table["loss"]) == ["CE", "CCE (paper form)"] and "tail %" in table.columns
    html = confusion_html(snapshot)
    assert html.count("<table") == 2 and "0 class 0" in html


def test_verdict_with_several_seeds_reports_the_interval(finished):
    _, snapshot = finished
    text = verdict_markdown(snapshot)
    assert "Over 2 seeds" in text and "95 % interval" in text


def test_verdict_on_one_seed_never_names_a_better_loss(finished):
    _, snapshot = finished
    one = dataclasses.replace(snapshot, comparisons=snapshot.comparisons[:1], summaries={})
    comparison = dict(one.comparisons[0])
    for p_value, difference in [(1e-9, -0.05), (1e-9, 0.05), (0.5, 0.0)]:
        comparison.update(mcnemar={"only_a_correct": 10, "only_b_correct": 90, "p_value": p_value},
                          balanced_accuracy_difference=difference)
        text = verdict_markdown(dataclasses.replace(one, comparisons=(comparison,)))
        assert "better" not in text.replace("whether the *loss* is better", "")
        assert "helped" not in text and "hurt" not in text
        assert "several seeds" in text
        assert ("differ**" in text) == (p_value < 0.05)


def test_runs_table_marks_shipped_runs(finished, tmp_path):
    manager, snapshot = finished
    catalog = RunCatalog(tmp_path / "mine", (manager.runs_dir,))
    records, problems = catalog.records()
    frame = runs_table(catalog, records)
    assert list(frame["run"]) == [snapshot.job_id] and list(frame["source"]) == ["shipped"] and not problems
    assert catalog.default_run().run_id == snapshot.job_id


@pytest.fixture(scope="module")
def handlers(finished, tmp_path_factory):
    """The app's registered handlers by API name, called directly (no server)."""
    import gradio as gr  # noqa: F401 - the module under test needs it

    from cce_demo.predict import ModelCache
    from cce_demo.ui import AppContext, build_app

    manager, snapshot = finished
    live = JobManager(tmp_path_factory.mktemp("handler-runs"), allow_download=False, worker_niceness=0)
    context = AppContext(live, RunCatalog(live.runs_dir, (manager.runs_dir,)), ModelCache())
    demo = build_app(context)
    functions = {block.api_name: block.fn for block in demo.fns.values() if block.api_name}
    yield functions, snapshot.job_id, live
    live.shutdown()


def test_classify_handler_refuses_bad_images_clearly(handlers, tmp_path):
    import gradio as gr

    from bad_images import REFUSED, write_bad_images

    functions, run_id, _ = handlers
    paths = write_bad_images(tmp_path)
    for name, message in REFUSED.items():
        with pytest.raises(gr.Error, match=message):
            functions["classify"](str(paths[name]), run_id)
    result = functions["classify"](str(paths["rgba.png"]), run_id)
    assert set(result["predictions"]) == {"ce", "cce"} and result["notes"]


def test_start_handler_refuses_invalid_configs_clearly(handlers):
    import gradio as gr

    functions, _, manager = handlers
    for request, message in [({"epochs": -1}, "epochs"), ({"losses": ["ce", "nope"]}, "nope"),
                             ({"imbalance_ratio": 0.1}, "imbalance_ratio"), ({"batch_size": 10**6}, "batch_size"),
                             ({"preset": ["quick"]}, "preset"), ({"seeds": [None]}, "seeds"), ({"losses": 5}, "losses"),
                             ({"seed": "x"}, "seeds"), ({"imbalance_ratio": 500}, "imbalance_ratio")]:
        with pytest.raises(gr.Error, match=message):
            functions["start_comparison"]({"preset": "quick", "dataset": "synthetic", **request})
    assert manager.list_jobs() == []  # nothing was queued
    with pytest.raises(gr.Error, match="no job"):
        functions["job_status"]("missing-job")


def test_failed_job_shows_its_reason(handlers):
    functions, _, manager = handlers
    job = functions["start_comparison"]({"preset": "quick", "dataset": "cifar10", "epochs": 1})
    snapshot = manager.wait(job["job_id"], timeout=60)
    from cce_demo.ui import status_markdown

    assert snapshot.status == "failed"
    text = status_markdown(snapshot)
    assert "**Reason:**" in text and "not available" in text and "CCE_DATA_DIR" in text


def test_chart_frames_keep_numeric_axes_when_empty(finished):
    """Before the first step the frames are empty; their axes must still be numbers, not categories."""
    import dataclasses as dc

    _, snapshot = finished
    empty = dc.replace(snapshot, steps=(), epochs=(), latest={})
    for frame, column in [(loss_curve_frame(empty), "training loss"), (recall_frame(empty), "recall")]:
        assert len(frame) == 0 and frame[column].dtype.kind == "f"
