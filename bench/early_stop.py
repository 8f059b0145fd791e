"""Stop the real app early, again and again: does it exit 0, with no traceback and no native abort?

A Space restarts its container on every rebuild, after sleep and on hardware changes, so the app is often
stopped in its first seconds, while the start-up speed probe is still training (issue: 7 of 7 stops 2-4 s
after the first HTTP 200 crashed with exit 139). Each round starts `python app.py` with the speed probe on
and a fresh runs folder, waits for the first HTTP 200, waits a random 0-4 s (seeded), sends SIGINT or
SIGTERM (alternately), and checks the exit code and the output. It also records whether the probe was still
running when the signal came, and how long the stop took.

Usage (from the repository root; needs no data):
    python bench/early_stop.py [--rounds 20] [--max-delay 4] [--seed 0] [--output bench/early_stop_results.json]
Exit status 0 only if every round passed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:  # run as a script, Python puts bench/ on the path, not the root
    sys.path.insert(0, str(REPOSITORY_ROOT))

from cce_demo.provenance import cpu_model, source_commit  # noqa: E402
CRASH_MARKERS = ("Traceback (most recent call last)", "terminate called", "Segmentation fault", "core dumped")
PROBE_STARTED, PROBE_FINISHED = "speed probe on cpu: timing", "per probe step"
START_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_round(delay: float, signal_number: int) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as runs:
        environment = {
            **os.environ, "CCE_RUNS_DIR": runs, "CCE_SPEED_PROBE": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
        }
        lines: list[str] = []
        process = subprocess.Popen([sys.executable, "app.py"], cwd=REPOSITORY_ROOT, env=environment, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in process.stdout), daemon=True)
        reader.start()
        launched = time.monotonic()
        try:
            deadline = launched + START_TIMEOUT
            while True:  # another process: poll its port until the first HTTP 200
                if process.poll() is not None:
                    raise RuntimeError(f"the app exited with {process.returncode} before answering")
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the app did not answer in time") from None
                    time.sleep(0.1)
            first_200 = time.monotonic() - launched
            time.sleep(delay)
            probe_running = any(PROBE_STARTED in line for line in lines) and not any(PROBE_FINISHED in line for line in lines)
            signalled = time.monotonic()
            process.send_signal(signal_number)
            code = process.wait(timeout=60)
            stop_seconds = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.join(timeout=30)
    output = "\n".join(lines)
    crashes = [marker for marker in CRASH_MARKERS if marker in output]
    return {
        "signal": signal.Signals(signal_number).name, "delay_after_first_200_seconds": round(delay, 2),
        "first_200_seconds": round(first_200, 1), "probe_running_at_signal": probe_running,
        "exit_code": code, "crash_markers": crashes, "stop_seconds": round(stop_seconds, 2),
        "passed": code == 0 and not crashes,
        "last_line": lines[-1] if lines else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--max-delay", type=float, default=4.0, help="seconds after the first HTTP 200, at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(REPOSITORY_ROOT / "bench" / "early_stop_results.json"))
    arguments = parser.parse_args(argv)
    generator = random.Random(arguments.seed)
    rounds = []
    for index in range(arguments.rounds):
        signal_number = (signal.SIGINT, signal.SIGTERM)[index % 2]
        result = one_round(generator.uniform(0.0, arguments.max_delay), signal_number)
        rounds.append(result)
        print(json.dumps(result), flush=True)
    passed = sum(result["passed"] for result in rounds)
    stops = sorted(result["stop_seconds"] for result in rounds)
    summary = {
        "rounds": len(rounds), "passed": passed, "in_a_row": passed == len(rounds),
        "probe_running_at_signal": sum(result["probe_running_at_signal"] for result in rounds),
        "stop_seconds_median": stops[len(stops) // 2], "stop_seconds_max": stops[-1],
        "commit": source_commit(REPOSITORY_ROOT), "cpu_model": cpu_model(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
        "platform": platform.platform(), "command": "python bench/early_stop.py " + " ".join(argv or sys.argv[1:]),
        "details": rounds,
    }
    Path(arguments.output).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{passed}/{len(rounds)} rounds passed; the probe was running at {summary['probe_running_at_signal']} of the "
          f"signals; stop took {summary['stop_seconds_median']} s median, {summary['stop_seconds_max']} s at most")
    return 0 if passed == len(rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
