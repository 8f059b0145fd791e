"""Give a finished run that predates per-image predictions its predictions-seed<N>.safetensors: score its saved
models on its own test split again, exactly as its final evaluation did (same split, same flip TTA, fp32),
and write the answers only when that evaluation reproduces the recorded one number for number (confusion
matrices and McNemar counts). Otherwise nothing is written and the script says what differs.

    python scripts/record_predictions.py checkpoints/cifar10-lt100-standard-ce-cce --data-dir DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cce_demo.data import load_dataset  # noqa: E402
from cce_demo.engine import evaluate  # noqa: E402
from cce_demo.run_directory import (  # noqa: E402
    METADATA_FILE, load_models, predictions_file_name, read_run, save_tensors_atomic, write_json_atomic,
)
from cce_demo.per_image_predictions import discordant, to_tensors  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data-dir", required=True)
    arguments = parser.parse_args(argv)
    record = read_run(arguments.run_dir)
    config = record.config
    dataset = load_dataset(config.dataset, arguments.data_dir, allow_download=False)
    metadata = json.loads((record.run_dir / METADATA_FILE).read_text(encoding="utf-8"))
    written = dict(metadata.get("predictions") or {})
    for seed in config.seeds:
        recorded = record.final["evaluations"].get(str(seed))
        if not recorded:
            continue
        models = load_models(record, seed)
        answers = {}
        for loss, model in models.items():
            evaluation, answer = evaluate(model, dataset.test, dataset.normalisation, record.class_counts, flip=config.test_time_flip)
            if [list(row) for row in evaluation.confusion_matrix] != recorded[loss]["confusion_matrix"]:
                print(f"seed {seed} {loss}: the evaluation does not reproduce the recorded confusion matrix; nothing written")
                return 1
            answers[loss] = answer.to_cpu()
        labels = dataset.test.labels.cpu()
        for comparison in record.final.get("comparisons") or []:
            if comparison["seed"] != seed:
                continue
            pair = discordant(labels, answers[comparison["baseline"]], answers[comparison["other"]])
            counts = (len(pair.only_a), len(pair.only_b))
            expected = (comparison["mcnemar"]["only_a_correct"], comparison["mcnemar"]["only_b_correct"])
            if counts != expected:
                print(f"seed {seed}: discordant counts {counts} differ from the recorded McNemar counts {expected}; nothing written")
                return 1
        tensors, file_metadata = to_tensors(labels, answers, seed, len(record.class_names))
        save_tensors_atomic(record.run_dir / predictions_file_name(seed), tensors, {**file_metadata, "run_id": record.run_id})
        written[str(seed)] = predictions_file_name(seed)
        print(f"seed {seed}: evaluation reproduced; wrote {predictions_file_name(seed)}")
    metadata["predictions"] = written
    write_json_atomic(record.run_dir / METADATA_FILE, metadata)
    return 0


if __name__ == "__main__":
    sys.exit(main())
