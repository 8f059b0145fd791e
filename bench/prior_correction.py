"""What post-hoc prior correction (logits - tau * log prior, tau = 1; Menon et al. 2021) changes for a run's
models on the real test set: `python bench/prior_correction.py --data-dir DIR [--run checkpoints/<run id>]`.

Scores every model of the run on the whole test set, as trained and corrected, with the same code the engine
uses after the last epoch. Writes bench/prior_correction_results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cce_demo.run_directory import load_models, read_run  # noqa: E402
from cce_demo.data import load_dataset  # noqa: E402
from cce_demo.engine import evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--run", default=str(ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce"))
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "prior_correction_results.json"))
    arguments = parser.parse_args()
    record = read_run(arguments.run)
    dataset = load_dataset(record.config.dataset, arguments.data_dir, allow_download=False)
    rows = []
    for loss, model in load_models(record).items():
        # Scored as the run itself was (with flip test-time augmentation when its config used it).
        evaluation, _ = evaluate(model, dataset.test, dataset.normalisation, record.class_counts,
                                 flip=record.config.test_time_flip)
        corrected = evaluation.prior_corrected
        rows.append({
            "loss": loss,
            "balanced_accuracy": evaluation.balanced_accuracy, "tail_recall": evaluation.group_recall["tail"],
            "head_recall": evaluation.group_recall["head"],
            "corrected_balanced_accuracy": corrected.balanced_accuracy, "corrected_tail_recall": corrected.group_recall["tail"],
            "corrected_head_recall": corrected.group_recall["head"],
            "per_class_recall": list(evaluation.per_class_recall), "corrected_per_class_recall": list(corrected.per_class_recall),
        })
        print(f"{loss:>14}: balanced accuracy {100 * evaluation.balanced_accuracy:.1f} % -> {100 * corrected.balanced_accuracy:.1f} %, "
              f"tail recall {100 * evaluation.group_recall['tail']:.1f} % -> {100 * corrected.group_recall['tail']:.1f} %, "
              f"head recall {100 * evaluation.group_recall['head']:.1f} % -> {100 * corrected.group_recall['head']:.1f} %")
    result = {
        "command": "python bench/prior_correction.py --data-dir DIR", "run_id": record.run_id,
        "class_counts": list(record.class_counts), "test_images": len(dataset.test), "tau": 1.0, "rows": rows,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    Path(arguments.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
