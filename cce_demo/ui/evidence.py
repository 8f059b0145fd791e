"""What we measured, in one place: wall time of each preset on 2 CPU cores and how much one seed moves the
result. The verdict quotes these beside a one-seed difference, so a reader can judge its size; a preset
without a measurement says so. Sources: docs/design.md ("Measured facts") and the README's preset tables.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import PRESETS, TrainConfig


@dataclass(frozen=True)
class SeedSpread:
    """Seed-to-seed spread measured for one preset (CIFAR-10-LT, paired CE vs CCE paper form)."""

    seeds: int  # how many seeds were trained
    ce_range: float  # max - min of CE's balanced accuracy over those seeds, in points
    difference_range: tuple[float, float]  # lowest and highest per-seed CCE - CE, in points

    def sentence(self) -> str:
        low, high = self.difference_range
        return (f"with this preset CE's own balanced accuracy ranged over {self.ce_range:.1f} points across "
                f"{self.seeds} seeds, and CCE − CE ranged from {points(low)} to {points(high)}")


@dataclass(frozen=True)
class PresetFacts:
    wall_time: str  # measured end to end, or what it is meant for
    note: str  # what the preset is for
    spread: SeedSpread | None  # None: not measured yet


PRESET_FACTS: dict[str, PresetFacts] = {
    "quick": PresetFacts(
        "84–87 s on 2 CPU cores (measured)",
        "CE vs CCE, ResNet-8, 4 epochs, CIFAR-10 with imbalance ratio 10 (at ratio 100 so short a budget leaves the "
        "rarest classes at zero recall for both losses).",
        SeedSpread(seeds=3, ce_range=3.5, difference_range=(-1.6, -0.5)),
    ),
    "standard": PresetFacts(
        "about 9 min 15 s on 2 CPU cores (measured)",
        "The real long-tail protocol (ratio 100), ResNet-8, 25 epochs.",
        None,
    ),
    "ldam-drw": PresetFacts(
        "meant for a GPU (many hours on a CPU)",
        "LDAM-DRW's schedule: ResNet-32, 200 epochs, ratio 100, steps at epochs 160 and 180.",
        None,
    ),
    "authors": PresetFacts(
        "meant for a GPU (many hours on a CPU)",
        "The CCE authors' own script: ResNet-32, 200 epochs, ratio 100, steps at epochs 100 and 150, CE vs both "
        "CCE forms.",
        None,
    ),
}


def preset_note(name: str) -> str:
    facts = PRESET_FACTS.get(name)
    if facts is None:
        return ""
    return f"**{facts.wall_time[0].upper()}{facts.wall_time[1:]}.** {facts.note}"


# Fields that do not change what a preset measures: the seeds, the device, and how many test images are scored
# between epochs (the final evaluation always scores the whole test set).
IGNORED_FIELDS = frozenset({"seeds", "device", "epoch_eval_images"})


def preset_of(config: TrainConfig) -> str | None:
    """The preset a config was made from, ignoring `IGNORED_FIELDS`."""
    mine = {key: value for key, value in config.to_dict().items() if key not in IGNORED_FIELDS}
    for name, base in PRESETS.items():
        if {key: value for key, value in base.to_dict().items() if key not in IGNORED_FIELDS} == mine:
            return name
    return None


def points(value: float) -> str:
    """A difference in percentage points, with a real minus sign: "−1.6", "+0.3", "0.0"."""
    text = f"{value:+.1f}"
    if text in ("+0.0", "-0.0"):
        return "0.0"
    return text.replace("-", "−")


# Post-hoc prior correction (logits − log prior, τ = 1) of the shipped run's models on the whole CIFAR-10 test
# set, measured with `python bench/prior_correction.py --data-dir DIR` (bench/prior_correction_results.json):
# balanced accuracy as trained and corrected, per loss. Runs trained since then record their own corrected
# scores in run.json (evaluations' "prior_corrected").
MEASURED_PRIOR_CORRECTION: dict[str, dict[str, tuple[float, float]]] = {
    "cifar10-lt100-standard-ce-cce": {"ce": (0.4927, 0.6192), "cce": (0.4763, 0.5984)},
}
