"""The app through gradio_client, as an API user sees it: start, stream, cancel, classify, bad input."""
import json
import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from bad_images import ODD, REFUSED, write_bad_images
from conftest import LIVE_APP_MAX_QUEUE, ROOT, synthetic_request

SHIPPED_RUN = "cifar10-lt100-standard-ce-cce"


def test_disagreement_lists_match_mcnemar_for_the_shipped_run(client):
    """Issue 28: the images only one model got right, from the run's recorded predictions; counts are McNemar's."""
    import json as json_module

    shipped = json_module.loads((ROOT / "checkpoints" / SHIPPED_RUN / "run.json").read_text())
    mcnemar = shipped["final"]["comparisons"][0]["mcnemar"]
    lists = client.predict(SHIPPED_RUN, "ce", "cce", api_name="/disagreement")
    assert (lists["only_a_correct"], lists["only_b_correct"]) == (mcnemar["only_a_correct"], mcnemar["only_b_correct"])
    assert len(lists["only_a"]) == mcnemar["only_a_correct"] and len(lists["only_b"]) == mcnemar["only_b_correct"]
    first = lists["only_a"][0]
    assert first["ce"]["predicted"] == first["class"] and first["cce"]["predicted"] != first["class"]
    counts = shipped["class_counts"]
    ranks = [sorted(range(10), key=lambda k: -counts[k]).index(shipped["class_names"].index(row["class"])) for row in lists["only_a"]]
    assert ranks == sorted(ranks)  # head -> tail
    truck = client.predict(SHIPPED_RUN, "ce", "cce", 0, 9, api_name="/disagreement")
    assert truck["only_b_correct"] == shipped["final"]["comparisons"][0]["per_class_mcnemar"][9]["only_b_correct"]
    with pytest.raises(Exception, match="is not a loss of this run"):
        client.predict(SHIPPED_RUN, "ce", "focal", api_name="/disagreement")


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app["url"], verbose=False)


def wait_for(manager, job_id, predicate, timeout=120.0):
    deadline, version = time.monotonic() + timeout, -1
    while True:
        snapshot = manager.wait_for_change(job_id, version, timeout=max(0.0, deadline - time.monotonic()))
        if predicate(snapshot):
            return snapshot
        assert time.monotonic() < deadline, f"timed out; status {snapshot.status}"
        version = snapshot.version


def test_named_endpoints_are_listed(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/start_comparison", "/job_status", "/cancel_job", "/list_runs", "/classify"} <= set(endpoints)


def test_start_stream_and_finish(client, live_app):
    manager = live_app["manager"]
    started = client.predict(synthetic_request(), api_name="/start_comparison")
    job_id = started["job_id"]
    assert started["status"] in ("queued", "running")
    seen_versions = []
    version = -1
    while True:  # stream: each status call after the job changed shows newer state
        snapshot = manager.wait_for_change(job_id, version, timeout=60)
        status = client.predict(job_id, api_name="/job_status")
        seen_versions.append(status["version"])
        version = snapshot.version
        if status["status"] in ("done", "failed", "cancelled"):
            break
    assert status["status"] == "done", status["error"]
    assert seen_versions == sorted(seen_versions) and len(set(seen_versions)) > 2
    assert status["progress"] == 1.0 and set(status["latest"]) == {"ce", "cce"}
    assert status["comparisons"][0]["mcnemar"]["p_value"] <= 1.0
    runs = client.predict(api_name="/list_runs")
    assert job_id in {row["run"] for row in runs} and SHIPPED_RUN in {row["run"] for row in runs}


def test_cancel_through_the_api(client, live_app):
    manager = live_app["manager"]
    job_id = client.predict(synthetic_request(epochs=300), api_name="/start_comparison")["job_id"]
    wait_for(manager, job_id, lambda s: s.status == "running" and s.steps)
    cancelled = client.predict(job_id, api_name="/cancel_job")
    assert cancelled["status"] in ("running", "cancelled")
    assert manager.wait(job_id, timeout=30).status == "cancelled"
    assert client.predict(job_id, api_name="/job_status")["status"] == "cancelled"


def test_classify_with_the_shipped_run(client):
    result = client.predict(handle_file(str(ROOT / "examples" / "example-04.png")), SHIPPED_RUN, api_name="/classify")
    assert result["run_id"] == SHIPPED_RUN and set(result["predictions"]) == {"ce", "cce"}
    for top in result["predictions"].values():
        assert len(top) == 5 and top[0]["probability"] >= top[-1]["probability"]
        assert all(entry["class"] in {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"} for entry in top)


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory):
    return write_bad_images(tmp_path_factory.mktemp("bad-client"))


@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_uploads_get_a_clear_error(client, bad_images, name):
    with pytest.raises(AppError, match=REFUSED[name]):
        client.predict(handle_file(str(bad_images[name])), SHIPPED_RUN, api_name="/classify")


@pytest.mark.parametrize("name", list(ODD))
def test_odd_uploads_are_classified_with_a_note(client, bad_images, name):
    result = client.predict(handle_file(str(bad_images[name])), SHIPPED_RUN, api_name="/classify")
    assert any(ODD[name] in note for note in result["notes"])


@pytest.mark.parametrize(
    "override, message",
    [
        ({"epochs": -1}, "epochs"), ({"imbalance_ratio": 0.5}, "imbalance_ratio"), ({"losses": ["ce", "hinge"]}, "hinge"),
        ({"model": "vgg"}, "model"), ({"dataset": "imagenet"}, "dataset"), ({"batch_size": 10**7}, "batch_size"),
        ({"preset": "huge"}, "preset"), ({"epochz": 3}, "unknown config field"),
    ],
)
def test_invalid_configs_get_a_clear_error(client, override, message):
    with pytest.raises(AppError, match=message):
        client.predict(synthetic_request(**override), api_name="/start_comparison")


def test_unknown_job_and_run(client):
    with pytest.raises(AppError, match="no job"):
        client.predict("no-such-job", api_name="/job_status")
    with pytest.raises(AppError, match="no run"):
        client.predict(handle_file(str(ROOT / "examples" / "example-04.png")), "no-such-run", api_name="/classify")


def test_full_queue_is_refused_clearly_and_the_server_stays_up(client, live_app):
    manager = live_app["manager"]
    running = client.predict(synthetic_request(epochs=300), api_name="/start_comparison")["job_id"]
    wait_for(manager, running, lambda s: s.status == "running")
    queued = [client.predict(synthetic_request(epochs=300), api_name="/start_comparison")["job_id"] for _ in range(LIVE_APP_MAX_QUEUE)]
    with pytest.raises(AppError, match="queue is full"):
        client.predict(synthetic_request(), api_name="/start_comparison")
    for job_id in [*queued, running]:
        client.predict(job_id, api_name="/cancel_job")
    assert manager.wait(running, timeout=30).status == "cancelled"
    assert client.predict(api_name="/list_runs")  # still answering


def test_list_runs_marks_partial_runs_and_differences(client):
    runs = {row["run"]: row for row in client.predict(api_name="/list_runs")}
    shipped = runs[SHIPPED_RUN]
    assert shipped["partial"] is False and shipped["status"] == "done"
    comparison = json.loads((ROOT / "checkpoints" / shipped["run"] / "run.json").read_text())["final"]["comparisons"][0]
    expected = 100 * comparison["balanced_accuracy_difference"]  # the shipped run's own number, in points
    assert shipped["balanced_accuracy_difference_points"]["cce"] == pytest.approx(expected, abs=0.01)
    assert "cce" in shipped["tail_recall_difference_points"]
    cancelled = [row for row in runs.values() if row["status"] == "cancelled"]
    assert cancelled and all(row["partial"] and row["epochs_done"] is not None for row in cancelled)


def test_expected_errors_log_one_line_not_a_traceback(client, bad_images, capfd, caplog):
    capfd.readouterr()
    caplog.set_level("WARNING", logger="cce_demo.ui")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(bad_images["text.png"])), SHIPPED_RUN, api_name="/classify")
    with pytest.raises(AppError, match="epochs"):
        client.predict(synthetic_request(epochs=-1), api_name="/start_comparison")
    assert "Traceback" not in capfd.readouterr().err  # Gradio printed no traceback
    lines = [record.getMessage() for record in caplog.records if record.name == "cce_demo.ui"]
    assert len(lines) == 2 and not any(record.exc_info for record in caplog.records)
    assert lines[0].startswith("refused (api classify)") and lines[1].startswith("refused (api start)")
