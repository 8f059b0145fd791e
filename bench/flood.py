"""Flood benchmark (issue 18): does a running job keep its pace, and do other visitors still get the page,
while several clients flood /classify with an image that is cheap to send and expensive to decode?

What it measures, against `python app.py` in public mode (SPACE_ID set) on 127.0.0.1:

1. The progress rate of one running training job (a `quick`-preset job on synthetic data, percent of the job
   per minute, read from /job_status) in alternating windows: quiet, flooded, quiet, flooded, quiet
   (`--rounds` flooded windows of `--window` seconds). The flooded rate (all flooded windows pooled) is
   compared with the quiet rate (all quiet windows pooled): alternating short windows cancel most of the
   drift of a shared host's load, which is larger than the effect when measured once each.
2. While flooded: `--clients` flooding clients, each behind its own X-Forwarded-For address (as behind the
   Space's proxy), each keeping `--in-flight` /classify calls of a 24.9-megapixel, ~25 kB PNG going at all
   times; how their calls ended (accepted, refused at the door by the per-visitor limits, refused as too large
   to decode, other errors).
3. Throughout all windows another visitor loads the page (GET /, GET /config) and calls /list_runs every
   2 s: every request must succeed. It runs in the quiet phases too, so that the comparison isolates the flood.

The flooders run on the same host as the app, each in its own process at the lowest priority (nice 19): an
attacker's CPU is on the attacker's machine, and on a 2-core host unniced flooders would measure how fast
this machine runs gradio_client rather than what the app lets them do. What they send is not throttled.

Usage (from the repository root; it only talks to 127.0.0.1):
    python bench/flood.py [--clients 8] [--in-flight 4] [--rounds 3] [--window 30] [--output bench/flood_results.json]

Exit status: 0 when the flooded rate is at least `--min-ratio` (0.5) of the quiet rate and no page load of the
other visitor failed, else 1.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from load_test import free_port, stop_app, wait_until_ready  # noqa: E402  (sets the offline environment first)

import subprocess  # noqa: E402

import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402
from PIL import Image  # noqa: E402

from cce_demo.provenance import cpu_model, source_commit  # noqa: E402

SHIPPED_RUN = "cifar10-lt100-standard-ce-cce"
# A quick-preset job on synthetic data that trains for a few minutes on 2 cores: long enough for three phases.
JOB = {"preset": "quick", "dataset": "synthetic", "epochs": 400, "device": "cpu"}


def start_app(work_dir: Path, log_file, app_root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    port = free_port()
    environment = dict(os.environ)
    environment.update({
        "SPACE_ID": "bench/flood", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_TEMP_DIR": str(work_dir / "gradio_uploads"), "CCE_RUNS_DIR": str(work_dir / "runs"),
        "CCE_SPEED_PROBE": "0", "PYTHONUNBUFFERED": "1",
    })
    process = subprocess.Popen([sys.executable, "app.py"], cwd=app_root, env=environment, stdout=log_file,
                               stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}/"


def progress_of(client: Client, job_id: str) -> tuple[float, str]:
    answer = client.predict(job_id, api_name="/job_status")
    return float(answer["progress"]), answer["status"]


def measure_rate(client: Client, job_id: str, seconds: float) -> dict[str, Any]:
    """Percent of the job per minute over `seconds` (first and last reading of /job_status)."""
    start_progress, status = progress_of(client, job_id)
    started = time.monotonic()
    time.sleep(seconds)
    end_progress, status = progress_of(client, job_id)
    elapsed = time.monotonic() - started
    return {"seconds": round(elapsed, 1), "progress_from": round(start_progress, 4), "progress_to": round(end_progress, 4),
            "percent_per_minute": round(100 * (end_progress - start_progress) / elapsed * 60, 2), "status": status}


def classify_index(http: httpx.Client) -> int:
    """/classify's function index, from the app's config (what a raw client reads too)."""
    config = http.get("config").json()
    return next(dependency["id"] for dependency in config["dependencies"] if dependency.get("api_name") == "classify")


def raw_classify(http: httpx.Client, index: int, file_data: dict[str, Any]) -> str:
    """One /classify call as a raw client makes it: join the queue, read the result from the event stream."""
    session = os.urandom(6).hex()
    joined = http.post("gradio_api/queue/join", json={"data": [file_data, SHIPPED_RUN], "fn_index": index,
                                                      "session_hash": session, "event_data": None, "trigger_id": None})
    if joined.status_code == 503:
        return "refused at the door (per-visitor limits)"
    if joined.status_code != 200:
        return f"other: join answered {joined.status_code}"
    with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and '"process_completed"' in line:
                message = json.loads(line[5:])
                if message.get("success"):
                    return "accepted"
                error = str((message.get("output") or {}).get("error"))
                return "refused: too large to decode" if "megapixels" in error else f"other: {error[:80]}"
    return "other: the event stream ended without a result"


def flood(url: str, address: str, image: str, in_flight: int, seconds: float) -> Counter:
    """One flooding client (a process of its own), written as a hostile client would: the image uploaded once,
    then `in_flight` raw /classify joins outstanding for `seconds`, each answered or refused as fast as the
    app does. (gradio_client re-uploads the file for every call and spent more CPU than the app.)"""
    outcomes: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": address}, timeout=30) as http:
        index = classify_index(http)
        with open(image, "rb") as file:
            uploaded = http.post("gradio_api/upload", files={"files": ("flood.png", file, "image/png")}).json()[0]
        file_data = {"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": "flood.png"}

        def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    outcome = raw_classify(http, index, file_data)
                except httpx.HTTPError as error:
                    outcome = f"other: {type(error).__name__}"
                with lock:
                    outcomes[outcome] += 1

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(in_flight)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(seconds + 60)
    return outcomes


def start_flooders(url: str, image: Path, count: int, in_flight: int, seconds: float) -> list[subprocess.Popen]:
    return [
        subprocess.Popen([sys.executable, __file__, "--flooder", url, f"198.51.100.{index + 1}", str(image), str(in_flight),
                          str(seconds)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         preexec_fn=lambda: os.nice(19))
        for index in range(count)
    ]


def collect(flooders: list[subprocess.Popen]) -> Counter:
    total: Counter = Counter()
    for process in flooders:
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        try:
            total.update(json.loads(output.decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            total["other: a flooder printed no result"] += 1
    return total


class Visitor(threading.Thread):
    """Another visitor: the page, its config and /list_runs, once a second, from its own address."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.results: Counter = Counter()
        self.latencies: list[float] = []

    def run(self) -> None:
        headers = {"X-Forwarded-For": "192.0.2.200"}
        client = Client(self.url, verbose=False, headers=headers)
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                for name, action in (("page", lambda: http.get("/").raise_for_status()),
                                     ("config", lambda: http.get("/config").raise_for_status()),
                                     ("/list_runs", lambda: client.predict(api_name="/list_runs"))):
                    try:
                        action()
                        self.results[f"{name} ok"] += 1
                    except Exception:  # noqa: BLE001 - a failed page load is what this counts
                        self.results[f"{name} failed"] += 1
                self.latencies.append(time.monotonic() - started)
                self.stop.wait(2.0)



def flood_image(directory: Path) -> Path:
    path = directory / "flood.png"
    Image.new("L", (5000, 4980)).save(path)
    return path


def run(arguments: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    log_path = work_dir / "app.log"
    with open(log_path, "w") as log_file:
        process, url = start_app(work_dir, log_file, arguments.app_root)
        try:
            wait_until_ready(url, process, timeout=180)
            monitor = Client(url, verbose=False, headers={"X-Forwarded-For": "192.0.2.100"})
            job_id = monitor.predict(JOB, api_name="/start_comparison")["job_id"]
            while progress_of(monitor, job_id)[0] < 0.02:  # past loading and the first steps
                time.sleep(1)
            stop = threading.Event()
            visitor = Visitor(url, stop)
            visitor.start()
            image = flood_image(work_dir)
            windows = [{"phase": "quiet", **measure_rate(monitor, job_id, arguments.window)}]
            outcomes: Counter = Counter()
            for _ in range(arguments.rounds):
                flooders = start_flooders(url, image, arguments.clients, arguments.in_flight, arguments.window + 10)
                time.sleep(5)  # the flooders have started (imports, first uploads) before the reading starts
                windows.append({"phase": "flooded", **measure_rate(monitor, job_id, arguments.window)})
                outcomes.update(collect(flooders))  # they stop a few seconds after the window
                windows.append({"phase": "quiet", **measure_rate(monitor, job_id, arguments.window)})
            stop.set()
            visitor.join(120)
            monitor.predict(job_id, api_name="/cancel_job")
        finally:
            stop_app(process, timeout=30)
    def pooled(phase: str) -> float:
        chosen = [window for window in windows if window["phase"] == phase]
        progress = sum(window["progress_to"] - window["progress_from"] for window in chosen)
        return 100 * progress / sum(window["seconds"] for window in chosen) * 60

    quiet_rate, flooded_rate = pooled("quiet"), pooled("flooded")
    ratio = flooded_rate / quiet_rate if quiet_rate > 0 else 0.0
    failures = sum(count for name, count in visitor.results.items() if name.endswith("failed"))
    log_text = log_path.read_text(errors="replace")
    return {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "app_commit": source_commit(arguments.app_root),
        "host": {"cpus": os.cpu_count(), "processor": cpu_model(), "python": platform.python_version(),
                 "load_average_at_end": [round(value, 2) for value in os.getloadavg()]},
        "job": JOB, "clients": arguments.clients, "in_flight_per_client": arguments.in_flight,
        "windows": windows, "quiet_percent_per_minute": round(quiet_rate, 2),
        "flooded_percent_per_minute": round(flooded_rate, 2), "flooded_to_quiet_ratio": round(ratio, 3),
        "flood_outcomes": dict(outcomes), "other_visitor": dict(visitor.results),
        "other_visitor_round_seconds_max": round(max(visitor.latencies, default=0.0), 2),
        "other_visitor_failures": failures,
        "app_log_tracebacks": log_text.count("Traceback"),
        "passed": ratio >= arguments.min_ratio and failures == 0,
    }


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--flooder":  # one flooding client's process
        url, address, image, in_flight, seconds = sys.argv[2:7]
        print(json.dumps(flood(url, address, image, int(in_flight), float(seconds))), flush=True)
        os._exit(0)  # gradio_client's own threads must not keep a finished flooder alive
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="flooded windows (each between two quiet ones)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of each reading")
    parser.add_argument("--min-ratio", type=float, default=0.5)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--app-root", type=Path, default=ROOT,
                        help="the checkout whose app.py is served (e.g. a worktree of an older commit, for comparison)")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cce_flood_") as work:
        report = run(arguments, Path(work))
    text = json.dumps(report, indent=2)
    print(text)
    if arguments.output:
        arguments.output.write_text(text + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
