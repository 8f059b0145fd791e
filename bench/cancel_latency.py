"""How long Stop takes: seconds from `JobManager.cancel()` to the job reading `cancelled`, over repeats.

The worker checks the stop flag after every optimiser step and inside evaluation, so the latency is about one
step (both models) plus writing the run directory. The unit test counts steps instead of seconds
(tests/test_jobs.py), because seconds depend on how busy the machine is; this script gives the seconds.

Usage (from the repository root; needs no data, it trains on the synthetic set):
    python bench/cancel_latency.py [--repeats 10] [--dataset synthetic] [--data-dir DIR]
        [--output bench/cancel_latency_results.json]   (one section per dataset, the others kept)

With `--dataset cifar10 --data-dir DIR` it cancels a `quick`-preset CIFAR-10 job instead, whose steps are
the ones people actually stop. The load average is recorded next to the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

from cce_demo.config import TrainConfig, preset  # noqa: E402
from cce_demo.jobs import JobManager  # noqa: E402
from cce_demo.reproduce import hardware  # noqa: E402
from cce_demo.status import JobStatus  # noqa: E402


def job_config(dataset: str) -> TrainConfig:
    if dataset == "synthetic":
        # Many epochs of a small synthetic set: still running whenever the benchmark cancels it.
        return TrainConfig(
            dataset="synthetic", imbalance_ratio=2.0, epochs=500, batch_size=64, learning_rate=0.05,
            warmup_epochs=0.0, device="cpu", max_per_class=40, synthetic_test_per_class=10,
        )
    return preset("quick").replace(dataset=dataset, device="cpu")


def wait_for_first_steps(manager: JobManager, job_id: str, steps: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    version = -1
    while time.monotonic() < deadline:
        snapshot = manager.wait_for_change(job_id, version, timeout=max(0.0, deadline - time.monotonic()))
        if snapshot.status == JobStatus.RUNNING and snapshot.steps and snapshot.steps[-1]["global_step"] >= steps:
            return
        if snapshot.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            raise RuntimeError(f"job ended before it could be cancelled: {snapshot.status} {snapshot.error}")
        version = snapshot.version
    raise RuntimeError("the job did not start in time")


def measure(repeats: int, dataset: str, data_dir: str | None) -> dict:
    config = job_config(dataset)
    latencies = []
    with tempfile.TemporaryDirectory() as runs:
        manager = JobManager(Path(runs), data_dir=data_dir, allow_download=False, worker_niceness=0)
        try:
            for _ in range(repeats):
                job_id = manager.submit(config)
                wait_for_first_steps(manager, job_id, steps=5)
                started = time.monotonic()
                manager.cancel(job_id)
                snapshot = manager.wait(job_id, timeout=120)
                latencies.append(time.monotonic() - started)
                if snapshot.status != JobStatus.CANCELLED:
                    raise RuntimeError(f"expected a cancelled job, got {snapshot.status}")
        finally:
            manager.shutdown()
    return {
        "dataset": dataset, "repeats": repeats,
        "median_seconds": round(statistics.median(latencies), 3), "max_seconds": round(max(latencies), 3),
        "seconds": [round(value, 3) for value in latencies],
        "load_average_1min": round(os.getloadavg()[0], 2), "cpu": hardware("cpu")["cpu"], "cpu_count": os.cpu_count(),
        "torch_threads": __import__("torch").get_num_threads(), "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dataset", default="synthetic", choices=("synthetic", "cifar10"))
    parser.add_argument("--data-dir", default=None, help="folder with cifar10/train.npz (for --dataset cifar10)")
    parser.add_argument("--output", default=str(REPOSITORY_ROOT / "bench" / "cancel_latency_results.json"))
    arguments = parser.parse_args(argv)
    result = measure(arguments.repeats, arguments.dataset, arguments.data_dir)
    print(json.dumps(result, indent=2))
    # One section per dataset, so the synthetic and the CIFAR-10 figures live side by side.
    output = Path(arguments.output)
    sections = json.loads(output.read_text()) if output.exists() else {}
    sections[arguments.dataset] = result
    output.write_text(json.dumps(sections, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
