"""How good the job-time estimate and the ETA are, on real CIFAR-10, and where the estimate's numbers come from.

Three modes (each adds its section to --output, keeping the others):

--calibrate   Measures the per-model costs that `cce_demo.budget.CALIBRATION` holds: the engine's own loop
              (`train_paired`, losses ce+cce, channels_last) for resnet8/20/32 at batch sizes 1, 32, 128 and
              256 on a balanced CIFAR-10 subset, one epoch each, timing every step event and the evaluation
              that follows (on a 1000-image test subset, batch 500). Per model it fits
              step_seconds = models * (per_step + batch * per_image) by relative least squares, and times a
              cold load of the dataset. Prints the table to paste.
              --clock wall (default) times what the app sees, at the app's thread count: right on a quiet
              machine. --clock cpu --threads 1 times the thread's CPU time instead, which a competing process
              barely changes, and converts it to the app's 2-thread wall time with one measured factor: the
              1-thread CPU time of bench/benchmark.py's training step (resnet8, batch 128) against that
              benchmark's quiet 2-thread throughput in bench/results.json. Per-step overhead is not divided by
              the factor (a second thread does not speed up operator dispatch).
--presets     Runs presets (default: quick and standard) through the JobManager as the app does (worker
              niceness 0) and compares the estimate made at submit with the measured wall time (submit to
              finish) and the process's CPU time. With --threads 1 the CPU time is compared with the 1-thread
              table of the last --clock cpu calibration: a check of the cost model that load does not blur.
              Target: within +-30 %. With --probe the manager first runs the app's start-up speed probe
              (cce_demo/speed_probe.py), so the estimate is the one the app shows on this host.
--eta         Runs the quick preset through the JobManager, records the snapshot's progress and ETA every
              second, and compares the ETA shown at 25 %, 50 % and 75 % progress with the time that really
              remained. Target: within +-30 % at 25 %. With --busy-at 0.5 (issue 20) two busy background
              processes (`BUSY_PROCESSES`, pure Python loops) start when the job reaches half its progress and
              stop when it ends: the ETA must follow the load change (issue 20's target: within +-25 % at 25 %,
              quiet and under that load; `ETA_TARGET_RELATIVE_ERROR`).

The load average (os.getloadavg) is sampled throughout: on a shared machine every wall-clock figure depends on it.

Usage (from the repository root; `standard` takes about 10 minutes on a quiet machine, so run it in the background):
    python bench/estimate_accuracy.py --calibrate --data-dir DIR [--clock cpu --threads 1]
    nohup python bench/estimate_accuracy.py --presets quick standard --data-dir DIR > presets.log 2>&1 &
    python bench/estimate_accuracy.py --presets quick --probe --data-dir DIR   # the app's estimate, probe included
    python bench/estimate_accuracy.py --eta --data-dir DIR
    python bench/estimate_accuracy.py --eta --busy-at 0.5 --data-dir DIR   # 2 busy processes from half-way
    python bench/estimate_accuracy.py --quiet-reference --data-dir DIR   # the estimate vs bench/results.json's quick run
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
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
from cce_demo.data import Dataset, augment_batch, load_dataset, long_tail_subset, to_model_input  # noqa: E402
from cce_demo.engine import train_paired  # noqa: E402
from cce_demo.jobs import JobManager  # noqa: E402
from cce_demo.models import build_model  # noqa: E402
from cce_demo.provenance import cpu_model  # noqa: E402

DEFAULT_OUTPUT = REPOSITORY_ROOT / "bench" / "estimate_results.json"
BENCHMARK_RESULTS = REPOSITORY_ROOT / "bench" / "results.json"  # the quiet 2-thread anchor (bench/benchmark.py)
MODELS = ("resnet8", "resnet20", "resnet32")
# batch size -> full steps timed (after WARMUP_STEPS); enough for a stable mean, little enough to finish fast.
BATCH_POINTS = {1: 40, 32: 12, 128: 6, 256: 4}
WARMUP_STEPS = 2
CALIBRATION_TEST_PER_CLASS = 100
TARGET_RELATIVE_ERROR = 0.30
ETA_TARGET_RELATIVE_ERROR = 0.25  # issue 20: the ETA at 25 % of a quick job, quiet and under load
BUSY_PROCESSES = 2  # issue 20: "2 busy background processes started halfway through"
SAMPLES_KEPT_EVERY = 5  # of the once-a-second ETA samples, in the results file


# ---------------------------------------------------------------- environment and load



def environment_record() -> dict[str, Any]:
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
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


def timed_engine_run(config: TrainConfig, dataset: Dataset, clock) -> dict[str, Any]:
    """One epoch through `train_paired`; the per-step times of the full batches after warm-up, and the
    evaluation time (from the last step event to the epoch event), both on `clock`. The events arrive on
    the calling thread, so `time.thread_time` measures this training's own CPU time."""
    stamps: list[tuple[str, float]] = []
    train_paired(config, lambda event: stamps.append((event.kind, clock())), dataset=dataset)
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


def benchmark_step_seconds_per_image(dataset: Dataset, clock, batch_size: int = 128, steps: int = 8) -> float:
    """bench/benchmark.py's "project pipeline" training step (resnet8, plain CE, augment + to_model_input on
    the batch, channels_last), per image, on `clock`."""
    model = build_model("resnet8", dataset.num_classes, torch.Generator().manual_seed(0)).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    images, labels = dataset.train.images[: batch_size * (steps + 2)], dataset.train.labels[: batch_size * (steps + 2)]
    started = None
    for step in range(steps + 2):
        if step == 2:  # after warm-up
            started = clock()
        batch = slice(step * batch_size, (step + 1) * batch_size)
        inputs = to_model_input(augment_batch(images[batch], generator), *dataset.normalisation)
        loss = torch.nn.functional.cross_entropy(model(inputs), labels[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return (clock() - started) / (steps * batch_size)


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


def calibrate(data_dir: str, clock_name: str, models: tuple[str, ...] = MODELS) -> dict[str, Any]:
    clock = time.thread_time if clock_name == "cpu" else time.perf_counter
    environment = environment_record()
    with LoadSampler() as load:
        started = clock()
        full = load_dataset("cifar10", data_dir, allow_download=False)
        standard = preset("standard")
        long_tail_subset(full.train, full.num_classes, standard.imbalance_ratio, standard.profile, standard.subset_seed)
        data_seconds = clock() - started
        labels = full.test.labels
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:CALIBRATION_TEST_PER_CLASS] for c in range(full.num_classes)])
        dataset = Dataset(full.name, full.class_names, full.train, full.test.subset(keep.sort().values), full.source)
        points: dict[str, list[dict[str, Any]]] = {}
        fits: dict[str, dict[str, float]] = {}
        for model in models:
            points[model] = []
            for batch_size, steps in BATCH_POINTS.items():
                images = batch_size * (steps + WARMUP_STEPS + 1)
                config = TrainConfig(
                    dataset="cifar10", imbalance_ratio=1.0, max_per_class=max(1, -(-images // 10)), model=model,
                    epochs=1, batch_size=batch_size, warmup_epochs=0.0, device="cpu", losses=("ce", "cce"),
                )
                point = timed_engine_run(config, dataset, clock)
                points[model].append(point)
                print(f"{model:9s} batch {batch_size:4d}: {point['mean_step_seconds'] * 1000:8.1f} ms/step (pair), "
                      f"eval {point['evaluation_seconds'] / point['evaluation_images'] * 1e6:6.1f} us/image "
                      f"[{clock_name}, load {os.getloadavg()[0]:.1f}]", flush=True)
            fits[model] = fit_costs(points[model], models_per_step=2)
        factor = None
        if clock_name == "cpu":
            quiet = json.loads(BENCHMARK_RESULTS.read_text())
            quiet_seconds_per_image = 1 / quiet["throughput"]["project"]["images_per_second"]
            own_seconds_per_image = benchmark_step_seconds_per_image(dataset, clock)
            factor = own_seconds_per_image / quiet_seconds_per_image
            print(f"benchmark step: {own_seconds_per_image * 1e6:.1f} us/image here ({clock_name}, {torch.get_num_threads()} "
                  f"thread(s)) vs {quiet_seconds_per_image * 1e6:.1f} us/image quiet at {quiet['environment']['torch_threads']} "
                  f"threads ({quiet['environment']['timestamp']}): factor {factor:.2f}")
    table = {
        model: {
            "train_seconds_per_image": fit["train_seconds_per_image"] / (factor or 1),
            "train_seconds_per_step": fit["train_seconds_per_step"],
            "eval_seconds_per_image": fit["eval_seconds_per_image"] / (factor or 1),
        }
        for model, fit in fits.items()
    }
    print("\nPaste into cce_demo/budget.py CALIBRATION (cpu):")
    for model, costs in table.items():
        print(f'        (_CPU, "{model}"): ModelCost(train_seconds_per_image={costs["train_seconds_per_image"]:.3g}, '
              f'train_seconds_per_step={costs["train_seconds_per_step"]:.3g}, eval_seconds_per_image={costs["eval_seconds_per_image"]:.3g}),')
    print(f"data seconds (cold CIFAR-10 load + long-tail subset, {clock_name}): {data_seconds:.2f}")
    return {"environment": environment, "clock": clock_name, "load_average": load.summary(), "data_seconds": data_seconds,
            "points": points, "fit": fits, "two_thread_factor": factor, "table": table}


def calibration_from_fit(section: dict[str, Any]) -> budget.Calibration:
    """The unscaled fit of a calibration run (e.g. 1-thread CPU seconds), as a table for the estimate."""
    return budget.calibration(
        costs={("cpu", model): budget.ModelCost(**fit) for model, fit in section["fit"].items()},
        data_seconds={("cifar10", "cpu"): section["data_seconds"]}, measured={"cpu"},
        where={"cpu": f"({section['clock']} time, as calibrated)"},
    )


# ---------------------------------------------------------------- presets and the ETA through the job manager


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _busy_loop() -> None:  # a competing process: pure CPU, no memory to speak of
    while True:
        pass


class BusyBackground:
    """`count` busy processes, started by `start()` (once) and ended on exit: the load change of issue 20."""

    def __init__(self, count: int) -> None:
        self.count, self.processes, self.started_at = count, [], None

    def start(self) -> None:
        import multiprocessing

        if self.processes:
            return
        self.started_at = time.time()
        for _ in range(self.count):
            process = multiprocessing.get_context("spawn").Process(target=_busy_loop, daemon=True)
            process.start()
            self.processes.append(process)

    def __enter__(self) -> "BusyBackground":
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.processes:  # only the processes this object started, by their handle
            process.terminate()
            process.join(timeout=5)


def run_job(config: TrainConfig, data_dir: str, threads: int | None, sample_every: float | None = None,
            calibration: budget.Calibration | None = None, probe: bool = False,
            on_sample: Any = None) -> dict[str, Any]:
    """Submit `config` to a fresh JobManager and wait; optionally record (time, progress, eta) every
    `sample_every` seconds. Times are wall-clock (time.time), like the snapshot's; the process's CPU time
    over the job is recorded too. With `probe` the manager first runs the app's start-up speed probe, so the
    estimate is the one the app makes."""
    samples: list[dict[str, Any]] = []
    extra = {"calibration": calibration} if calibration is not None else {}
    with tempfile.TemporaryDirectory(prefix="cce-estimate-") as runs:
        manager = JobManager(runs, data_dir=data_dir, allow_download=False, worker_niceness=0, torch_threads=threads, **extra)
        try:
            factor = manager.time_this_host() if probe else None
            estimate = manager.estimate(config)
            cpu_before = process_cpu_seconds()
            job_id = manager.submit(config)
            while True:
                snapshot = manager.wait(job_id, timeout=sample_every if sample_every else None)
                if sample_every:
                    samples.append({"time": time.time(), "status": str(snapshot.status), "progress": snapshot.progress,
                                    "eta_seconds": snapshot.eta_seconds})
                    if on_sample is not None:
                        on_sample(snapshot)
                if snapshot.is_finished:
                    break
            cpu_seconds = process_cpu_seconds() - cpu_before
        finally:
            manager.shutdown()
    return {"estimate": estimate, "snapshot": snapshot, "samples": samples, "cpu_seconds": cpu_seconds,
            "speed_probe_factor": factor}


def estimate_record(estimate: budget.CostEstimate) -> dict[str, float]:
    return {"total": estimate.total_seconds, "data": estimate.data_seconds, "training": estimate.training_seconds,
            "evaluation": estimate.evaluation_seconds}


def cpu_time_check(config: TrainConfig, cpu_seconds: float, threads: int | None, results: dict[str, Any]) -> dict[str, Any] | None:
    """With 1 thread, the job's CPU time against the estimate from the 1-thread CPU-time calibration."""
    section = results.get("calibration")
    if threads != 1 or not section or section.get("clock") != "cpu":
        return None
    estimate = budget.estimate_seconds(config, "cpu", calibration=calibration_from_fit(section))
    return {"estimate_cpu_seconds": estimate_record(estimate), "measured_cpu_seconds": cpu_seconds,
            "ratio_measured_over_estimate": cpu_seconds / estimate.total_seconds,
            "within_target": abs(cpu_seconds / estimate.total_seconds - 1) <= TARGET_RELATIVE_ERROR}


def compare_presets(names: list[str], data_dir: str, threads: int | None, results: dict[str, Any],
                    probe: bool = False) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        config = preset(name, device="cpu")
        with LoadSampler() as load:
            outcome = run_job(config, data_dir, threads, probe=probe)
        snapshot, estimate = outcome["snapshot"], outcome["estimate"]
        measured = snapshot.finished_at - snapshot.submitted_at
        row = {
            "preset": name, "status": str(snapshot.status), "torch_threads": threads or torch.get_num_threads(),
            "estimate_seconds": estimate_record(estimate), "speed_probe_factor": outcome["speed_probe_factor"],
            "measured_wall_seconds": measured, "ratio_wall_over_estimate": measured / estimate.total_seconds,
            "wall_within_target": abs(measured / estimate.total_seconds - 1) <= TARGET_RELATIVE_ERROR,
            "process_cpu_seconds": outcome["cpu_seconds"],
            "cpu_time_check": cpu_time_check(config, outcome["cpu_seconds"], threads, results),
            "load_average": load.summary(), "timestamp": environment_record()["timestamp"],
        }
        rows.append(row)
        print(f"{name}: estimate {estimate.total_seconds:.0f} s (speed probe factor {outcome['speed_probe_factor']}), wall {measured:.0f} s "
              f"(ratio {row['ratio_wall_over_estimate']:.2f}), CPU {outcome['cpu_seconds']:.0f} s, "
              f"load {row['load_average']['mean']:.2f}; CPU-time check: {row['cpu_time_check']}", flush=True)
    return rows


def eta_accuracy(data_dir: str, threads: int | None, results: dict[str, Any], busy_at: float | None = None) -> dict[str, Any]:
    config = preset("quick", device="cpu")
    with LoadSampler() as load, BusyBackground(BUSY_PROCESSES if busy_at is not None else 0) as busy:
        def on_sample(snapshot) -> None:
            if busy_at is not None and snapshot.progress >= busy_at:
                busy.start()

        # With the start-up speed probe first, as the app runs it.
        outcome = run_job(config, data_dir, threads, sample_every=1.0, on_sample=on_sample, probe=True)
    snapshot, samples = outcome["snapshot"], outcome["samples"]
    finished = snapshot.finished_at
    running = [s for s in samples if s["status"] == "running" and s["eta_seconds"] is not None]
    picks = {f"{fraction:.0%}": next((s for s in running if s["progress"] >= fraction), None) for fraction in (0.25, 0.5, 0.75)}
    if busy.started_at is not None:
        # How fast the ETA follows the load: the first sample a pace window (plus 10 s) after the load began.
        after = busy.started_at + budget.PACE_WINDOW_SECONDS + 10
        picks["load + 70 s"] = next((s for s in running if s["time"] >= after), None)
    checkpoints = {}
    for name, sample in picks.items():
        if sample is None:
            continue
        remaining = finished - sample["time"]
        checkpoints[name] = {
            "progress": sample["progress"], "eta_seconds": sample["eta_seconds"], "actual_remaining_seconds": remaining,
            "relative_error": sample["eta_seconds"] / remaining - 1,
            "within_target": abs(sample["eta_seconds"] / remaining - 1) <= ETA_TARGET_RELATIVE_ERROR,
        }
        print(f"at {sample['progress']:.0%}: ETA {sample['eta_seconds']:.0f} s, really {remaining:.0f} s "
              f"({sample['eta_seconds'] / remaining - 1:+.0%})", flush=True)
    return {
        "preset": "quick", "torch_threads": threads or torch.get_num_threads(),
        "estimate_seconds": estimate_record(outcome["estimate"]),
        "measured_wall_seconds": finished - snapshot.submitted_at, "process_cpu_seconds": outcome["cpu_seconds"],
        "cpu_time_check": cpu_time_check(config, outcome["cpu_seconds"], threads, results),
        "checkpoints": checkpoints, "load_average": load.summary(), "environment": environment_record(),
        "busy_processes": {"count": BUSY_PROCESSES, "at_progress": busy_at,
                           "started_at_seconds": busy.started_at - snapshot.submitted_at if busy.started_at else None}
        if busy_at is not None else None,
        "speed_probe_factor": outcome["speed_probe_factor"],
        "formula": "remaining estimated work x pace; the pace is the last minute's (budget.PACE_WINDOW_SECONDS) and "
                   "the estimate's own pace fades with real seconds (budget.PRIOR_SECONDS)",
        "samples": [{**s, "time": s["time"] - snapshot.submitted_at} for s in samples[::SAMPLES_KEPT_EVERY]],
    }


ETA_BEGIN = ("<!-- eta: generated by `python bench/estimate_accuracy.py --write README.md` from bench/estimate_results.json; "
             "do not edit by hand -->")
ETA_END = "<!-- end of generated eta -->"
ETA_FORMULA_SINCE = "the last minute's"  # runs recorded before the ETA used a recent pace say otherwise


def eta_conditions(run: dict[str, Any]) -> str:
    environment = run.get("environment") or {}
    busy = run.get("busy_processes")
    load = (run.get("load_average") or {}).get("mean")
    text = f"{environment.get('cpu_model', 'unknown CPU')}, {run.get('torch_threads')} torch threads"
    text += f", load average {load:.1f}" if isinstance(load, (int, float)) else ""
    if busy:
        text += f"; {busy['count']} busy processes from {100 * busy['at_progress']:.0f} % progress"
    else:
        text += "; no load added"
    return text


def eta_report(results: dict[str, Any]) -> str:
    """The README's ETA block: every --eta run recorded with the current pace rule, its conditions and how far
    the ETA was from the time that really remained, from the results file alone."""
    runs = [run for run in results.get("eta", []) if ETA_FORMULA_SINCE in run.get("formula", "")]
    lines = [ETA_BEGIN, "",
             f"The ETA of a `quick` job against the time that really remained (`python bench/estimate_accuracy.py --eta "
             f"[--busy-at 0.5] --data-dir DIR`; target ±{100 * ETA_TARGET_RELATIVE_ERROR:.0f} % at 25 %):", "",
             "| conditions | at 25 % | at 50 % | at 75 % | 70 s after the load began | job wall time |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        cells = []
        for name in ("25%", "50%", "75%", "load + 70 s"):
            point = run["checkpoints"].get(name)
            cells.append("—" if point is None else f"{100 * point['relative_error']:+.0f} % ({point['eta_seconds']:.0f} s vs "
                         f"{point['actual_remaining_seconds']:.0f} s)".replace("-", "−"))
        lines.append(f"| {eta_conditions(run)} | " + " | ".join(cells) + f" | {run['measured_wall_seconds']:.0f} s |")
    if not runs:
        lines.append("| not measured yet with the current ETA | — | — | — | — | — |")
    return "\n".join([*lines, ETA_END])


def write_eta_report(path: Path, results: dict[str, Any]) -> None:
    text = path.read_text()
    start, end = text.index(ETA_BEGIN), text.index(ETA_END) + len(ETA_END)
    path.write_text(text[:start] + eta_report(results) + text[end:])


def quiet_reference() -> dict[str, Any]:
    """The estimate against the one quiet end-to-end measurement on record: bench/benchmark.py's quick-preset
    run in bench/results.json (its config as it was then; evaluation of the whole test set every epoch)."""
    quiet = json.loads(BENCHMARK_RESULTS.read_text())
    config = TrainConfig.from_dict(quiet["quick_preset"]["config"])
    estimate = budget.estimate_seconds(config, "cpu")
    measured = quiet["quick_preset"]["seconds"]
    print(f"quiet reference (quick, {quiet['environment']['timestamp']}): estimate {estimate.total_seconds:.0f} s, "
          f"measured {measured:.0f} s, ratio {measured / estimate.total_seconds:.2f}")
    return {"source": "bench/results.json quick_preset", "measured_at": quiet["environment"]["timestamp"],
            "cpu_model": quiet["environment"]["cpu_model"], "torch_threads": quiet["environment"]["torch_threads"],
            "estimate_seconds": estimate_record(estimate), "measured_wall_seconds": measured,
            "ratio_wall_over_estimate": measured / estimate.total_seconds,
            "within_target": abs(measured / estimate.total_seconds - 1) <= TARGET_RELATIVE_ERROR}


# ---------------------------------------------------------------- main


def update_results(path: Path, section: str, value: Any) -> None:
    results = json.loads(path.read_text()) if path.exists() else {}
    results[section] = value
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with cifar10/train.npz and cifar10/test.npz")
    parser.add_argument("--calibrate", action="store_true", help="measure the per-model costs for budget.py")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated models to calibrate (default: %(default)s); a subset is kept in its own section")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="calibration clock (cpu needs --threads 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, as the app)")
    parser.add_argument("--presets", nargs="*", metavar="PRESET", help="compare estimate and wall time (default: quick standard)")
    parser.add_argument("--probe", action="store_true", help="with --presets: run the app's start-up speed probe first")
    parser.add_argument("--eta", action="store_true", help="ETA accuracy on the quick preset")
    parser.add_argument("--busy-at", type=float, default=None, metavar="FRACTION",
                        help="with --eta: start 2 busy background processes at this progress (0.5: half-way)")
    parser.add_argument("--quiet-reference", action="store_true", help="estimate vs the quiet run in bench/results.json")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--write", type=Path, metavar="README", help="rewrite the generated ETA block of this file")
    arguments = parser.parse_args(argv)
    if not (arguments.calibrate or arguments.presets is not None or arguments.eta or arguments.quiet_reference or arguments.write):
        parser.error("choose at least one of --calibrate, --presets, --eta, --quiet-reference, --write")
    if arguments.clock == "cpu" and arguments.threads != 1:
        parser.error("--clock cpu measures one thread's CPU time: use it with --threads 1")
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)

    def results() -> dict[str, Any]:
        return json.loads(arguments.output.read_text()) if arguments.output.exists() else {}

    if arguments.calibrate:
        models = tuple(name.strip() for name in arguments.models.split(",") if name.strip())
        # The default set replaces "calibration"; another set gets its own section, so the table's other rows
        # keep the points they were fitted on.
        section = "calibration" if models == MODELS else "calibration_" + "_".join(models)
        update_results(arguments.output, section, calibrate(arguments.data_dir, arguments.clock, models))
    if arguments.presets is not None:
        rows = compare_presets(arguments.presets or ["quick", "standard"], arguments.data_dir, arguments.threads, results(), probe=arguments.probe)
        def key(row: dict[str, Any]) -> tuple:
            return row["preset"], row.get("torch_threads"), row.get("speed_probe_factor") is not None

        kept = [row for row in results().get("presets", []) if key(row) not in {key(r) for r in rows}]
        update_results(arguments.output, "presets", kept + rows)
    if arguments.eta:  # kept as a list: each run saw its own load
        runs = results().get("eta", [])
        update_results(arguments.output, "eta", [*runs, eta_accuracy(arguments.data_dir, arguments.threads, results(), busy_at=arguments.busy_at)])
    if arguments.quiet_reference:
        update_results(arguments.output, "quiet_reference", quiet_reference())
    if arguments.write:
        write_eta_report(arguments.write, results())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
