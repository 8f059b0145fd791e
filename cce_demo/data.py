"""Data: CIFAR sources (npz folder, torchvision download, synthetic), the long-tail protocol, batched
augmentation on tensors, and preprocessing of uploaded images to what the models see.

Images are held as one uint8 NHWC tensor (on the training device when there is a GPU); augmentation and
normalisation run on whole batches as tensor ops, which is what makes CPU training fast (docs/design.md).
"""
from __future__ import annotations

import functools
import os
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig
from .datasets import DATASET_SPECS, dataset_spec
from .provenance import npz_provenance, synthetic_provenance, torchvision_provenance

IMAGE_SIZE = 32
CROP_PADDING = 4  # random crop with 4-pixel zero padding, as in the CIFAR ResNet / LDAM-DRW recipes

# The dataset facts (classes, counts, normalisation) are in datasets.py; these are views of that table.
TORCHVISION_FOLDERS = {name: spec.torchvision_folder for name, spec in DATASET_SPECS.items() if spec.torchvision_folder}
DEFAULT_DATA_DIR = "data"
SYNTHETIC_PER_CLASS = DATASET_SPECS["synthetic"].train_per_class
DOWNLOAD_CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_SECONDS = 60  # per network read: an offline machine fails fast instead of hanging a job


class DownloadCancelled(Exception):
    """The stop callback fired during a download; the partial file was removed."""


class DataUnavailableError(RuntimeError):
    """The dataset is neither on disk nor downloadable; the message says where we looked and how to fix it."""


@dataclass(frozen=True)
class ImageSplit:
    images: torch.Tensor  # uint8, (N, 32, 32, 3), RGB
    labels: torch.Tensor  # int64, (N,)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images: expected uint8 (N, H, W, 3), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels: expected shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, indices: torch.Tensor) -> "ImageSplit":
        return ImageSplit(self.images[indices], self.labels[indices])

    def to(self, device: torch.device | str) -> "ImageSplit":
        return ImageSplit(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    name: str
    class_names: tuple[str, ...]
    train: ImageSplit  # the full (balanced) training split; the long tail is cut by `long_tail_subset`
    test: ImageSplit  # the official balanced test split, never subsampled
    source: str  # where it came from, for the run metadata
    # Which copy of the data (named from the files' hashes) and the hashes: `cce_demo/provenance.py`.
    provenance: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return dataset_spec(self.name).normalisation


# ---------------------------------------------------------------- long-tail protocol


def long_tail_counts(n_max: int, num_classes: int, imbalance_ratio: float, profile: str = "exp") -> list[int]:
    """Per-class training counts of the long-tailed protocol (Cao et al. 2019, LDAM-DRW).
    exp: n_c = int(n_max * (1 / ratio) ** (c / (K - 1))); step: the first K // 2 classes keep n_max, the rest
    get int(n_max / ratio)."""
    if imbalance_ratio < 1:
        raise ValueError(f"imbalance_ratio: must be >= 1, got {imbalance_ratio}")
    if num_classes < 2:
        raise ValueError(f"num_classes: at least 2 classes are needed, got {num_classes}")
    if profile == "exp":
        return [int(n_max * (1 / imbalance_ratio) ** (index / (num_classes - 1))) for index in range(num_classes)]
    if profile == "step":
        return [n_max if index < num_classes // 2 else int(n_max / imbalance_ratio) for index in range(num_classes)]
    raise ValueError(f"profile: unknown profile {profile!r}; valid profiles: exp, step")


def long_tail_indices(labels: torch.Tensor, class_counts: Sequence[int], seed: int) -> torch.Tensor:
    """Indices of a seeded random subset with class_counts[c] images of class c (same seed, same indices),
    sorted so the subset keeps the source order."""
    generator = torch.Generator().manual_seed(seed)
    labels_cpu = labels.cpu()
    chosen = []
    for class_index, count in enumerate(class_counts):
        members = torch.nonzero(labels_cpu == class_index).flatten()
        if count > len(members):
            raise ValueError(f"class {class_index}: {count} images asked for, only {len(members)} available")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:count]])
    return torch.sort(torch.cat(chosen)).values


def long_tail_subset(
    train: ImageSplit, num_classes: int, imbalance_ratio: float, profile: str, seed: int, max_per_class: int | None = None
) -> tuple[ImageSplit, list[int]]:
    """The long-tailed training subset and its class counts. n_max is the smallest class of the source (so a
    balanced source gives the standard table) unless `max_per_class` caps it."""
    available = torch.bincount(train.labels.cpu(), minlength=num_classes)
    n_max = int(available.min())
    if max_per_class is not None:
        n_max = min(n_max, max_per_class)
    counts = long_tail_counts(n_max, num_classes, imbalance_ratio, profile)
    if min(counts) < 1:
        raise ValueError(
            f"imbalance_ratio: {imbalance_ratio} leaves a class with no training image at {n_max} images per class"
        )
    return train.subset(long_tail_indices(train.labels, counts, seed)), counts


SOURCE_MAX_PER_CLASS = {name: spec.train_per_class for name, spec in DATASET_SPECS.items()}


def planned_class_counts(config: TrainConfig) -> list[int]:
    """The training counts a run will use, known without loading any data (the sources are balanced), and
    checked: a ratio so high that a class would get no image is refused before anything is queued."""
    n_max = SOURCE_MAX_PER_CLASS[config.dataset]
    if config.max_per_class is not None:
        n_max = min(n_max, config.max_per_class)
    counts = long_tail_counts(n_max, config.num_classes, config.imbalance_ratio, config.profile)
    if min(counts) < 1:
        raise ValueError(
            f"imbalance_ratio: {config.imbalance_ratio:g} leaves the rarest class with no training image at {n_max} images "
            f"per class; use a ratio of at most {n_max:g}"
        )
    return counts


# ---------------------------------------------------------------- sources


def default_data_dir() -> Path:
    return Path(os.environ.get("CCE_DATA_DIR") or DEFAULT_DATA_DIR)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    synthetic_test_per_class: int = 20,
    on_progress: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Dataset:
    """CIFAR-10 / CIFAR-100 from an npz folder or torchvision's folder, downloading the official archive
    when allowed (progress reported through `on_progress`), or the synthetic set. Loaded CIFAR is cached
    per process: reading the 140 MB CIFAR-10 npz takes seconds."""
    if name == "synthetic":
        return synthetic_dataset(num_classes=10, train_per_class=SYNTHETIC_PER_CLASS, test_per_class=synthetic_test_per_class)
    if name not in TORCHVISION_FOLDERS:
        raise ValueError(f"dataset: unknown dataset {name!r}; valid datasets: cifar10, cifar100, synthetic")
    root = (Path(data_dir) if data_dir is not None else default_data_dir()).expanduser().resolve()
    dataset = _load_local_cifar(name, root)
    if dataset is not None:
        return dataset
    if not allow_download:
        raise _unavailable(name, root, "downloading is off")
    try:
        download_cifar(name, root, on_progress or (lambda message: None), should_stop=should_stop)
    except DownloadCancelled:
        raise
    except Exception as error:  # offline: URLError / OSError; a bad archive: RuntimeError
        raise _unavailable(name, root, f"the download failed ({type(error).__name__}: {error})") from error
    dataset = _load_local_cifar(name, root)
    if dataset is None:
        raise _unavailable(name, root, "the downloaded archive did not hold it")
    return dataset


def _candidate_npz_folders(name: str, root: Path) -> tuple[Path, Path]:
    return root / name, root


def _unavailable(name: str, root: Path, reason: str) -> DataUnavailableError:
    looked = [f"{folder / 'train.npz'} and {folder / 'test.npz'}" for folder in _candidate_npz_folders(name, root)]
    looked.append(f"{root / TORCHVISION_FOLDERS[name]} (torchvision's format)")
    return DataUnavailableError(
        f"{name} is not available: looked for {'; '.join(looked)}, and {reason}. "
        f"Fix: put train.npz and test.npz (uint8 images (N, 32, 32, 3), int64 labels, classes) in "
        f"{root / name}, or point --data-dir / CCE_DATA_DIR at a folder that has them, "
        f"or run with internet access so the official archive can be downloaded into {root}."
    )


_CACHE: dict[tuple[str, Path], Dataset] = {}
_CACHE_LOCK = threading.Lock()


def _load_local_cifar(name: str, root: Path) -> Dataset | None:
    """The dataset from disk (npz first, then torchvision's folder), or None. Only hits are cached, so data
    put in place while the app runs is found on the next job."""
    with _CACHE_LOCK:
        if (name, root) in _CACHE:
            return _CACHE[(name, root)]
        dataset = None
        for folder in _candidate_npz_folders(name, root):
            if (folder / "train.npz").is_file() and (folder / "test.npz").is_file():
                candidate = _from_npz(name, folder / "train.npz", folder / "test.npz")
                if candidate.num_classes == dataset_spec(name).num_classes:
                    dataset = candidate
                    break
        if dataset is None and (root / TORCHVISION_FOLDERS[name]).is_dir():
            try:
                dataset = _from_torchvision(name, root)
            except RuntimeError:  # torchvision's "not found or corrupted"
                dataset = None
        if dataset is not None:
            # Keep at most a couple of datasets: each CIFAR copy is ~180 MB of memory.
            while len(_CACHE) >= 2:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[(name, root)] = dataset
        return dataset


def download_cifar(
    name: str, root: Path, on_progress: Callable[[str], None], url: str | None = None, md5: str | None = "",
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Download the official CIFAR archive (torchvision's URL and checksum) into `root` and extract it,
    reporting progress in words. `url` / `md5` (None: skip the check) exist for tests on a local server."""
    from torchvision import datasets
    from torchvision.datasets.utils import check_integrity, extract_archive

    dataset_class = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    url = url or dataset_class.url
    md5 = dataset_class.tgz_md5 if md5 == "" else md5
    root.mkdir(parents=True, exist_ok=True)
    archive = root / dataset_class.filename
    label = dataset_spec(name).label
    partial = archive.with_name(archive.name + ".part")
    on_progress(f"Downloading {label} into {root}…")
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, open(partial, "wb") as file:
        total = int(response.headers.get("Content-Length") or 0)
        report_every = total // 20 if total else 16 * DOWNLOAD_CHUNK_BYTES  # every 5 %, or every 16 MB
        received, next_report = 0, report_every
        while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
            if should_stop():  # checked per 1 MB chunk: a cancel does not wait for 160 MB
                file.close()
                partial.unlink(missing_ok=True)
                raise DownloadCancelled(f"the {label} download was stopped")
            file.write(chunk)
            received += len(chunk)
            if received >= next_report:
                next_report += report_every
                size = f"{received / 2**20:.0f} of {total / 2**20:.0f} MB ({100 * received // total} %)" if total else f"{received / 2**20:.0f} MB"
                on_progress(f"Downloading {label}: {size}")
    os.replace(partial, archive)
    if md5 is not None and not check_integrity(str(archive), md5):
        archive.unlink(missing_ok=True)
        raise RuntimeError(f"the downloaded {archive.name} does not match its published checksum")
    on_progress(f"Extracting {label}…")
    extract_archive(str(archive), str(root))


def _from_npz(name: str, train_file: Path, test_file: Path) -> Dataset:
    splits = []
    class_names: tuple[str, ...] = ()
    for file in (train_file, test_file):
        try:
            with np.load(file, allow_pickle=False) as archive:
                images = torch.from_numpy(np.ascontiguousarray(archive["images"], dtype=np.uint8))
                labels = torch.from_numpy(archive["labels"].astype(np.int64))
                if "classes" in archive.files:
                    class_names = tuple(str(value) for value in archive["classes"])
        except (OSError, KeyError, ValueError) as error:
            raise DataUnavailableError(f"{file} is not a readable npz with 'images' and 'labels' arrays ({error})") from error
        if images.ndim != 4 or tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise DataUnavailableError(f"{file}: images must be uint8 (N, 32, 32, 3), got shape {tuple(images.shape)}")
        if len(labels) != len(images) or (len(labels) and (labels.min() < 0 or labels.max() >= 100)):
            raise DataUnavailableError(f"{file}: expected one label per image in 0..K-1, got {len(labels)} labels for {len(images)} images")
        splits.append(ImageSplit(images, labels))
    if not class_names:
        spec = dataset_spec(name)
        class_names = spec.class_names or tuple(str(index) for index in range(spec.num_classes))
    return Dataset(name, class_names, splits[0], splits[1], source=f"npz:{train_file.parent}",
                   provenance=npz_provenance(name, train_file, test_file))


def _from_torchvision(name: str, root: Path) -> Dataset:
    from torchvision import datasets  # imported lazily: only this path needs it

    dataset_class = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    splits = []
    for train in (True, False):
        source = dataset_class(root=str(root), train=train, download=False)
        splits.append(ImageSplit(torch.from_numpy(source.data), torch.as_tensor(source.targets, dtype=torch.int64)))
    folder = root / dataset_class.base_folder
    files = [(file_name, md5) for file_name, md5 in (*dataset_class.train_list, *dataset_class.test_list)]
    return Dataset(name, tuple(source.classes), splits[0], splits[1], source=f"torchvision:{root}",
                   provenance=torchvision_provenance(name, folder, files))


@functools.lru_cache(maxsize=4)
def synthetic_dataset(num_classes: int = 10, train_per_class: int = 100, test_per_class: int = 20, seed: int = 0) -> Dataset:
    """A small learnable stand-in for CIFAR (tests, offline demos): each class is a smooth random colour
    pattern; each image is its class pattern, randomly shifted, plus noise."""
    generator = torch.Generator().manual_seed(seed)
    templates = torch.rand(num_classes, 3, 4, 4, generator=generator)
    templates = F.interpolate(templates, size=(IMAGE_SIZE + 8, IMAGE_SIZE + 8), mode="bilinear", align_corners=False)

    def draw(per_class: int) -> ImageSplit:
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        shifts = torch.randint(0, 9, (2, len(labels)), generator=generator)
        images = torch.stack(
            [templates[label, :, dy : dy + IMAGE_SIZE, dx : dx + IMAGE_SIZE] for label, dy, dx in zip(labels, *shifts)]
        )
        images = images + 0.15 * torch.randn(images.shape, generator=generator)
        pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return ImageSplit(pixels, labels)

    names = tuple(f"class {index}" for index in range(num_classes))
    return Dataset("synthetic", names, draw(train_per_class), draw(test_per_class), source="synthetic",
                   provenance=synthetic_provenance())


# ---------------------------------------------------------------- batches


def augment_batch(images: torch.Tensor, generator: torch.Generator, padding: int = CROP_PADDING) -> torch.Tensor:
    """Per-sample random crop (zero padding) and horizontal flip of a uint8 NHWC batch, as tensor ops on the
    batch's device. The draws come from `generator` (on the same device), so every model of a paired run
    can be fed the same augmented batch."""
    count, height, width, _ = images.shape
    padded = F.pad(images, (0, 0, padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, count), generator=generator, device=images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)
    columns = offsets[1, :, None] + torch.arange(width, device=images.device)
    batch_index = torch.arange(count, device=images.device)[:, None, None]
    cropped = padded[batch_index, rows[:, :, None], columns[:, None, :]]
    flip = torch.rand(count, generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(2), cropped)


def to_model_input(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 NHWC -> normalised float32 NCHW in channels_last memory (the NHWC bytes are not moved)."""
    scale = torch.tensor([1 / (255 * value) for value in std], device=images.device).view(1, 3, 1, 1)
    shift = torch.tensor([255 * value for value in mean], device=images.device).view(1, 3, 1, 1)
    return (images.permute(0, 3, 1, 2).float() - shift) * scale
