"""Safe to leave public (issue 12), through gradio_client against a live app with public limits: the estimate
in /start_comparison's answer, a job over the time limit refused before it takes a queue slot, one job per
visitor (visitors told apart by their address), and a clear message for every wrong-typed API input."""
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import ROOT, running_app, synthetic_request

SHIPPED_RUN = "cifar10-lt100-standard-ce-cce"
GENERIC = "has not enabled verbose error reporting"
# A synthetic job estimated well under the 1-minute limit that still runs long enough to be active meanwhile.
LONG_BUT_ALLOWED = synthetic_request(epochs=60)


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("public-runs"), CCE_MAX_JOB_MINUTES=1, CCE_MAX_JOBS_PER_CLIENT=1,
                     CCE_MAX_QUEUE=4) as app:
        yield app


@pytest.fixture(scope="module")
def client(public_app):
    return Client(public_app["url"], verbose=False)


@pytest.fixture(scope="module")
def other_client(public_app):
    """Another visitor: the same machine, seen through a proxy on it that names a different address. uvicorn
    takes X-Forwarded-For from connections of FORWARDED_ALLOW_IPS (default 127.0.0.1), as behind a proxy."""
    return Client(public_app["url"], verbose=False, headers={"X-Forwarded-For": "203.0.113.7"})


def cancel_all(manager):
    for job in manager.active_jobs():
        manager.cancel(job.job_id)
    for job in manager.list_jobs():
        manager.wait(job.job_id, timeout=60)


def test_start_answers_with_the_estimate(client, public_app):
    started = client.predict(synthetic_request(), api_name="/start_comparison")
    assert started["estimate_seconds"] > 0 and started["estimate"].startswith("about ")
    public_app["manager"].wait(started["job_id"], timeout=120)


def test_job_over_the_time_limit_is_refused_without_a_queue_slot(client, public_app):
    manager = public_app["manager"]
    before = len(manager.list_jobs())
    with pytest.raises(AppError, match=r"over the limit of 1 min per job") as refused:
        client.predict({"preset": "quick", "dataset": "cifar10"}, api_name="/start_comparison")
    assert "python -m cce_demo" in str(refused.value)
    assert len(manager.list_jobs()) == before and manager.active_jobs() == []


def test_one_job_per_visitor_by_address(client, other_client, public_app):
    manager = public_app["manager"]
    first = client.predict(LONG_BUT_ALLOWED, api_name="/start_comparison")
    try:
        with pytest.raises(AppError, match="You already have 1 job queued or running"):
            client.predict(LONG_BUT_ALLOWED, api_name="/start_comparison")
        second = other_client.predict(LONG_BUT_ALLOWED, api_name="/start_comparison")
        assert manager.snapshot(first["job_id"]).client_id == "address:127.0.0.1"
        assert manager.snapshot(second["job_id"]).client_id == "address:203.0.113.7"
        assert len(manager.active_jobs()) == 2
    finally:
        cancel_all(manager)


def test_refusals_log_one_line_and_no_traceback(client, capfd):
    capfd.readouterr()
    with pytest.raises(AppError, match="over the limit"):
        client.predict({"preset": "quick", "dataset": "cifar10"}, api_name="/start_comparison")
    with pytest.raises(AppError, match="job_id"):
        client.predict({"a": 1}, api_name="/job_status")
    assert "Traceback" not in capfd.readouterr().err


HUGE = "x" * 10_001
WRONG_VALUES = {"object": {"a": 1}, "list": [1, 2], "null": None, "number": 42, "huge string": HUGE}
# Endpoint -> (the arguments, with "?" where the wrong value goes; the parameter's name; words expected).
ENDPOINTS = {
    "/start_comparison": (["?"], "config", "JSON object"),
    "/job_status": (["?"], "job_id", "job id"),
    "/cancel_job": (["?"], "job_id", "job id"),
    "/classify (file)": (["?", SHIPPED_RUN], "file", "handle_file"),
    "/classify (run_id)": (["EXAMPLE", "?"], "run_id", "run id"),
    "/export_run": (["?"], "run_id", "run id"),
    "/import_run": (["?"], "file", "handle_file"),
}


@pytest.mark.parametrize("wrong", list(WRONG_VALUES))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_endpoint_names_the_wrong_parameter(client, endpoint, wrong):
    arguments, parameter, expected = ENDPOINTS[endpoint]
    if endpoint == "/start_comparison" and wrong == "object":
        pytest.skip("an object is a config; wrong fields are covered by test_app_client")
    values = [WRONG_VALUES[wrong] if value == "?" else value for value in arguments]
    values = [handle_file(str(ROOT / "examples" / "example-04.png")) if value == "EXAMPLE" else value for value in values]
    with pytest.raises(AppError) as refused:
        client.predict(*values, api_name=endpoint.split(" ")[0])
    message = str(refused.value)
    assert GENERIC not in message and parameter in message and expected in message, message
    assert len(message) < 1000  # a 10,000-character input is not echoed back whole
    assert client.predict(api_name="/list_runs")  # the server is still up


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "..", "/etc/passwd", "a/b", "run\n", ".hidden"])
def test_ids_refuse_path_traversal(client, bad_id):
    for endpoint in ("/job_status", "/cancel_job", "/export_run"):
        with pytest.raises(AppError, match="is not a (job|run) id"):
            client.predict(bad_id, api_name=endpoint)


def test_a_bare_server_path_is_not_a_file(client):
    """A string path would let a caller read the server's files: only uploads are accepted."""
    for endpoint, arguments in (("/classify", [str(ROOT / "examples" / "example-04.png"), SHIPPED_RUN]),
                                ("/import_run", ["/etc/passwd"])):
        with pytest.raises(AppError, match="handle_file"):
            client.predict(*arguments, api_name=endpoint)


def test_an_invalid_limit_stops_the_app_at_start_up(monkeypatch, tmp_path):
    import sys

    sys.path.insert(0, str(ROOT))
    import app as app_module

    monkeypatch.setenv("CCE_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("CCE_MAX_JOB_MINUTES", "twenty")
    with pytest.raises(SystemExit, match="CCE_MAX_JOB_MINUTES='twenty': expected a number > 0"):
        app_module.create_app()
