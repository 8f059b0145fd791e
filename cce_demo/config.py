"""Training configuration as a frozen, validated value, and the named presets.

The UI, the CLI, the job manager and the tests all build the same `TrainConfig`; an invalid value raises
`ValueError` naming the field and the value, so a bad setting never reaches the training loop.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .datasets import DATASETS, dataset_spec
PROFILES = ("exp", "step")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "linear", "ldam", "authors")
# Kept here rather than imported from losses/models so that config stays at the bottom of the import graph;
# tests check these tuples against the registries.
BASE_LOSS_NAMES = ("ce", "cce", "cce_reference", "focal", "logit_adjusted", "ldam")
# Deferred re-weighting (DRW, Cao et al. 2019) is an option of every loss, written as the suffix "_drw"
# ("ce_drw", "ldam_drw"), so CE and CE-DRW can train side by side in one paired run.
DRW_SUFFIX = "_drw"
LOSS_NAMES = (*BASE_LOSS_NAMES, *(name + DRW_SUFFIX for name in BASE_LOSS_NAMES))
# Schedules without a step decay (cosine, linear) start DRW at this fraction of training; step schedules start
# it at their first decay (ldam: 80 %, authors: 50 %). 0.8 is where LDAM-DRW's own schedule starts it (epoch
# 160 of 200). Rounded down to the epoch, so a short run re-weights a larger share (a third of 6 epochs).
DEFAULT_DRW_START_FRACTION = 0.8
MODEL_NAMES = ("resnet8", "resnet20", "resnet32", "convnet-s", "convnet-m", "convnet-l")

MAX_BATCH_SIZE = 4096
MAX_EPOCHS = 1000
MAX_SEEDS = 10


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a paired training run. Two runs with equal configs train the same models."""

    dataset: str = "cifar10"
    profile: str = "exp"
    imbalance_ratio: float = 100.0
    # Training images of the largest class before the long tail is cut; None means the whole class
    # (5000 for CIFAR-10, 500 for CIFAR-100).
    max_per_class: int | None = None
    losses: tuple[str, ...] = ("ce", "cce")
    gamma: float = -1.0  # paper-form CCE: CE + gamma / (K - 1) * complement entropy
    balancing_factor: float = 1.0  # reference-form CCE (seed code): CE - balancing_factor * S
    focal_gamma: float = 2.0
    logit_adjustment_tau: float = 1.0
    # Deferred re-weighting of the "_drw" losses: the effective-number beta of the class-balanced weights and,
    # for schedules without a step decay, the fraction of training after which the weights apply.
    drw_beta: float = 0.9999
    drw_start_fraction: float = DEFAULT_DRW_START_FRACTION
    model: str = "resnet8"
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True  # the demo's default; the ldam-drw and authors presets use plain momentum
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    # The warm-up's learning rate rises once per epoch (LDAM-DRW: lr * (e + 1) / 5 in epoch e) rather than
    # every step; then warmup_epochs must be a whole number.
    warmup_per_epoch: bool = False
    schedule: str = "cosine"
    seeds: tuple[int, ...] = (0,)
    # The long-tailed subset is drawn with its own seed so that every training seed sees the same images.
    subset_seed: int = 0
    device: str = "auto"
    augment: bool = True
    # Score every test image as the mean of the logits of the image and its mirror image (flip test-time
    # augmentation). It applies to every loss of the pair alike, and to Classify.
    test_time_flip: bool = False
    # Synthetic data only (tests and offline demos): images per class in the test split.
    synthetic_test_per_class: int = 20
    # Test images scored after each epoch but the last (a fixed stratified subset, the same for every epoch
    # and run); None scores the whole test set every epoch. The last epoch always scores the whole set.
    epoch_eval_images: int | None = None

    def __post_init__(self) -> None:
        # Accept lists from JSON / UI and store tuples so the value stays hashable and immutable; check the
        # element types first, so that e.g. a seed of 1.7 is an error rather than silently 1.
        if isinstance(self.losses, str) or not isinstance(self.losses, (list, tuple)):
            raise ValueError(f"losses: expected a list of loss names, got {self.losses!r}")
        if isinstance(self.seeds, str) or not isinstance(self.seeds, (list, tuple)):
            raise ValueError(f"seeds: expected a list of whole numbers, got {self.seeds!r}")
        for seed in self.seeds:
            _check_int("seeds", seed, minimum=0, maximum=2**31 - 1)
        object.__setattr__(self, "losses", tuple(self.losses))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("profile", self.profile, PROFILES)
        _check_choice("device", self.device, DEVICES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("model", self.model, MODEL_NAMES)
        if not self.losses:
            raise ValueError("losses: at least one loss is needed, got an empty list")
        for name in self.losses:
            if not isinstance(name, str):
                raise ValueError(f"losses: expected loss names, got {name!r}")
            _check_choice("losses", name, LOSS_NAMES)
        if len(set(self.losses)) != len(self.losses):
            raise ValueError(f"losses: each loss may appear once, got {list(self.losses)}")
        _check_number("imbalance_ratio", self.imbalance_ratio, minimum=1.0, maximum=1e6)
        if self.max_per_class is not None:
            _check_int("max_per_class", self.max_per_class, minimum=1, maximum=1_000_000)
        _check_int("epochs", self.epochs, minimum=1, maximum=MAX_EPOCHS)
        _check_int("batch_size", self.batch_size, minimum=1, maximum=MAX_BATCH_SIZE)
        _check_number("learning_rate", self.learning_rate, minimum=0.0, maximum=1e6, exclusive_minimum=True)
        _check_number("momentum", self.momentum, minimum=0.0, maximum=0.999)
        for flag in ("nesterov", "augment", "test_time_flip", "warmup_per_epoch"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag}: must be true or false, got {getattr(self, flag)!r}")
        _check_number("weight_decay", self.weight_decay, minimum=0.0, maximum=1.0)
        _check_number("warmup_epochs", self.warmup_epochs, minimum=0.0, maximum=float(self.epochs))
        if self.warmup_per_epoch and float(self.warmup_epochs) != int(self.warmup_epochs):
            raise ValueError(f"warmup_epochs: must be a whole number with warmup_per_epoch, got {self.warmup_epochs}")
        _check_number("drw_beta", self.drw_beta, minimum=0.0, maximum=0.999999)
        _check_number("drw_start_fraction", self.drw_start_fraction, minimum=0.0, maximum=0.999)
        _check_number("gamma", self.gamma, minimum=-100.0, maximum=100.0)
        _check_number("balancing_factor", self.balancing_factor, minimum=-100.0, maximum=100.0)
        _check_number("focal_gamma", self.focal_gamma, minimum=0.0, maximum=10.0)
        _check_number("logit_adjustment_tau", self.logit_adjustment_tau, minimum=0.0, maximum=10.0)
        if not self.seeds:
            raise ValueError("seeds: at least one seed is needed, got an empty list")
        if len(self.seeds) > MAX_SEEDS:
            raise ValueError(f"seeds: at most {MAX_SEEDS} seeds, got {len(self.seeds)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: each seed may appear once, got {list(self.seeds)}")
        _check_int("subset_seed", self.subset_seed, minimum=0, maximum=2**31 - 1)
        _check_int("synthetic_test_per_class", self.synthetic_test_per_class, minimum=1, maximum=10_000)
        if self.epoch_eval_images is not None:
            _check_int("epoch_eval_images", self.epoch_eval_images, minimum=1, maximum=1_000_000)

    @property
    def num_classes(self) -> int:
        return dataset_spec(self.dataset).num_classes

    @property
    def test_images_per_class(self) -> int:
        """Images per class of the (balanced) test split."""
        return dataset_spec(self.dataset).test_per_class or self.synthetic_test_per_class

    @property
    def test_images(self) -> int:
        """Images of the (balanced) test split a run of this config is scored on, known without loading it."""
        return self.test_images_per_class * self.num_classes

    @property
    def baseline(self) -> str:
        """The loss every other loss is compared with: CE when it is in the comparison (the natural
        reference), else the first loss listed. The engine's comparisons, the verdict card, the per-class
        differences and the Runs overlays all read it here, so their signs agree."""
        return "ce" if "ce" in self.losses else self.losses[0]

    def loss_options(self, name: str) -> dict[str, float]:
        """The keyword options `losses.get_loss` takes for `name` under this config (the class counts and the
        DRW start epoch come from the data and the schedule: the engine adds them)."""
        reweighted = name.endswith(DRW_SUFFIX)
        base = name[: -len(DRW_SUFFIX)] if reweighted else name
        options = {
            "cce": {"gamma": self.gamma},
            "cce_reference": {"balancing_factor": self.balancing_factor},
            "focal": {"gamma": self.focal_gamma},
            "logit_adjusted": {"tau": self.logit_adjustment_tau},
        }.get(base, {})
        return {**options, "drw_beta": self.drw_beta} if reweighted else options

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["losses"] = list(self.losses)
        values["seeds"] = list(self.seeds)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build from a plain mapping (JSON, API); unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}; valid fields: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except TypeError as error:  # e.g. a list where a number belongs: still a clear ValueError
            raise ValueError(f"config: {error}") from error

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def _check_choice(field_name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field_name}: unknown value {value!r}; valid values: {', '.join(choices)}")


def _check_int(field_name: str, value: object, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field_name}: must be a whole number, got {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{field_name}: must be between {minimum} and {maximum}, got {value}")


def _check_number(
    field_name: str, value: object, minimum: float, maximum: float, exclusive_minimum: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field_name}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{field_name}: must be finite, got {value}")
    too_low = value <= minimum if exclusive_minimum else value < minimum
    if too_low or value > maximum:
        bound = ">" if exclusive_minimum else ">="
        raise ValueError(f"{field_name}: must be {bound} {minimum} and <= {maximum}, got {value}")


# Presets. Chosen for what they show within their time budget on a 2-core CPU, never for which loss wins, and
# named after whose recipe they are.
# quick and standard: the CPU recipe (docs/recipe.md), the residual-free conv net `convnet-s` trained with a
#   warm-up then a linear decay at batch 256, lr 0.2, flip test-time augmentation, for as many epochs as fit
#   the CPU time the ResNet-8 presets took (4 epochs at ratio 10, 25 at ratio 100). Net, learning rate and
#   schedule were chosen on a validation split carved from the training images with CE alone
#   (bench/recipe_search.py), never on the test set and never per loss; standard reuses what the quick stage
#   chose. ResNet-8 at these budgets: bench/frontier.py.
# quick: ratio 10 rather than 100 — at ratio 100 a one-minute budget leaves the tail classes almost unlearnt
#   (bench/frontier_results.json, the 8-epoch convnet-s point), so the per-class comparison would show little.
# standard: the real long-tail protocol (ratio 100).
# ldam-drw: LDAM-DRW (Cao et al. 2019): ResNet-32, 200 epochs, SGD lr 0.1 without Nesterov, weight decay 2e-4,
#   5 warm-up epochs rising once per epoch, x0.01 at epoch 160 and x0.0001 at 180; LDAM with deferred
#   re-weighting from epoch 160 (the first decay). It trains CE, both CCE forms, LDAM-DRW and CE-DRW in one
#   paired run. Meant for a GPU.
# authors: the CCE authors' own training script (unique-chan/Complement-Cross-Entropy at commit da6f592,
#   my_utils/trainer.py and my_utils/parser.py): SGD lr 0.1, momentum 0.9 without Nesterov, weight decay 1e-4,
#   batch 128, 5 warm-up epochs, x0.1 at epochs 100 and 150 of 200. Their script takes the network as an
#   argument; we use ResNet-32. They trained the reference form of CCE (docs/design.md), so the preset
#   compares CE with both forms. Meant for a GPU.
# Both CPU presets score 2,000 stratified test images after each epoch but the last (which scores all 10,000):
# for ResNet-8 that saved just over 10 % of standard's CPU time (bench/eval_subset_results.json); with flip
# TTA doubling every evaluation, it matters more. The GPU presets score the whole test set every epoch.
EPOCH_EVAL_IMAGES_CPU = 2000
PRESETS: dict[str, TrainConfig] = {
    "quick": TrainConfig(
        dataset="cifar10", profile="exp", imbalance_ratio=10.0, model="convnet-s",
        epochs=6, batch_size=256, learning_rate=0.2, weight_decay=5e-4, warmup_epochs=0.5, schedule="linear",
        test_time_flip=True, epoch_eval_images=EPOCH_EVAL_IMAGES_CPU,
    ),
    "standard": TrainConfig(
        dataset="cifar10", profile="exp", imbalance_ratio=100.0, model="convnet-s",
        epochs=33, batch_size=256, learning_rate=0.2, weight_decay=5e-4, warmup_epochs=1.0, schedule="linear",
        test_time_flip=True, epoch_eval_images=EPOCH_EVAL_IMAGES_CPU,
    ),
    "ldam-drw": TrainConfig(
        dataset="cifar10", profile="exp", imbalance_ratio=100.0, model="resnet32",
        losses=("ce", "cce", "cce_reference", "ldam_drw", "ce_drw"),
        epochs=200, batch_size=128, learning_rate=0.1, weight_decay=2e-4, warmup_epochs=5.0, schedule="ldam",
        nesterov=False, warmup_per_epoch=True,
    ),
    "authors": TrainConfig(
        dataset="cifar10", profile="exp", imbalance_ratio=100.0, model="resnet32",
        losses=("ce", "cce", "cce_reference"),
        epochs=200, batch_size=128, learning_rate=0.1, weight_decay=1e-4, warmup_epochs=5.0, schedule="authors",
        nesterov=False,
    ),
}
# Old name of "ldam-drw" (it was never the CCE authors' recipe); still accepted so old commands keep working.
PRESET_ALIASES = {"paper": "ldam-drw"}


def parse_seed_text(text: str) -> tuple[int, ...]:
    """Seeds written as "0,1,2" (CLI and form)."""
    try:
        seeds = tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError as error:
        raise ValueError(f"seeds: expected whole numbers separated by commas (e.g. 0,1,2), got {text!r}") from error
    if not seeds:
        raise ValueError("seeds: give at least one seed (e.g. 0)")
    return seeds


def preset(name: str, **overrides: Any) -> TrainConfig:
    """A preset by name, with optional field overrides (validated like any config)."""
    name = PRESET_ALIASES.get(name, name)
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
