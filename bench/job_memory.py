"""Peak memory of the app while it trains a `standard` job: `python bench/job_memory.py --data-dir DIR`.

Starts the real app (`app.py`, its own process, the speed probe off), submits the `standard` preset through
the API with fewer epochs (memory reaches its steady state in the first epoch: the data, both models, their
optimiser states and one batch's activations; later epochs reuse the same buffers), follows the job to its end
and samples the app process's resident memory every 0.2 s. The kernel's high-water mark (VmHWM) is read too,
so a peak between two samples is not missed. Writes bench/job_memory_results.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "job_memory_results.json"
if str(ROOT) not in sys.path:  # run as a script, Python puts bench/ on the path, not the root
    sys.path.insert(0, str(ROOT))

from cce_demo.provenance import cpu_model  # noqa: E402


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of one process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the standard job (default 2)")
    arguments = parser.parse_args()
    from gradio_client import Client

    port = free_port()
    runs = tempfile.mkdtemp(prefix="job-memory-runs-")
    environment = dict(os.environ, CCE_DATA_DIR=arguments.data_dir, CCE_RUNS_DIR=runs, CCE_SPEED_PROBE="0",
                       GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
                       HF_HUB_DISABLE_TELEMETRY="1")
    log = open(Path(runs) / "app.log", "w")
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=environment, cwd=ROOT, stdout=log, stderr=log)
    try:
        client = None
        for _ in range(300):
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception as error:  # not serving yet
                last_error = error
                time.sleep(0.5)
        if client is None:
            raise SystemExit(f"the app did not start within 150 s ({last_error}); its log: {log.name}")
        idle = memory_mib(app.pid)
        job = client.predict({"preset": "standard", "epochs": arguments.epochs}, api_name="/start_comparison")
        peak_sampled, status, last_poll = 0.0, {}, 0.0
        while True:
            peak_sampled = max(peak_sampled, memory_mib(app.pid)["VmRSS"])
            if time.monotonic() - last_poll > 3.0:  # the status call costs the busy server more than a sample
                last_poll = time.monotonic()
                try:
                    status = client.predict(job["job_id"], api_name="/job_status")
                except Exception as error:  # a slow answer on a loaded host: ask again later
                    print(f"status not read this time: {type(error).__name__}", file=sys.stderr)
                    continue
                if status["status"] in ("done", "failed", "cancelled", "diverged", "interrupted"):
                    break
            time.sleep(0.2)
        final = memory_mib(app.pid)
        result = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu_model": cpu_model(),
            "job": {"preset": "standard", "epochs": arguments.epochs, "status": status["status"],
                    "model": status["config"]["model"], "losses": status["config"]["losses"]},
            "idle_rss_mib": round(idle["VmRSS"], 1), "peak_rss_sampled_mib": round(peak_sampled, 1),
            "peak_rss_high_water_mib": round(final["VmHWM"], 1), "limit_mib": 2048,
        }
        print(json.dumps(result, indent=1))
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        app.terminate()
        app.wait(timeout=60)


if __name__ == "__main__":
    main()
