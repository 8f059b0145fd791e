"""Speed benchmark of the training pipeline on the real CIFAR-10 data, in one process.

What it measures (each against a target, printed as PASS or MISS; the script reports and always exits 0):

1. Training throughput of the default net (PRESETS["quick"].model) on the long-tailed CIFAR-10 subset
   (exp profile, ratio 100), batch 128, plain cross entropy, one SGD Nesterov step per batch:
   - project pipeline: the subset held as one uint8 NHWC tensor, `augment_batch` + `to_model_input` on the
     whole batch, the model in channels_last memory;
   - seed-style pipeline: per-sample PIL images through torchvision's RandomCrop / RandomHorizontalFlip /
     ToTensor / Normalize in a DataLoader (2 workers, shuffled), the model in contiguous NCHW memory.
   Both start from the same initial weights, warm up for a few steps (which also starts the DataLoader's
   workers) and are then timed over the same number of steps. Target: project / seed-style >= 1.3x.
2. The machine's fp32 matmul peak (best of several 2048x2048 torch.mm at torch's default thread count) and
   the fraction of it that the project pipeline's training step achieves: forward FLOPs per image counted
   by `FlopCounterMode` (convolutions and matmuls), times 3 for forward + backward, times images/s, over
   the peak. Target: >= 50 %.
3. Wall time of the `quick` preset end to end (`train_paired` on the CPU, data loading and evaluation
   included; it runs first, so the dataset is read from disk as in a fresh run). Target: <= 120 s.
   `--skip-quick` leaves it out for fast checks.
4. Peak resident memory of the process.

Usage (from the repository root):
    python bench/benchmark.py --data-dir DIR [--steps 60] [--skip-quick] [--output bench/results.json]

The printed report is for people; the JSON written to --output holds the same numbers plus the environment
(torch version, thread count, CPU model, timestamp) so runs on different machines can be compared.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# Run as a script, Python puts bench/ (not the repository root) on the path; the package is not installed.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from cce_demo import config as project_config  # noqa: E402  (needs the path set above)
from cce_demo import data as project_data  # noqa: E402
from cce_demo import engine  # noqa: E402
from cce_demo.models import build_model  # noqa: E402
from cce_demo.provenance import cpu_model  # noqa: E402

DATASET_NAME = "cifar10"
IMBALANCE_RATIO = 100.0
PROFILE = "exp"
SUBSET_SEED = 0
MODEL_SEED = 0
LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
SEED_STYLE_WORKERS = 2

SPEEDUP_TARGET = 1.3
PEAK_FRACTION_TARGET = 0.5
QUICK_PRESET_TARGET_SECONDS = 120.0


# ---------------------------------------------------------------- environment



def environment_record() -> dict[str, Any]:
    import torchvision  # imported here: only the seed-style pipeline and this record need it

    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "logical_cpus": len(os.sched_getaffinity(0)),
    }


def peak_rss_mebibytes(who: int = resource.RUSAGE_SELF) -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(who).ru_maxrss / 1024


# ---------------------------------------------------------------- shared training pieces


def fresh_model(model_name: str, num_classes: int) -> nn.Module:
    """The default net with fixed initial weights, so both pipelines train the same starting point."""
    return build_model(model_name, num_classes, torch.Generator().manual_seed(MODEL_SEED))


def make_optimiser(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
    )


def training_step(model: nn.Module, optimiser: torch.optim.Optimizer, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    loss = F.cross_entropy(model(inputs), targets)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


def timed_training(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]], model: nn.Module, warmup_steps: int, steps: int
) -> dict[str, float]:
    """Warm up, then time `steps` training steps including the time to produce each batch (that is the
    point of comparing pipelines). On the CPU every step is synchronous, so wall time is step time."""
    model.train()
    optimiser = make_optimiser(model)
    for _ in range(warmup_steps):
        training_step(model, optimiser, *next(batches))
    images = 0
    started = time.perf_counter()
    for _ in range(steps):
        inputs, targets = next(batches)
        training_step(model, optimiser, inputs, targets)
        images += targets.shape[0]
    elapsed = time.perf_counter() - started
    return {"images": images, "seconds": elapsed, "images_per_second": images / elapsed}


# ---------------------------------------------------------------- project pipeline


def project_batches(
    train: project_data.ImageSplit, normalisation: tuple, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches exactly as the engine makes them: index the uint8 tensor, augment the whole
    batch with tensor ops, normalise into channels_last float."""
    generator = torch.Generator().manual_seed(MODEL_SEED)
    while True:
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), batch_size):
            indices = order[start : start + batch_size]
            images = project_data.augment_batch(train.images[indices], generator)
            yield project_data.to_model_input(images, *normalisation), train.labels[indices]


def measure_project_pipeline(
    train: project_data.ImageSplit, dataset: project_data.Dataset, model_name: str, batch_size: int,
    warmup_steps: int, steps: int,
) -> dict[str, float]:
    model = fresh_model(model_name, dataset.num_classes)
    batches = project_batches(train, dataset.normalisation, batch_size)
    return timed_training(batches, model, warmup_steps, steps)


# ---------------------------------------------------------------- seed-style pipeline


class PilImageDataset(torch.utils.data.Dataset):
    """Per-sample PIL images from a uint8 NHWC array, as torchvision's CIFAR10 dataset serves them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def seed_style_batches(
    train: project_data.ImageSplit, normalisation: tuple, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    from torchvision import transforms

    mean, std = normalisation
    transform = transforms.Compose([
        transforms.RandomCrop(project_data.IMAGE_SIZE, padding=project_data.CROP_PADDING),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    dataset = PilImageDataset(train.images.numpy(), train.labels.numpy(), transform)
    # persistent_workers: if --steps runs past one epoch the workers are not restarted inside the timing.
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=SEED_STYLE_WORKERS, persistent_workers=True,
        generator=torch.Generator().manual_seed(MODEL_SEED),
    )
    while True:
        yield from loader


def measure_seed_style_pipeline(
    train: project_data.ImageSplit, dataset: project_data.Dataset, model_name: str, batch_size: int,
    warmup_steps: int, steps: int,
) -> dict[str, float]:
    model = fresh_model(model_name, dataset.num_classes).to(memory_format=torch.contiguous_format)
    batches = seed_style_batches(train, dataset.normalisation, batch_size)
    try:
        return timed_training(batches, model, warmup_steps, steps)
    finally:
        batches.close()  # shuts the DataLoader's workers down before the next measurement


# ---------------------------------------------------------------- compute efficiency


def matmul_peak_gflops(size: int, repeats: int) -> float:
    """Best-of-`repeats` fp32 GEMM rate: the practical ceiling for convolution-heavy training here."""
    generator = torch.Generator().manual_seed(0)
    left = torch.randn(size, size, generator=generator)
    right = torch.randn(size, size, generator=generator)
    output = torch.empty(size, size)
    torch.mm(left, right, out=output)  # first call pays for allocation and thread-pool start-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(left, right, out=output)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def training_flops_per_image(model_name: str, dataset: project_data.Dataset, batch_size: int) -> dict[str, float]:
    """Forward FLOPs per image as FlopCounterMode counts them (convolutions and matmuls; elementwise ops are
    not counted), and 3x that for a training step (backward costs about twice the forward)."""
    model = fresh_model(model_name, dataset.num_classes)
    images = dataset.train.images[:batch_size]
    inputs = project_data.to_model_input(images, *dataset.normalisation)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(inputs)
    forward = counter.get_total_flops() / images.shape[0]
    return {"forward_flops_per_image": forward, "training_flops_per_image": 3 * forward}


# ---------------------------------------------------------------- quick preset


def measure_quick_preset(data_dir: str) -> dict[str, Any]:
    settings = project_config.preset("quick", device="cpu")
    started = time.perf_counter()
    result = engine.train_paired(settings, data_dir=data_dir, allow_download=False)
    elapsed = time.perf_counter() - started
    final = result.evaluations.get(settings.seeds[-1], {})
    return {
        "seconds": elapsed,
        "status": result.status,
        "reason": result.reason,
        "balanced_accuracy": {name: evaluation.balanced_accuracy for name, evaluation in final.items()},
        "config": settings.to_dict(),
    }


# ---------------------------------------------------------------- report


def target_check(name: str, value: float | None, target: float, higher_is_better: bool, unit: str) -> dict[str, Any]:
    if value is None:
        passed = None
    else:
        passed = value >= target if higher_is_better else value <= target
    return {
        "name": name, "value": value, "target": target,
        "comparison": ">=" if higher_is_better else "<=", "unit": unit, "passed": passed,
    }


def format_report(results: dict[str, Any]) -> str:
    environment = results["environment"]
    throughput = results["throughput"]
    compute = results["compute"]
    quick = results["quick_preset"]
    lines = [
        "Training pipeline benchmark",
        f"  {environment['timestamp']}  torch {environment['torch_version']}, {environment['torch_threads']} threads, "
        f"{environment['cpu_model']}",
        f"  {results['settings']['model']} on CIFAR-10-LT ({PROFILE}, ratio {IMBALANCE_RATIO:g}, "
        f"{results['settings']['train_images']} images), batch {results['settings']['batch_size']}, "
        f"{results['settings']['steps']} timed steps after {results['settings']['warmup_steps']} warm-up",
        "",
        f"  project pipeline     {throughput['project']['images_per_second']:8.1f} images/s",
        f"  seed-style pipeline  {throughput['seed_style']['images_per_second']:8.1f} images/s",
        f"  speed-up             {throughput['speedup']:8.2f}x",
        "",
        f"  fp32 matmul peak     {compute['peak_gflops']:8.1f} GFLOP/s ({compute['matmul_size']}x{compute['matmul_size']})",
        f"  training FLOPs       {compute['training_flops_per_image'] / 1e6:8.1f} MFLOP per image (3x forward)",
        f"  achieved             {compute['achieved_gflops']:8.1f} GFLOP/s = {100 * compute['fraction_of_peak']:.1f} % of peak",
        "",
    ]
    if quick.get("skipped"):
        lines.append("  quick preset         skipped (--skip-quick)")
    else:
        accuracies = ", ".join(f"{name} {value:.3f}" for name, value in quick["balanced_accuracy"].items())
        lines.append(f"  quick preset         {quick['seconds']:8.1f} s end to end ({quick['status']}; balanced accuracy {accuracies})")
    lines += [f"  peak RSS             {results['memory']['peak_rss_mib']:8.1f} MiB", "", "Targets"]
    for check in results["targets"]:
        verdict = {True: "PASS", False: "MISS", None: "SKIP"}[check["passed"]]
        value = "—" if check["value"] is None else f"{check['value']:.3g}"
        lines.append(f"  {verdict}  {check['name']}: {value} {check['unit']} (target {check['comparison']} {check['target']:g} {check['unit']})")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder with cifar10/train.npz and cifar10/test.npz")
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per pipeline (default 60)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps before timing (default 5)")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size (default 128)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="square matrix size for the peak (default 2048)")
    parser.add_argument("--matmul-repeats", type=int, default=10, help="timed matmuls, best one counts (default 10)")
    parser.add_argument("--skip-quick", action="store_true", help="do not time the quick preset end to end")
    parser.add_argument("--epoch-options", action="store_true",
                        help="instead: time what could make an epoch cheaper (torch.compile, memory format, batch size, "
                        "evaluation) at 1 and 2 threads, interleaved; writes bench/epoch_options_results.json")
    parser.add_argument("--repeats", type=int, default=5, help="--epoch-options: interleaved repeats (default 5)")
    parser.add_argument("--option-steps", type=int, default=8, help="--epoch-options: steps per sample (default 8)")
    parser.add_argument("--output", default=str(REPOSITORY_ROOT / "bench" / "results.json"), help="JSON results file")
    arguments = parser.parse_args(argv)
    for name in ("steps", "batch_size", "matmul_size", "matmul_repeats"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if arguments.warmup_steps < 1:
        # At least one warm-up step: it starts the seed-style DataLoader's workers outside the timing.
        parser.error("--warmup-steps must be at least 1")
    return arguments


def run_benchmark(arguments: argparse.Namespace) -> dict[str, Any]:
    model_name = project_config.PRESETS["quick"].model
    # The quick preset runs first so that it reads the dataset from disk, as a fresh run would.
    quick = {"skipped": True} if arguments.skip_quick else measure_quick_preset(arguments.data_dir)

    dataset = project_data.load_dataset(DATASET_NAME, arguments.data_dir, allow_download=False)
    train, class_counts = project_data.long_tail_subset(
        dataset.train, dataset.num_classes, IMBALANCE_RATIO, PROFILE, SUBSET_SEED
    )
    pipeline_arguments = (train, dataset, model_name, arguments.batch_size, arguments.warmup_steps, arguments.steps)
    project = measure_project_pipeline(*pipeline_arguments)
    seed_style = measure_seed_style_pipeline(*pipeline_arguments)
    speedup = project["images_per_second"] / seed_style["images_per_second"]

    peak_gflops = matmul_peak_gflops(arguments.matmul_size, arguments.matmul_repeats)
    flops = training_flops_per_image(model_name, dataset, arguments.batch_size)
    achieved_gflops = flops["training_flops_per_image"] * project["images_per_second"] / 1e9
    fraction = achieved_gflops / peak_gflops

    quick_seconds = None if quick.get("skipped") else quick["seconds"]
    return {
        "environment": environment_record(),
        "settings": {
            "data_dir": str(arguments.data_dir), "model": model_name, "batch_size": arguments.batch_size,
            "steps": arguments.steps, "warmup_steps": arguments.warmup_steps, "imbalance_ratio": IMBALANCE_RATIO,
            "profile": PROFILE, "train_images": len(train), "class_counts": class_counts,
            "seed_style_workers": SEED_STYLE_WORKERS,
        },
        "throughput": {"project": project, "seed_style": seed_style, "speedup": speedup},
        "compute": {
            "matmul_size": arguments.matmul_size, "peak_gflops": peak_gflops, **flops,
            "achieved_gflops": achieved_gflops, "fraction_of_peak": fraction,
        },
        "quick_preset": quick,
        "memory": {
            "peak_rss_mib": peak_rss_mebibytes(),
            # The DataLoader workers are child processes; their peak is reported apart, not added.
            "peak_rss_children_mib": peak_rss_mebibytes(resource.RUSAGE_CHILDREN),
        },
        "targets": [
            target_check("project / seed-style throughput", speedup, SPEEDUP_TARGET, True, "x"),
            target_check("share of fp32 matmul peak", 100 * fraction, 100 * PEAK_FRACTION_TARGET, True, "%"),
            target_check("quick preset wall time", quick_seconds, QUICK_PRESET_TARGET_SECONDS, False, "s"),
        ],
    }


# ---------------------------------------------------------------- what makes an epoch cheaper (--epoch-options)

EPOCH_OPTIONS_OUTPUT = REPOSITORY_ROOT / "bench" / "epoch_options_results.json"


def epoch_option_variants(batch_size: int) -> list[dict[str, Any]]:
    """The ways to train an epoch of the standard preset's net that the comparison times; the first is what
    the engine does today. Every option would apply to every loss alike (the paired design is unchanged)."""
    return [
        {"name": "current: eager, channels_last", "batch_size": batch_size, "channels_last": True, "compile": False},
        {"name": "eager, contiguous NCHW", "batch_size": batch_size, "channels_last": False, "compile": False},
        {"name": f"eager, channels_last, batch {2 * batch_size}", "batch_size": 2 * batch_size, "channels_last": True, "compile": False},
        {"name": "torch.compile (inductor), channels_last", "batch_size": batch_size, "channels_last": True, "compile": True},
    ]


def _variant_runner(variant: dict[str, Any], model_name: str, train: project_data.ImageSplit,
                    dataset: project_data.Dataset) -> tuple[Callable[[int], float], float]:
    """A function that trains `steps` steps of this variant and returns images/s, and the seconds its
    preparation took (for torch.compile: the compilation, paid once per process and net)."""
    model = fresh_model(model_name, dataset.num_classes)
    memory = torch.channels_last if variant["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimiser = make_optimiser(model)
    batches = project_batches(train, dataset.normalisation, variant["batch_size"])
    forward = torch.compile(model) if variant["compile"] else model
    model.train()

    def step() -> int:
        inputs, targets = next(batches)
        inputs = inputs.contiguous(memory_format=memory)
        loss = F.cross_entropy(forward(inputs), targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return targets.shape[0]

    started = time.perf_counter()
    for _ in range(3):  # warm-up; compiles the compiled variant
        step()
    preparation = time.perf_counter() - started

    def run(steps: int) -> float:
        images, began = 0, time.perf_counter()
        for _ in range(steps):
            images += step()
        return images / (time.perf_counter() - began)

    return run, preparation


def _evaluation_seconds(model_name: str, dataset: project_data.Dataset, class_counts: tuple[int, ...],
                        images: int | None, flip: bool) -> float:
    model = fresh_model(model_name, dataset.num_classes).eval()
    split = dataset.test
    subset = engine.stratified_subset(split.labels, dataset.num_classes, images)
    if subset is not None:
        split = project_data.ImageSplit(split.images[subset], split.labels[subset])
    began = time.perf_counter()
    engine.evaluate(model, split, dataset.normalisation, class_counts, flip=flip)
    return time.perf_counter() - began


def measure_epoch_options(data_dir: str, repeats: int, steps: int, thread_counts: tuple[int, ...]) -> dict[str, Any]:
    """images/s of each variant at each thread count, interleaved (A B C D, A B C D, ...) so that a change in
    the machine's load hits all alike; the median of the repeats counts, as a ratio to the current way. Then
    the evaluation's share of an epoch: the standard preset's between-epoch scoring (a 2,000-image subset,
    with and without flip TTA) against the training time of one epoch of the subset."""
    standard = project_config.PRESETS["standard"]
    model_name = standard.model
    dataset = project_data.load_dataset(DATASET_NAME, data_dir, allow_download=False)
    train, class_counts = project_data.long_tail_subset(dataset.train, dataset.num_classes, IMBALANCE_RATIO, PROFILE, SUBSET_SEED)
    load_before = [round(value, 2) for value in os.getloadavg()]
    by_threads = {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        variants = epoch_option_variants(standard.batch_size)
        runners = [_variant_runner(variant, model_name, train, dataset) for variant in variants]
        samples: list[list[float]] = [[] for _ in variants]
        for _ in range(repeats):
            for index, (run, _) in enumerate(runners):
                # The same images per sample whatever the batch size.
                samples[index].append(run(max(1, steps * standard.batch_size // variants[index]["batch_size"])))
        medians = [float(np.median(values)) for values in samples]
        rows = [{**variant, "preparation_seconds": round(preparation, 2), "images_per_second": [round(v, 1) for v in values],
                 "median_images_per_second": round(median, 1), "ratio_to_current": round(median / medians[0], 3)}
                for variant, (_, preparation), values, median in zip(variants, runners, samples, medians)]
        epoch_training_seconds = len(train) / medians[0]
        evaluation = {
            f"{images or 'all'} images, flip {'on' if flip else 'off'}": round(
                float(np.median([_evaluation_seconds(model_name, dataset, tuple(class_counts), images, flip) for _ in range(repeats)])), 3)
            for images, flip in ((standard.epoch_eval_images, True), (standard.epoch_eval_images, False), (None, True))
        }
        by_threads[str(threads)] = {"variants": rows, "epoch_training_seconds": round(epoch_training_seconds, 2),
                                    "evaluation_seconds": evaluation}
    return {
        "environment": environment_record(), "model": model_name, "batch_size": standard.batch_size,
        "train_images": len(train), "repeats": repeats, "steps": steps, "load_average_before": load_before,
        "load_average_after": [round(value, 2) for value in os.getloadavg()], "threads": by_threads,
    }


def epoch_options_report(results: dict[str, Any]) -> str:
    lines = [f"Epoch options for {results['model']} (ratio-100 subset, {results['train_images']} images), "
             f"{results['environment'].get('cpu_model')}, load before/after {results['load_average_before']} / {results['load_average_after']}"]
    for threads, entry in results["threads"].items():
        lines.append(f"  {threads} thread(s): one epoch trains in {entry['epoch_training_seconds']} s per model")
        for row in entry["variants"]:
            lines.append(f"    {row['name']:<44} {row['median_images_per_second']:>8.1f} images/s  x{row['ratio_to_current']:.3f}"
                         f"  (prepared in {row['preparation_seconds']} s)")
        for name, seconds in entry["evaluation_seconds"].items():
            lines.append(f"    evaluation, {name:<30} {seconds:.3f} s per model")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.epoch_options:
        options = measure_epoch_options(arguments.data_dir, arguments.repeats, arguments.option_steps, (1, 2))
        print(epoch_options_report(options))
        EPOCH_OPTIONS_OUTPUT.write_text(json.dumps(options, indent=2) + "\n")
        print(f"\nResults written to {EPOCH_OPTIONS_OUTPUT}")
        return 0
    results = run_benchmark(arguments)
    print(format_report(results))
    output = Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nResults written to {output}")
    return 0  # a report, not a gate: missing a target is not a failure of the script


if __name__ == "__main__":
    sys.exit(main())
