"""The accuracy vs wall-time frontier on CIFAR-10-LT, CE alone, at ratios 10 and 100, in one run:
`python bench/frontier.py --data-dir DIR [--threads 2] [--only LABEL ...]`.

Every point is one CE model (seed 0, the real balanced test set) trained by the engine's own loop and timed
end to end (training and every evaluation; data already in memory). The families are today's new recipe
(the conv net of the `quick` / `standard` presets) at several budgets, ResNet-8 at the settings of the
presets it used to have, and ResNet-32 on the LDAM-DRW schedule at a few short budgets. Each point scores
its balanced accuracy three ways: plain argmax (what the targets use), with flip test-time augmentation, and
prior-corrected (post-hoc logit adjustment).

`--targets` instead trains each preset's *pair* (CE and CCE), old and new, in the same run, to check the
issue's targets: the new preset's pair must take at most the old preset's pair's wall time.

Results go to bench/frontier_results.json (resumable: points already there for this host are skipped, so
run it on a quiet machine, in one go, to compare times) and a plot to bench/frontier.png (needs matplotlib:
`pip install -r bench/requirements.txt`). Compare times only within one run: hosts here differ up to 4x.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cce_demo.config import PRESETS, TrainConfig  # noqa: E402
from cce_demo.data import load_dataset  # noqa: E402
from cce_demo.engine import evaluate, train_paired  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "frontier_results.json"
PLOT = HERE / "frontier.png"

# ResNet-8 at the settings of the presets before the conv nets (git history of config.py): the baseline the
# new recipe's targets are measured against.
RESNET8_QUICK = TrainConfig(dataset="cifar10", imbalance_ratio=10.0, model="resnet8", epochs=4, batch_size=256,
                            learning_rate=0.2, weight_decay=5e-4, warmup_epochs=0.5)
RESNET8_STANDARD = TrainConfig(dataset="cifar10", imbalance_ratio=100.0, model="resnet8", epochs=25, batch_size=128,
                               learning_rate=0.1, weight_decay=5e-4, warmup_epochs=1.0, epoch_eval_images=2000)
# ResNet-32 on the LDAM-DRW schedule (weight decay 2e-4, x0.01 at 80 % and x0.0001 at 90 % of training, plain
# momentum), cut to budgets a CPU can afford.
RESNET32_LDAM = TrainConfig(dataset="cifar10", model="resnet32", batch_size=128, learning_rate=0.1, weight_decay=2e-4,
                            warmup_epochs=1.0, schedule="ldam", nesterov=False, epoch_eval_images=2000)


def points() -> list[tuple[str, str, TrainConfig]]:
    """(label, family, CE-only config) of every frontier point, in the order they run."""
    quick, standard = PRESETS["quick"], PRESETS["standard"]
    entries: list[tuple[str, str, TrainConfig]] = []
    for ratio, new_preset, old in ((10.0, quick, RESNET8_QUICK), (100.0, standard, RESNET8_STANDARD)):
        tag = f"r{ratio:g}"
        entries.append((f"{tag}-resnet8-preset", "ResNet-8 (old presets)", old))
        entries.append((f"{tag}-resnet8-x2", "ResNet-8 (old presets)", old.replace(epochs=old.epochs * 2)))
        for fraction in (0.25, 0.5, 1.0, 2.0):
            epochs = max(1, round(new_preset.epochs * fraction))
            config = new_preset.replace(imbalance_ratio=ratio, epochs=epochs,
                                        warmup_epochs=min(new_preset.warmup_epochs, float(epochs)))
            entries.append((f"{tag}-recipe-e{epochs}", f"{new_preset.model} recipe", config))
        for epochs in (5, 15):
            entries.append((f"{tag}-resnet32-ldam-e{epochs}", "ResNet-32, LDAM-DRW schedule",
                            RESNET32_LDAM.replace(imbalance_ratio=ratio, epochs=epochs)))
    return [(label, family, config.replace(losses=("ce",), seeds=(0,), device="cpu")) for label, family, config in entries]


def target_pairs() -> list[tuple[str, str, TrainConfig]]:
    return [
        ("quick-old-pair", "ResNet-8 quick (old)", RESNET8_QUICK.replace(device="cpu")),
        ("quick-new-pair", "quick (new)", PRESETS["quick"].replace(device="cpu", seeds=(0,))),
        ("standard-old-pair", "ResNet-8 standard (old)", RESNET8_STANDARD.replace(device="cpu")),
        ("standard-new-pair", "standard (new)", PRESETS["standard"].replace(device="cpu", seeds=(0,))),
    ]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(label: str, family: str, config: TrainConfig, dataset) -> dict:
    started, cpu_started = time.perf_counter(), time.process_time()
    result = train_paired(config, dataset=dataset)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    scores: dict[str, dict[str, float]] = {}
    for loss, model in result.models[0].items():
        final = result.evaluations[0][loss]
        flipped, _ = evaluate(model, dataset.test, dataset.normalisation, result.class_counts, flip=not config.test_time_flip)
        plain, flip = (final, flipped) if not config.test_time_flip else (flipped, final)
        scores[loss] = {
            "balanced_accuracy": plain.balanced_accuracy,
            "balanced_accuracy_flip": flip.balanced_accuracy,
            "prior_corrected": plain.prior_corrected.balanced_accuracy,
            "prior_corrected_flip": flip.prior_corrected.balanced_accuracy,
            "tail_recall": plain.group_recall["tail"],
            # what the run itself reports (its config decides whether flip TTA is on)
            "reported": final.balanced_accuracy,
        }
    return {"label": label, "family": family, "ratio": config.imbalance_ratio, "model": config.model,
            "epochs": config.epochs, "losses": list(config.losses), "status": str(result.status),
            "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "scores": scores,
            "config": config.to_dict(), "load_average_after": [round(value, 2) for value in os.getloadavg()],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, ratio in zip(axes, (10.0, 100.0)):
        families: dict[str, list[dict]] = {}
        for point in results["points"]:
            if point["ratio"] == ratio:
                families.setdefault(point["family"], []).append(point)
        for family, members in families.items():
            members.sort(key=lambda point: point["wall_seconds"])
            axis.plot([p["wall_seconds"] / 60 for p in members],
                      [100 * p["scores"]["ce"]["balanced_accuracy"] for p in members], marker="o", label=family)
        axis.set_xscale("log")
        axis.set_title(f"CIFAR-10-LT, ratio {ratio:g}")
        axis.set_xlabel("wall time of one CE model, minutes (log scale)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("CE balanced accuracy, % (plain argmax)")
    axes[1].legend(loc="lower right", fontsize=8)
    host = results["host"]
    figure.suptitle(f"{host['cpu_model']}, {host['torch_threads']} torch threads, one run ({results['date']})", fontsize=9)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--only", action="append", help="labels to run (default: all)")
    parser.add_argument("--targets", action="store_true", help="train the old and new presets' pairs instead")
    parser.add_argument("--plot-only", action="store_true")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"points": [], "targets": []}
    host = {"cpu_model": cpu_model(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_count": os.cpu_count()}
    if results.get("host") not in (None, host):
        raise SystemExit(f"{RESULTS.name} was measured on {results['host']}, this is {host}: times of different "
                         "hosts must not be mixed; move the file away to start a new run")
    results["host"] = host
    results.setdefault("date", datetime.date.today().isoformat())
    if not arguments.plot_only:
        dataset = load_dataset("cifar10", arguments.data_dir, allow_download=False)
        key = "targets" if arguments.targets else "points"
        done = {entry["label"] for entry in results[key]}
        for label, family, config in (target_pairs() if arguments.targets else points()):
            if label in done or (arguments.only and label not in arguments.only):
                continue
            entry = measure(label, family, config, dataset)
            print(json.dumps({k: entry[k] for k in ("label", "wall_seconds", "scores")}), flush=True)
            results[key].append(entry)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    if results["points"]:
        plot(results)


if __name__ == "__main__":
    main()
