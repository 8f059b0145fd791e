"""The facts of each dataset, in one table: classes, their names, images per class in the source splits,
the normalisation constants and how people name it. Plain data, no torch, at the bottom of the import graph
with `config`, so that the config, the data loader, the estimate, the import check and the UI read the same
numbers."""
from __future__ import annotations

from dataclasses import dataclass

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Published training-set statistics of CIFAR-10 (docs/design.md); the synthetic set uses them too.
CIFAR10_NORMALISATION = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str  # in sentences: "CIFAR-10", "synthetic data"
    short_label: str  # in chart legends: "CIFAR-10", "synthetic"
    num_classes: int
    # None: the names come from the data files (CIFAR-100's npz copies may hold none).
    class_names: tuple[str, ...] | None
    train_per_class: int  # images per class of the balanced source training split, before the long tail
    # Images per class of the balanced test split; None: the config's synthetic_test_per_class.
    test_per_class: int | None
    normalisation: tuple[tuple[float, ...], tuple[float, ...]]  # per-channel means, standard deviations
    torchvision_folder: str | None  # the folder torchvision extracts the official archive into


DATASET_SPECS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10", "CIFAR-10", 10, CIFAR10_CLASSES, 5000, 1000, CIFAR10_NORMALISATION, "cifar-10-batches-py",
    ),
    "cifar100": DatasetSpec(
        "cifar100", "CIFAR-100", "CIFAR-100", 100, None, 500, 100,
        ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)), "cifar-100-python",
    ),
    # Tests and offline demos: 100 training images per class before the long tail is cut.
    "synthetic": DatasetSpec(
        "synthetic", "synthetic data", "synthetic", 10, None, 100, None, CIFAR10_NORMALISATION, None,
    ),
}
DATASETS = tuple(DATASET_SPECS)


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASET_SPECS:
        raise ValueError(f"dataset: unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    return DATASET_SPECS[name]
