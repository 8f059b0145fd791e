"""How good the job-time estimate and the ETA are, on real CIFAR-10, and where the estimate's numbers come from.

Three modes (each adds its section to --output, keeping the others):

--calibrate   Measures the per-model costs that `cce_demo.budget.CALIBRATION` holds: the engine's own loop
              (`train_paired`, losses ce+cce, channels_last, torch at its default thread count, as the app
              runs it) for resnet8/20/32 at batch sizes 1, 32, 128 and 256 on a balanced CIFAR-10 subset, one
              epoch each, timing every step event and the evaluation that follows (on a 2000-image test
              subset, batch 500). Per model it fits step_seconds = models * (per_step + batch * per_image) by
              relative least squares, and times a cold load of the dataset. Prints the table to paste.
--presets     Runs presets (default: quick and standard) through the JobManager exactly as the app does
              (worker niceness 0, so a competing process does not starve it) and compares the estimate made
              at submit with the measured wall time (submit to finish). Target: within +-30 %.
--eta         Runs the quick preset through the JobManager, records the snapshot's progress and ETA every
              second, and compares the ETA shown at 25 %, 50 % and 75 % progress with the time that really
              remained. Target: within +-30 % at 25 %.

The load average (os.getloadavg) is sampled throughout: on a shared machine every figure depends on it.

Usage (from the repository root; `standard` takes about 10 minutes, so run it in the background):
    python bench/estimate_accuracy.py --calibrate --data-dir DIR
    nohup python bench/estimate_accuracy.py --presets quick standard --data-dir DIR > presets.log 2>&1 &
    python bench/estimate_accuracy.py --eta --data-dir DIR
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:  # run as a script, Python puts bench/ on the path, not the root
    sys.path.insert(0, str(REPOSITORY_ROOT))

from cce_demo import budget  # noqa: E402
from cce_demo.config import TrainConfig, preset  # noqa: E402
from cce_demo.data import Dataset, ImageSplit, load_dataset, long_tail_subset  # noqa: E402
from cce_demo.engine import train_paired  # noqa: E402
from cce_demo.jobs import JobManager  # noqa: E402

DEFAULT_OUTPUT = REPOSITORY_ROOT / "bench" / "estimate_results.json"
MODELS = ("resnet8", "resnet20", "resnet32")
# batch size -> full steps timed (after WARMUP_STEPS); enough for a stable mean, little enough to finish fast.
BATCH_POINTS = {1: 60, 32: 30, 128: 16, 256: 10}
WARMUP_STEPS = 2
CALIBRATION_TEST_PER_CLASS = 200
TARGET_RELATIVE_ERROR = 0.30


# ---------------------------------------------------------------- environment and load


def cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment_record() -> dict[str, Any]:
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model_name(),
        "logical_cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg(),
    }


class LoadSampler:
    """Samples the 1-minute load average every few seconds in a thread, for the record."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        values = self.samples or [os.getloadavg()[0]]
        return {"min": min(values), "mean": statistics.fmean(values), "max": max(values), "samples": len(values)}


# ---------------------------------------------------------------- calibration


def timed_engine_run(config: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    """One epoch through `train_paired`; the per-step times of the full batches after warm-up, and the
    evaluation time (from the last step event to the epoch event)."""
    stamps: list[tuple[str, float]] = []
    train_paired(config, lambda event: stamps.append((event.kind, time.perf_counter())), dataset=dataset)
    steps = [stamp for kind, stamp in stamps if kind == "step"]
    epoch_stamp = next(stamp for kind, stamp in stamps if kind == "epoch")
    num_train = 10 * config.max_per_class
    full_steps = num_train // config.batch_size
    step_times = np.diff(steps[: full_steps])[WARMUP_STEPS - 1 :]  # differences between step events
    return {
        "batch_size": config.batch_size,
        "steps_timed": len(step_times),
        "mean_step_seconds": float(np.mean(step_times)),
        "median_step_seconds": float(np.median(step_times)),
        "evaluation_images": len(dataset.test) * len(config.losses),
        "evaluation_seconds": epoch_stamp - steps[-1],
    }


def fit_costs(points: list[dict[str, Any]], models_per_step: int) -> dict[str, float]:
    """per_step and per_image minimising the relative error of models * (per_step + batch * per_image)
    against the mean step times, and the per-image evaluation cost (median over the runs)."""
    batches = np.array([point["batch_size"] for point in points], dtype=float)
    times = np.array([point["mean_step_seconds"] for point in points]) / models_per_step
    rows = np.stack([1 / times, batches / times], axis=1)
    (per_step, per_image), *_ = np.linalg.lstsq(rows, np.ones(len(points)), rcond=None)
    if per_step < 0:  # a fit that says overhead is negative: fall back to a pure per-image cost
        per_step, per_image = 0.0, float(np.sum(batches * times) / np.sum(batches**2))
    evaluation = statistics.median(point["evaluation_seconds"] / point["evaluation_images"] for point in points)
    return {"train_seconds_per_image": float(per_image), "train_seconds_per_step": float(per_step), "eval_seconds_per_image": evaluation}


def calibrate(data_dir: str) -> dict[str, Any]:
    environment = environment_record()
    with LoadSampler() as load:
        started = time.perf_counter()
        full = load_dataset("cifar10", data_dir, allow_download=False)
        standard = preset("standard")
        long_tail_subset(full.train, full.num_classes, standard.imbalance_ratio, standard.profile, standard.subset_seed)
        data_seconds = time.perf_counter() - started
        labels = full.test.labels
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:CALIBRATION_TEST_PER_CLASS] for c in range(full.num_classes)])
        dataset = Dataset(full.name, full.class_names, full.train, full.test.subset(keep.sort().values), full.source)
        points: dict[str, list[dict[str, Any]]] = {}
        fits: dict[str, dict[str, float]] = {}
        for model in MODELS:
            points[model] = []
            for batch_size, steps in BATCH_POINTS.items():
                images = batch_size * (steps + WARMUP_STEPS + 1)
                config = TrainConfig(
                    dataset="cifar10", imbalance_ratio=1.0, max_per_class=max(1, -(-images // 10)), model=model,
                    epochs=1, batch_size=batch_size, warmup_epochs=0.0, device="cpu", losses=("ce", "cce"),
                )
                point = timed_engine_run(config, dataset)
                points[model].append(point)
                print(f"{model:9s} batch {batch_size:4d}: {point['mean_step_seconds'] * 1000:8.1f} ms/step (pair), "
                      f"eval {point['evaluation_seconds'] / point['evaluation_images'] * 1e6:6.1f} us/image", flush=True)
            fits[model] = fit_costs(points[model], models_per_step=2)
    print("\nPaste into cce_demo/budget.py CALIBRATION (cpu):")
    for model, fit in fits.items():
        print(f'        (_CPU, "{model}"): ModelCost(train_seconds_per_image={fit["train_seconds_per_image"]:.3g}, '
              f'train_seconds_per_step={fit["train_seconds_per_step"]:.3g}, eval_seconds_per_image={fit["eval_seconds_per_image"]:.3g}),')
    print(f"data seconds (cold CIFAR-10 load + long-tail subset): {data_seconds:.2f}")
    return {"environment": environment, "load_average": load.summary(), "data_seconds": data_seconds,
            "points": points, "fit": fits}


# ---------------------------------------------------------------- presets and the ETA through the job manager


def run_job(config: TrainConfig, data_dir: str, sample_every: float | None = None) -> dict[str, Any]:
    """Submit `config` to a fresh JobManager and wait; optionally record (time, progress, eta) every
    `sample_every` seconds. Times are wall-clock (time.time), like the snapshot's."""
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cce-estimate-") as runs:
        manager = JobManager(runs, data_dir=data_dir, allow_download=False, worker_niceness=0)
        try:
            estimate = manager.estimate(config)
            job_id = manager.submit(config)
            while True:
                snapshot = manager.wait(job_id, timeout=sample_every if sample_every else None)
                if sample_every:
                    samples.append({"time": time.time(), "status": str(snapshot.status), "progress": snapshot.progress,
                                    "eta_seconds": snapshot.eta_seconds})
                if snapshot.is_finished:
                    break
        finally:
            manager.shutdown()
    return {"estimate": estimate, "snapshot": snapshot, "samples": samples}


def compare_presets(names: list[str], data_dir: str) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        config = preset(name, device="cpu")
        with LoadSampler() as load:
            outcome = run_job(config, data_dir)
        snapshot, estimate = outcome["snapshot"], outcome["estimate"]
        measured = snapshot.finished_at - snapshot.submitted_at
        row = {
            "preset": name, "status": str(snapshot.status),
            "estimate_seconds": estimate.total_seconds,
            "estimate_parts": {"data": estimate.data_seconds, "training": estimate.training_seconds,
                               "evaluation": estimate.evaluation_seconds},
            "measured_seconds": measured, "ratio_measured_over_estimate": measured / estimate.total_seconds,
            "within_target": abs(measured / estimate.total_seconds - 1) <= TARGET_RELATIVE_ERROR,
            "load_average": load.summary(), "timestamp": environment_record()["timestamp"],
        }
        rows.append(row)
        print(f"{name}: estimate {estimate.total_seconds:.0f} s, measured {measured:.0f} s, "
              f"ratio {row['ratio_measured_over_estimate']:.2f}, load {row['load_average']['mean']:.2f}", flush=True)
    return rows


def eta_accuracy(data_dir: str) -> dict[str, Any]:
    config = preset("quick", device="cpu")
    with LoadSampler() as load:
        outcome = run_job(config, data_dir, sample_every=1.0)
    snapshot, samples = outcome["snapshot"], outcome["samples"]
    finished = snapshot.finished_at
    checkpoints = {}
    for fraction in (0.25, 0.5, 0.75):
        sample = next((s for s in samples if s["status"] == "running" and s["progress"] >= fraction and s["eta_seconds"] is not None), None)
        if sample is None:
            continue
        remaining = finished - sample["time"]
        checkpoints[f"{fraction:.0%}"] = {
            "progress": sample["progress"], "eta_seconds": sample["eta_seconds"], "actual_remaining_seconds": remaining,
            "relative_error": sample["eta_seconds"] / remaining - 1,
        }
        print(f"at {sample['progress']:.0%}: ETA {sample['eta_seconds']:.0f} s, really {remaining:.0f} s "
              f"({sample['eta_seconds'] / remaining - 1:+.0%})", flush=True)
    return {
        "preset": "quick", "estimate_seconds": outcome["estimate"].total_seconds,
        "measured_seconds": finished - snapshot.submitted_at, "checkpoints": checkpoints,
        "load_average": load.summary(), "environment": environment_record(),
        "samples": [{**s, "time": s["time"] - snapshot.submitted_at} for s in samples],
    }


# ---------------------------------------------------------------- main


def update_results(path: Path, section: str, value: Any) -> None:
    results = json.loads(path.read_text()) if path.exists() else {}
    results[section] = value
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with cifar10/train.npz and cifar10/test.npz")
    parser.add_argument("--calibrate", action="store_true", help="measure the per-model costs for budget.py")
    parser.add_argument("--presets", nargs="*", metavar="PRESET", help="compare estimate and wall time (default: quick standard)")
    parser.add_argument("--eta", action="store_true", help="ETA accuracy on the quick preset")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    arguments = parser.parse_args(argv)
    if not (arguments.calibrate or arguments.presets is not None or arguments.eta):
        parser.error("choose at least one of --calibrate, --presets, --eta")
    if arguments.calibrate:
        update_results(arguments.output, "calibration", calibrate(arguments.data_dir))
    if arguments.presets is not None:
        rows = compare_presets(arguments.presets or ["quick", "standard"], arguments.data_dir)
        results = json.loads(arguments.output.read_text()) if arguments.output.exists() else {}
        kept = [row for row in results.get("presets", []) if row["preset"] not in {r["preset"] for r in rows}]
        update_results(arguments.output, "presets", kept + rows)
    if arguments.eta:
        update_results(arguments.output, "eta", eta_accuracy(arguments.data_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
