"""Load test of the running web app through its named API, the way several people would use it at once.

What it measures:

1. Requests, failures, intended refusals and p50 / p95 latency for each API endpoint (`/start_comparison`,
   `/job_status`, `/cancel_job`, `/list_runs`, `/classify`) while N simulated users call them concurrently.
   A "queue is full" answer (an `AppError` whose message says so) is the app refusing work on purpose and
   counts as a refusal, not a failure; every other exception, a timeout or a malformed answer is a failure.
2. The most training jobs seen running at once, against the configured limit (CCE_MAX_CONCURRENT=1 per
   device). The app exposes no count of running jobs, so a sampler polls `/job_status` of every known
   unfinished job every 0.5 s and counts "running"; a count above one is only believed when a second pass
   confirms it (see `confirmed_running`). Sampling from outside is a lower bound: an overlap shorter than
   one sampling pass can be missed.
3. The app process's resident memory (VmRSS from /proc) at the start, its peak and at the end.

How: the app is started as a subprocess (`python app.py`) on 127.0.0.1 and a free port, with a fresh
temporary runs directory (removed afterwards), a small training queue (CCE_MAX_QUEUE, default 4) and one job
at a time. Each user is a thread with its own `gradio_client.Client` and its own seeded random generator; it
loops until the deadline over a random mix of: start a tiny synthetic job, poll one of its jobs, classify a
small PNG with a finished run from `/list_runs` (the shipped one when present), list the runs, cancel one of
its jobs. At the end every unfinished job is cancelled, the app is stopped (terminate, then kill) and a report
is printed and written as JSON.

Usage (from the repository root; it only talks to 127.0.0.1):
    python bench/load_test.py --users 8 --duration 60 [--max-queue 4] [--seed 0] [--output bench/load_results.json]

Exit status: 0 when there were no failures and no more jobs ran at once than the limit, else 1.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path
from typing import Any, Callable

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

# Set before gradio_client is imported: no analytics, no hub calls, and never route 127.0.0.1 via a proxy.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

MAX_DURATION_SECONDS = 120.0  # hard cap: this is a smoke-sized load test, not a soak test
MAX_USERS = 64
MAX_CONCURRENT_JOBS = 1  # what the app is started with; the figure the sampler checks against
SAMPLE_INTERVAL_SECONDS = 0.5
STARTUP_TIMEOUT_SECONDS = 180.0  # importing torch and gradio on a busy 2-core machine can take a minute
STOP_TIMEOUT_SECONDS = 15.0
CANCEL_SETTLE_SECONDS = 20.0  # how long the clean-up waits for cancelled jobs to actually stop
FAILURE_MESSAGES_KEPT = 5  # per endpoint, so one noisy endpoint cannot hide another's failures
REFUSAL_MARKER = "queue is full"
TERMINAL_STATUSES = frozenset({"done", "cancelled", "failed", "interrupted"})

# A job small enough to finish in seconds on a CPU: synthetic data needs no files, 40 images in the largest class.
TINY_JOB_CONFIG = {
    "preset": "quick", "dataset": "synthetic", "epochs": 2, "batch_size": 64,
    "max_per_class": 40, "imbalance_ratio": 2, "device": "cpu",
}
# Relative frequency of each user action; polling dominates, as it does for a person watching a job.
ACTION_WEIGHTS = {"start": 2, "poll": 4, "classify": 2, "list_runs": 1, "cancel": 1}


# ---------------------------------------------------------------- the app process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(work_dir: Path, max_queue: int, log_file) -> tuple[subprocess.Popen, str]:
    """Launch `python app.py` on a free port with a fresh runs directory; returns the process and its URL."""
    port = free_port()
    environment = dict(os.environ)
    environment.update({
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(work_dir / "gradio_uploads"),  # uploads land here and are removed with it
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "CCE_RUNS_DIR": str(work_dir / "runs"),
        "CCE_MAX_QUEUE": str(max_queue),
        "CCE_MAX_CONCURRENT": str(MAX_CONCURRENT_JOBS),
        "PYTHONUNBUFFERED": "1",  # so the log is complete when we read it after a crash
    })
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}/"


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Poll the page until it answers HTTP 200; raise if the process exits or the timeout passes."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with status {process.returncode} before it answered")
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.5)
    raise RuntimeError(f"the app did not answer {url} within {timeout:.0f} s")


def stop_app(process: subprocess.Popen, timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def read_rss_mib(pid: int) -> float | None:
    """VmRSS of a process in MiB, or None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def unexpected_exceptions(log_text: str) -> list[str]:
    """Exception lines from the app's console, minus gr.Error (the app's own clear refusals, also printed)."""
    pattern = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*$")
    lines = [line.strip() for line in log_text.splitlines() if pattern.match(line.strip())]
    return [line for line in lines if not line.startswith("gradio.exceptions.Error")]


# ---------------------------------------------------------------- bookkeeping shared by the threads


class Stats:
    """Per-endpoint counts and latencies, safe to update from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.failure_messages: dict[str, list[str]] = {}
        self.refusal_messages: list[str] = []  # distinct messages only: they are there to be read

    def _endpoint(self, name: str) -> dict[str, Any]:
        return self.endpoints.setdefault(name, {"requests": 0, "failures": 0, "refusals": 0, "latencies_ms": []})

    def record(self, endpoint: str, seconds: float, outcome: str, message: str = "") -> None:
        """outcome: "ok", "refused" (intended) or "failed"."""
        with self._lock:
            entry = self._endpoint(endpoint)
            entry["requests"] += 1
            entry["latencies_ms"].append(seconds * 1000)
            if outcome == "failed":
                entry["failures"] += 1
                kept = self.failure_messages.setdefault(endpoint, [])
                if len(kept) < FAILURE_MESSAGES_KEPT:
                    kept.append(message)
            elif outcome == "refused":
                entry["refusals"] += 1
                line = f"{endpoint}: {message}"
                if line not in self.refusal_messages and len(self.refusal_messages) < FAILURE_MESSAGES_KEPT:
                    self.refusal_messages.append(line)

    def total(self, key: str) -> int:
        with self._lock:
            return sum(entry[key] for entry in self.endpoints.values())


class JobRegistry:
    """Every job id any user started, with the last status anyone saw for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, str] = {}
        self._owner: dict[str, int] = {}

    def add(self, job_id: str, owner: int, status: str) -> None:
        with self._lock:
            self._status[job_id] = status
            self._owner[job_id] = owner

    def update(self, job_id: str, status: str) -> None:
        with self._lock:
            if job_id in self._status:
                self._status[job_id] = status

    def all_ids(self) -> list[str]:
        with self._lock:
            return list(self._status)

    def unfinished(self, owner: int | None = None) -> list[str]:
        with self._lock:
            return [
                job_id for job_id, status in self._status.items()
                if status not in TERMINAL_STATUSES and (owner is None or self._owner[job_id] == owner)
            ]

    def owned_by(self, owner: int) -> list[str]:
        with self._lock:
            return [job_id for job_id, job_owner in self._owner.items() if job_owner == owner]


def call_endpoint(
    client: Client, stats: Stats, endpoint: str, arguments: tuple, timeout: float,
    check: Callable[[Any], str] | None = None, label: str = "",
) -> Any:
    """One API call, timed and classified. Returns the result, or None when it was refused or failed.
    `check(result)` returns a problem description ("" when the answer looks right); `label` is the row the
    call is counted under (the endpoint by default), so the sampler's and the clean-up's calls stay apart."""
    row = label or endpoint
    started = time.monotonic()
    job = None
    try:
        job = client.submit(*arguments, api_name=endpoint)
        result = job.result(timeout=timeout)
    except AppError as error:
        message = str(error)
        outcome = "refused" if REFUSAL_MARKER in message.lower() else "failed"
        stats.record(row, time.monotonic() - started, outcome, message)
        return None
    except FutureTimeoutError:
        if job is not None:
            job.cancel()
        stats.record(row, time.monotonic() - started, "failed", f"no answer within {timeout:.0f} s")
        return None
    except Exception as error:  # noqa: BLE001 - anything else that raises is a failure to report, not a crash
        stats.record(row, time.monotonic() - started, "failed", f"{type(error).__name__}: {error}"[:300])
        return None
    problem = check(result) if check else ""
    stats.record(row, time.monotonic() - started, "failed" if problem else "ok", problem)
    return None if problem else result


def check_job_summary(result: Any) -> str:
    if not isinstance(result, dict) or not isinstance(result.get("job_id"), str) or "status" not in result:
        return f"unexpected answer (no job_id/status): {str(result)[:200]}"
    return ""


def check_runs(result: Any) -> str:
    if not isinstance(result, list) or not all(isinstance(row, dict) and "run" in row for row in result):
        return f"unexpected answer (not a list of runs): {str(result)[:200]}"
    return ""


def check_classification(result: Any) -> str:
    if not isinstance(result, dict) or not result.get("predictions"):
        return f"unexpected answer (no predictions): {str(result)[:200]}"
    return ""


def connect(url: str, stats: Stats, download_dir: Path) -> Client | None:
    """A client with its own session; a failure to connect is recorded like any other failure."""
    started = time.monotonic()
    try:
        client = Client(url, verbose=False, download_files=str(download_dir), analytics_enabled=False)
    except Exception as error:  # noqa: BLE001
        stats.record("connect", time.monotonic() - started, "failed", f"{type(error).__name__}: {error}"[:300])
        return None
    stats.record("connect", time.monotonic() - started, "ok")
    return client


def finished_run_id(runs: list[dict[str, Any]]) -> str | None:
    """A run whose models can classify: the shipped one when present, else any finished run."""
    done = [row for row in runs if row.get("status") == "done"]
    shipped = [row for row in done if row.get("source") == "shipped"]
    chosen = (shipped or done or [None])[0]
    return chosen["run"] if chosen else None


def write_test_images(directory: Path, seed: int) -> list[Path]:
    """A few small PNGs of different sizes and modes, so uploads exercise resizing and mode conversion."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = random.Random(seed)
    shapes = [("RGB", (32, 32)), ("RGB", (48, 40)), ("L", (64, 64)), ("RGBA", (20, 24))]
    paths = []
    for index, (mode, size) in enumerate(shapes):
        channels = len(mode)
        pixels = bytes(generator.randrange(256) for _ in range(size[0] * size[1] * channels))
        path = directory / f"load-test-{index}.png"
        Image.frombytes(mode, size, pixels).save(path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the simulated users


class UserContext:
    """What every user thread shares."""

    def __init__(self, url: str, stats: Stats, registry: JobRegistry, images: list[Path], run_id: str | None,
                 deadline: float, request_timeout: float, think_seconds: float, download_dir: Path) -> None:
        self.url, self.stats, self.registry, self.images, self.run_id = url, stats, registry, images, run_id
        self.deadline, self.request_timeout, self.think_seconds = deadline, request_timeout, think_seconds
        self.download_dir = download_dir


def choose_action(generator: random.Random, context: UserContext) -> str:
    actions = [action for action in ACTION_WEIGHTS if action != "classify" or context.run_id]
    return generator.choices(actions, weights=[ACTION_WEIGHTS[action] for action in actions])[0]


def perform(action: str, client: Client, user: int, generator: random.Random, context: UserContext) -> None:
    stats, registry, timeout = context.stats, context.registry, context.request_timeout
    if action == "start":
        summary = call_endpoint(
            client, stats, "/start_comparison", (dict(TINY_JOB_CONFIG),), timeout, check_job_summary)
        if summary:
            registry.add(summary["job_id"], user, summary["status"])
    elif action in ("poll", "cancel"):
        # Prefer a job that is still going (that is what a person watches or stops); else any of theirs.
        candidates = registry.unfinished(user) or registry.owned_by(user)
        if not candidates:
            return
        endpoint = "/job_status" if action == "poll" else "/cancel_job"
        job_id = generator.choice(candidates)
        summary = call_endpoint(client, stats, endpoint, (job_id,), timeout, check_job_summary)
        if summary:
            registry.update(job_id, summary["status"])
    elif action == "classify":
        image = generator.choice(context.images)
        call_endpoint(
            client, stats, "/classify", (handle_file(str(image)), context.run_id), timeout, check_classification)
    elif action == "list_runs":
        call_endpoint(client, stats, "/list_runs", (), timeout, check_runs)


def user_loop(user: int, seed: int, context: UserContext) -> None:
    generator = random.Random(seed * 1000 + user)  # each user its own reproducible sequence of actions
    client = connect(context.url, context.stats, context.download_dir)
    if client is None:
        return
    try:
        while time.monotonic() < context.deadline:
            perform(choose_action(generator, context), client, user, generator, context)
            time.sleep(generator.uniform(0, context.think_seconds))
    finally:
        client.close()


# ---------------------------------------------------------------- the sampler


class Sampler(threading.Thread):
    """Every SAMPLE_INTERVAL_SECONDS: the app's RSS and how many known jobs are running at once."""

    def __init__(self, pid: int, client: Client, stats: Stats, registry: JobRegistry, request_timeout: float) -> None:
        super().__init__(name="load-test-sampler", daemon=True)
        self.pid, self.client, self.stats, self.registry = pid, client, stats, registry
        self.request_timeout = request_timeout
        self.stop_event = threading.Event()
        self.started_at = time.monotonic()
        self.samples: list[dict[str, Any]] = []
        self.max_running = 0

    def poll_statuses(self, job_ids: list[str]) -> list[str]:
        """The ids among `job_ids` whose status is "running", polled one after another in the given order."""
        running = []
        for job_id in job_ids:
            summary = call_endpoint(self.client, self.stats, "/job_status", (job_id,), self.request_timeout,
                                    check_job_summary, label="/job_status (sampler)")
            if summary:
                self.registry.update(job_id, summary["status"])
                if summary["status"] == "running":
                    running.append(job_id)
        return running

    def confirmed_running(self) -> int:
        """Jobs running at one instant. The polls of one pass happen at different times, so job A seen running
        and then job B seen running could be A ending before B started. A job's status only moves forward
        (queued -> running -> finished), so a job seen running in two passes ran during the whole time in
        between; jobs running in both passes were therefore all running at the end of the first pass."""
        first_pass = self.poll_statuses(self.registry.unfinished())
        if len(first_pass) <= 1:
            return len(first_pass)  # a single observation needs no confirmation
        second_pass = self.poll_statuses(first_pass)
        return len(set(first_pass) & set(second_pass))

    def sample_once(self) -> None:
        running = self.confirmed_running()
        self.max_running = max(self.max_running, running)
        self.samples.append({
            "seconds": round(time.monotonic() - self.started_at, 2),
            "rss_mib": read_rss_mib(self.pid), "running_jobs": running,
        })

    def run(self) -> None:
        while not self.stop_event.is_set():
            tick = time.monotonic()
            self.sample_once()
            self.stop_event.wait(max(0.0, SAMPLE_INTERVAL_SECONDS - (time.monotonic() - tick)))


# ---------------------------------------------------------------- clean-up and report


def cancel_unfinished(client: Client, stats: Stats, registry: JobRegistry, timeout: float) -> list[str]:
    """Cancel every job not known to be finished, then wait (bounded) until they have stopped.
    Returns the ids still not finished after the wait."""
    for job_id in registry.unfinished():
        summary = call_endpoint(client, stats, "/cancel_job", (job_id,), timeout, check_job_summary,
                                label="/cancel_job (clean-up)")
        if summary:
            registry.update(job_id, summary["status"])
    deadline = time.monotonic() + CANCEL_SETTLE_SECONDS
    while registry.unfinished() and time.monotonic() < deadline:
        for job_id in registry.unfinished():
            summary = call_endpoint(client, stats, "/job_status", (job_id,), timeout, check_job_summary,
                                    label="/job_status (clean-up)")
            if summary:
                registry.update(job_id, summary["status"])
        time.sleep(SAMPLE_INTERVAL_SECONDS)
    return registry.unfinished()


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def endpoint_table(stats: Stats) -> dict[str, dict[str, Any]]:
    table = {}
    for name, entry in sorted(stats.endpoints.items()):
        latencies = entry["latencies_ms"]
        table[name] = {
            "requests": entry["requests"], "failures": entry["failures"], "refusals": entry["refusals"],
            "p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        }
    return table


def memory_summary(start: float | None, samples: list[dict[str, Any]], end: float | None) -> dict[str, Any]:
    values = [value for value in [start, *(sample["rss_mib"] for sample in samples), end] if value is not None]
    peak = max(values) if values else None
    growth = end - start if start is not None and end is not None else None
    figures = {"start_mib": start, "peak_mib": peak, "end_mib": end, "growth_mib": growth}
    return {name: None if value is None else round(value, 1) for name, value in figures.items()}


def print_report(report: dict[str, Any]) -> None:
    settings = report["settings"]
    print(f"\nLoad test: {settings['users']} users for {settings['duration_seconds']:g} s, training queue limit "
          f"{settings['max_queue']}, {settings['max_concurrent']} job at a time, classify with run "
          f"{settings['classify_run_id']!r}")
    print(f"{'endpoint':<26}{'requests':>9}{'failures':>9}{'refusals':>9}{'p50 ms':>10}{'p95 ms':>10}")
    for name, row in report["endpoints"].items():
        p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.0f}"
        p95 = "-" if row["p95_ms"] is None else f"{row['p95_ms']:.0f}"
        print(f"{name:<26}{row['requests']:>9}{row['failures']:>9}{row['refusals']:>9}{p50:>10}{p95:>10}")
    totals = report["totals"]
    print(f"total: {totals['requests']} requests, {totals['failures']} failures, "
          f"{totals['refusals']} intended refusals; {report['jobs']['started']} jobs accepted")
    for message in report["refusal_messages"]:
        print(f"  refusal: {message}")
    jobs = report["jobs"]
    print(f"most jobs running at once: {jobs['max_running_at_once']} (limit {jobs['limit']}); "
          f"sampled {jobs['samples']} times")
    if jobs["unfinished_after_cancel"]:
        print(f"  jobs still not finished {CANCEL_SETTLE_SECONDS:.0f} s after cancel: "
              f"{jobs['unfinished_after_cancel']}")
    memory = report["app_memory"]
    print(f"app RSS: start {memory['start_mib']} MiB, peak {memory['peak_mib']} MiB, end {memory['end_mib']} MiB, "
          f"growth {memory['growth_mib']} MiB")
    for message in report["failure_messages"]:
        print(f"  failure: {message}")
    for line in report["app_log_exceptions"][:5]:
        print(f"  app log: {line}")
    for note in report["notes"]:
        print(f"  note: {note}")
    print("PASS" if report["passed"] else "FAIL")


# ---------------------------------------------------------------- main


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8, help=f"concurrent simulated users (1..{MAX_USERS})")
    parser.add_argument("--duration", type=float, default=60.0,
                        help=f"seconds of load (at most {MAX_DURATION_SECONDS:g})")
    parser.add_argument("--max-queue", type=int, default=4,
                        help="CCE_MAX_QUEUE for the app: training jobs that may wait")
    parser.add_argument("--seed", type=int, default=0, help="seed of the users' random choices")
    parser.add_argument("--request-timeout", type=float, default=60.0,
                        help="seconds before one request counts as failed")
    parser.add_argument("--think-time", type=float, default=0.2, help="most seconds a user pauses between requests")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "load_results.json",
                        help="where the JSON report goes")
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.users <= MAX_USERS:
        parser.error(f"--users must be between 1 and {MAX_USERS}")
    if not 0 < arguments.duration <= MAX_DURATION_SECONDS:
        parser.error(f"--duration must be > 0 and <= {MAX_DURATION_SECONDS:g} seconds")
    if arguments.max_queue < 0:
        parser.error("--max-queue must be >= 0")
    if arguments.request_timeout <= 0 or arguments.think_time < 0:
        parser.error("--request-timeout must be > 0 and --think-time >= 0")
    return arguments


def run_users(arguments: argparse.Namespace, context: UserContext) -> list[threading.Thread]:
    """Start the users, wait for them (bounded), return any that are still busy."""
    threads = [
        threading.Thread(target=user_loop, args=(user, arguments.seed, context), name=f"user-{user}", daemon=True)
        for user in range(arguments.users)
    ]
    for thread in threads:
        thread.start()
    # A user stops starting requests at the deadline; the last one may still need up to request_timeout.
    join_deadline = context.deadline + arguments.request_timeout + 10
    for thread in threads:
        thread.join(max(0.0, join_deadline - time.monotonic()))
    return [thread for thread in threads if thread.is_alive()]


def run_load_test(arguments: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    stats, registry, notes = Stats(), JobRegistry(), []
    images = write_test_images(work_dir / "images", arguments.seed)
    download_dir = work_dir / "downloads"
    log_path = work_dir / "app.log"
    with open(log_path, "wb") as log_file:
        process, url = start_app(work_dir, arguments.max_queue, log_file)
    sampler = None
    run_id = memory_start = memory_end = None
    unfinished: list[str] = []
    try:
        wait_until_ready(url, process, STARTUP_TIMEOUT_SECONDS)
        memory_start = read_rss_mib(process.pid)
        setup_client = connect(url, stats, download_dir)
        if setup_client is None:
            raise RuntimeError("could not connect a gradio_client to the app")
        runs = call_endpoint(setup_client, stats, "/list_runs", (), arguments.request_timeout, check_runs) or []
        run_id = finished_run_id(runs)
        if run_id is None:
            notes.append("no run with status 'done' in /list_runs: the classify action was left out")
        sampler_client = connect(url, stats, download_dir)
        if sampler_client is None:
            raise RuntimeError("could not connect the sampler's gradio_client to the app")
        sampler = Sampler(process.pid, sampler_client, stats, registry, arguments.request_timeout)
        sampler.start()
        context = UserContext(url, stats, registry, images, run_id, time.monotonic() + arguments.duration,
                              arguments.request_timeout, arguments.think_time, download_dir)
        still_busy = run_users(arguments, context)
        if still_busy:
            notes.append(f"{len(still_busy)} user(s) were still waiting for an answer when the test ended")
        sampler.stop_event.set()
        sampler.join(arguments.request_timeout * 2 + 5)
        unfinished = cancel_unfinished(setup_client, stats, registry, arguments.request_timeout)
        memory_end = read_rss_mib(process.pid)
        setup_client.close()
        sampler_client.close()
    except RuntimeError as error:
        notes.append(f"the test could not run: {error}")
    finally:
        if sampler is not None:
            sampler.stop_event.set()
        stop_app(process, STOP_TIMEOUT_SECONDS)
    log_text = log_path.read_text(errors="replace")
    if memory_start is None:
        notes.append("app log tail:\n" + log_text[-2000:])
    memory = memory_summary(memory_start, sampler.samples if sampler else [], memory_end)
    return build_report(arguments, stats, registry, sampler, run_id, memory, unfinished, notes, log_text)


def build_report(
    arguments: argparse.Namespace, stats: Stats, registry: JobRegistry, sampler: Sampler | None, run_id: str | None,
    memory: dict[str, Any], unfinished: list[str], notes: list[str], log_text: str,
) -> dict[str, Any]:
    samples = sampler.samples if sampler else []
    max_running = sampler.max_running if sampler else None
    failures = stats.total("failures")
    started_ok = memory["start_mib"] is not None and sampler is not None
    return {
        "settings": {
            "users": arguments.users, "duration_seconds": arguments.duration, "max_queue": arguments.max_queue,
            "max_concurrent": MAX_CONCURRENT_JOBS, "seed": arguments.seed,
            "request_timeout_seconds": arguments.request_timeout, "think_time_seconds": arguments.think_time,
            "job_config": TINY_JOB_CONFIG, "action_weights": ACTION_WEIGHTS, "classify_run_id": run_id,
        },
        "endpoints": endpoint_table(stats),
        "totals": {"requests": stats.total("requests"), "failures": failures, "refusals": stats.total("refusals")},
        "refusal_messages": stats.refusal_messages,
        "failure_messages": [
            f"{row}: {message}" for row, messages in sorted(stats.failure_messages.items()) for message in messages
        ],
        "jobs": {
            "started": len(registry.all_ids()), "max_running_at_once": max_running, "limit": MAX_CONCURRENT_JOBS,
            "samples": len(samples), "unfinished_after_cancel": unfinished,
        },
        "app_memory": memory,
        "app_log_exceptions": unexpected_exceptions(log_text)[:20],
        "samples": samples,
        "notes": notes,
        "passed": started_ok and failures == 0 and max_running is not None and max_running <= MAX_CONCURRENT_JOBS,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    # A terminal's Ctrl-C or a CI's SIGTERM should still stop the app: turn SIGTERM into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="cce_load_test_") as temporary:
        report = run_load_test(arguments, Path(temporary))
    print_report(report)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {arguments.output}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
