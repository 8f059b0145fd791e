"""Write one CIFAR-10 test image per class to examples/ (the Classify tab's examples), numbered rather than named
by class (the Classify tab's file box shows a file's name), with the true classes in examples/labels.json.

    python scripts/make_examples.py --data-dir DIR
"""
import argparse
import json
from pathlib import Path

from PIL import Image

from cce_demo.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output-dir", default=str(Path(__file__).resolve().parent.parent / "examples"))
    arguments = parser.parse_args()
    dataset = load_dataset("cifar10", arguments.data_dir, allow_download=False)
    output = Path(arguments.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    labels = {}
    for class_index, name in enumerate(dataset.class_names):
        # The 8th test image of each class: a fixed, arbitrary choice (not picked for being easy).
        index = int((dataset.test.labels == class_index).nonzero()[7])
        file_name = f"example-{class_index + 1:02d}.png"
        Image.fromarray(dataset.test.images[index].numpy()).save(output / file_name)
        labels[file_name] = name
    about = ("The true class of each example image (CIFAR-10 test images). The files are numbered, not named by "
             "class, because the Classify tab's file box shows a file's name, which would give the answer away.")
    (output / "labels.json").write_text(json.dumps({"about": about, "labels": labels}, indent=1) + "\n")


if __name__ == "__main__":
    main()
