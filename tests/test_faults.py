"""Faults: the app killed with SIGKILL during a job, then restarted; a failed checkpoint write inside a job."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from gradio_client import Client

from conftest import ROOT, free_port, synthetic_request
from cce_demo import run_directory
from cce_demo.run_directory import RunWriter, list_runs, load_models, read_run
from cce_demo.config import TrainConfig
from cce_demo.engine import train_paired
from cce_demo.jobs import JobManager

STARTUP_SECONDS = 120


def start_app(runs_dir, port):
    environment = {
        **os.environ, "CCE_RUNS_DIR": str(runs_dir), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:  # bounded: the app answers within seconds
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode} before answering")
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url
        except OSError:
            time.sleep(0.5)  # another process: there is no event to wait on
    process.kill()
    raise AssertionError("the app did not answer in time")


def test_kill_during_a_job_then_restart(tmp_path):
    runs = tmp_path / "runs"
    config = TrainConfig(dataset="synthetic", imbalance_ratio=2.0, epochs=1, batch_size=64, device="cpu",
                         max_per_class=30, synthetic_test_per_class=5)
    earlier = RunWriter(runs, config, "earlier-run")
    earlier.finish(train_paired(config, earlier.record))

    process, url = start_app(runs, free_port())
    try:
        client = Client(url, verbose=False)
        job_id = client.predict(synthetic_request(epochs=500), api_name="/start_comparison")["job_id"]
        for _ in range(600):  # bounded polling of another process
            if client.predict(job_id, api_name="/job_status")["status"] == "running" and (runs / job_id / "events.jsonl").exists():
                break
        else:
            raise AssertionError("the job never started")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    record = read_run(runs / job_id)
    assert record.status == "interrupted"
    records, problems = list_runs([runs])
    assert not problems and {r.run_id: r.status for r in records} == {job_id: "interrupted", "earlier-run": "done"}
    assert set(load_models(read_run(runs / "earlier-run"))) == {"ce", "cce"}

    process, url = start_app(runs, free_port())  # the restarted app lists both
    try:
        client = Client(url, verbose=False)
        listed = {row["run"]: row["status"] for row in client.predict(api_name="/list_runs")}
        assert listed[job_id] == "interrupted" and listed["earlier-run"] == "done"
        assert client.predict(job_id, api_name="/job_status")["status"] == "interrupted"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_failed_checkpoint_write_fails_the_job_and_leaves_no_partial_file(tmp_path, tiny_config, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_directory, "save_file", disk_full)
    manager = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0)
    try:
        job_id = manager.submit(tiny_config)
        snapshot = manager.wait(job_id, timeout=120)
        assert snapshot.status == "failed" and "No space left" in snapshot.error
        files = sorted(path.name for path in (tmp_path / "runs" / job_id).iterdir())
        assert files == ["events.jsonl", "run.json"]  # no weights, no temporary files
        assert json.loads((tmp_path / "runs" / job_id / "run.json").read_text())["status"] == "failed"
        monkeypatch.undo()
        assert manager.wait(manager.submit(tiny_config), timeout=120).status == "done"  # the worker goes on
    finally:
        manager.shutdown()
