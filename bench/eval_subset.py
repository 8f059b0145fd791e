"""What scoring a stratified test subset after each epoch (the whole test set only after the last) saves on the
CPU presets: `python bench/eval_subset.py --data-dir DIR`.

Measures, in one process and one run: one epoch of the paired training steps, one evaluation of every model on
the whole test set and one on the subset, then projects each preset's wall time both ways. Writes
bench/eval_subset_results.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cce_demo.config import preset  # noqa: E402
from cce_demo.data import augment_batch, load_dataset, long_tail_subset, to_model_input  # noqa: E402
from cce_demo.engine import evaluate, stratified_subset  # noqa: E402
from cce_demo.losses import get_loss  # noqa: E402
from cce_demo.models import build_model  # noqa: E402


def measure(preset_name: str, data_dir: str) -> dict:
    config = preset(preset_name)
    dataset = load_dataset(config.dataset, data_dir, allow_download=False)
    train, counts = long_tail_subset(dataset.train, dataset.num_classes, config.imbalance_ratio, config.profile, 0)
    counts = tuple(counts)
    initial = build_model(config.model, dataset.num_classes, torch.Generator().manual_seed(0))
    models = {name: copy.deepcopy(initial) for name in config.losses}
    losses = {name: get_loss(name, dataset.num_classes, class_counts=counts, **config.loss_options(name)) for name in config.losses}
    optimisers = {name: torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) for name, model in models.items()}
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train), generator=generator)
    started = time.perf_counter()
    for start in range(0, len(train), config.batch_size):
        indices = order[start : start + config.batch_size]
        inputs = to_model_input(augment_batch(train.images[indices], generator), *dataset.normalisation)
        for name, model in models.items():
            model.train()
            parts = losses[name].parts(model(inputs), train.labels[indices])
            optimisers[name].zero_grad(set_to_none=True)
            parts.total.backward()
            optimisers[name].step()
    train_seconds = time.perf_counter() - started
    subset = dataset.test.subset(stratified_subset(dataset.test.labels, dataset.num_classes, config.epoch_eval_images))

    def evaluation_seconds(split) -> float:
        began = time.perf_counter()
        for model in models.values():
            evaluate(model, split, dataset.normalisation, counts)
        return time.perf_counter() - began

    full_seconds, subset_seconds = evaluation_seconds(dataset.test), evaluation_seconds(subset)
    epochs = config.epochs
    whole = epochs * (train_seconds + full_seconds)
    with_subset = epochs * train_seconds + (epochs - 1) * subset_seconds + full_seconds
    return {
        "preset": preset_name, "epochs": epochs, "models": len(models), "train_images": len(train),
        "test_images": len(dataset.test), "subset_images": len(subset),
        "train_epoch_seconds": round(train_seconds, 2), "full_evaluation_seconds": round(full_seconds, 2),
        "subset_evaluation_seconds": round(subset_seconds, 2),
        "projected_seconds_full_every_epoch": round(whole, 1), "projected_seconds_with_subset": round(with_subset, 1),
        "saving_percent": round(100 * (1 - with_subset / whole), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--presets", default="quick,standard")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "eval_subset_results.json"))
    arguments = parser.parse_args()
    rows = [measure(name, arguments.data_dir) for name in arguments.presets.split(",")]
    result = {
        "command": "python bench/eval_subset.py --data-dir DIR", "torch_threads": torch.get_num_threads(),
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()], "rows": rows,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    Path(arguments.output).write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['preset']}: train epoch {row['train_epoch_seconds']} s, evaluation {row['full_evaluation_seconds']} s "
              f"(whole test set) vs {row['subset_evaluation_seconds']} s (subset of {row['subset_images']}); "
              f"projected {row['projected_seconds_full_every_epoch']} s -> {row['projected_seconds_with_subset']} s, "
              f"saving {row['saving_percent']} %")
    print(f"load average at the end: {result['load_average_at_end']} (2 cores are shared: compare the ratio, not the seconds)")


if __name__ == "__main__":
    main()
