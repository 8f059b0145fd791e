"""Write one CIFAR-10 test image per class to examples/ (the Classify tab's examples).

    python scripts/make_examples.py --data-dir DIR
"""
import argparse
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
    for class_index, name in enumerate(dataset.class_names):
        # The 8th test image of each class: a fixed, arbitrary choice (not picked for being easy).
        index = int((dataset.test.labels == class_index).nonzero()[7])
        Image.fromarray(dataset.test.images[index].numpy()).save(output / f"{class_index}-{name}.png")


if __name__ == "__main__":
    main()
