"""Shared test set-up: no network, no analytics, small deterministic configs."""
import os

# Gradio reads these at import time; set them before any test module imports it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402

from cce_demo.config import TrainConfig  # noqa: E402


@pytest.fixture
def tiny_config() -> TrainConfig:
    """A paired CE/CCE run on the synthetic set that trains in about a second on a CPU."""
    return TrainConfig(
        dataset="synthetic", imbalance_ratio=2.0, epochs=2, batch_size=64, learning_rate=0.05,
        warmup_epochs=0.0, device="cpu", max_per_class=40, synthetic_test_per_class=10,
    )


# ---------------------------------------------------------------- a live app for the client and browser tests

import socket  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
# The client tests fill the training queue on purpose; keep it small.
LIVE_APP_MAX_QUEUE = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_on_a_free_port(demo, queue_size: int, max_file_size: int, attempts: int = 3) -> int:
    """Launch `demo` on a free local port and return the port. Gradio gives up with "When localhost is not
    accessible…" when its own server does not answer a check within a few seconds, which happens on a host
    whose cores are saturated by other work (seen with two training runs beside the suite): try again then."""
    for attempt in range(attempts):
        port = free_port()
        try:
            demo.queue(max_size=queue_size, default_concurrency_limit=4).launch(
                server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False,
                max_file_size=max_file_size,
            )
            return port
        except ValueError as error:
            if "localhost is not accessible" not in str(error) or attempt == attempts - 1:
                raise
            demo.close(verbose=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """The real app (app.create_app) on 127.0.0.1 with a fresh runs directory and the shipped runs."""
    runs = tmp_path_factory.mktemp("live-runs")
    saved = {key: os.environ.get(key) for key in ("CCE_RUNS_DIR", "CCE_MAX_QUEUE")}
    os.environ.update(CCE_RUNS_DIR=str(runs), CCE_MAX_QUEUE=str(LIVE_APP_MAX_QUEUE))
    sys.path.insert(0, str(ROOT))
    import app as app_module
    from cce_demo.predict import MAX_UPLOAD_BYTES

    demo, manager = app_module.create_app()
    port = launch_on_a_free_port(demo, app_module.QUEUE_SIZE, MAX_UPLOAD_BYTES)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "manager": manager, "runs": runs, "demo": demo}
    finally:
        demo.close(verbose=False)
        manager.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def synthetic_request(**overrides):
    """An API config for a paired run on synthetic data that takes a few seconds."""
    request = {"preset": "quick", "dataset": "synthetic", "epochs": 2, "batch_size": 64, "max_per_class": 40,
               "imbalance_ratio": 2, "device": "cpu", "synthetic_test_per_class": 10}
    request.update(overrides)
    return request


import contextlib  # noqa: E402


@contextlib.contextmanager
def running_app(runs, **environment):
    """The real app (app.create_app) on 127.0.0.1 with `runs` as its runs directory and `environment` set while
    it is built (e.g. CCE_MAX_JOB_MINUTES): yields {"url", "manager", "runs"}, then closes it."""
    # No start-up speed probe unless a test asks for it: it would rescale estimates while the test runs.
    environment = {"CCE_RUNS_DIR": str(runs), "CCE_SPEED_PROBE": "0", **{key: str(value) for key, value in environment.items()}}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    sys.path.insert(0, str(ROOT))
    import app as app_module

    try:
        demo, manager = app_module.create_app()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    port = launch_on_a_free_port(demo, app_module.QUEUE_SIZE, app_module.MAX_FILE_BYTES)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "manager": manager, "runs": runs, "demo": demo}
    finally:
        demo.close(verbose=False)
        manager.shutdown()
