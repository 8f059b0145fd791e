"""What each preset is for, and how much one seed moves the result, computed from the shipped result grid
for the same settings (`shipped_spread`). The verdict quotes the spread beside a one-seed difference, so a
reader can judge its size, names the grid it comes from, and says plainly when no shipped grid covers the
settings.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import PRESETS, TrainConfig
from ...grid_tables import load_results
from ...metrics import t_critical_95
from ...schema import GridResults, Interval
from .formatting import points

# cce_demo/ui/kit/evidence.py -> the repository root's results/
REPOSITORY_RESULTS = Path(__file__).resolve().parents[3] / "results"


@dataclass(frozen=True)
class PresetFacts:
    note: str  # what the preset is for
    # Where the preset belongs when it is not this machine's to run ("meant for a GPU"); None for the CPU
    # presets, whose time the form's estimate computes for this host rather than quoting a measurement.
    meant_for: str | None = None


def _settings(name: str) -> str:
    config = PRESETS[name]
    return (f"{config.model}, {config.epochs} epochs, {config.schedule} schedule"
            + (", flip test-time augmentation" if config.test_time_flip else ""))


PRESET_FACTS: dict[str, PresetFacts] = {
    # The CPU presets' settings are described from the presets themselves (they change with the recipe).
    "quick": PresetFacts(
        f"CE vs CCE, {_settings('quick')} (ratio 10: at ratio 100 so short a budget leaves the tail classes "
        "almost unlearnt)."),
    "standard": PresetFacts(f"The real long-tail protocol (ratio 100), {_settings('standard')}."),
    "ldam-drw": PresetFacts(
        "LDAM-DRW (Cao et al. 2019): ResNet-32, 200 epochs, ratio 100, steps at epochs 160 and 180, LDAM with "
        "deferred re-weighting from epoch 160, against CE, both CCE forms and CE-DRW.",
        meant_for="meant for a GPU (many hours on a CPU)"),
    "authors": PresetFacts(
        "The CCE authors' own script: ResNet-32, 200 epochs, ratio 100, steps at epochs 100 and 150, CE vs both "
        "CCE forms.",
        meant_for="meant for a GPU (many hours on a CPU)"),
}


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


# ---------------------------------------------------------------- seed spread from the shipped grids

# Fields that a grid's table fixes per table rather than per grid, or that do not change what CE learns
# (which other losses train beside it: the pairing leaves each model's own training untouched).
GRID_TABLE_FIELDS = frozenset({"dataset", "profile", "imbalance_ratio", "losses"})


@dataclass(frozen=True)
class GridSpread:
    """How much the seed moves the result, from one shipped grid's table for the same settings."""

    grid: str  # the grid's name (results/<grid>/results.json)
    seeds: int
    baseline: str
    baseline_sd: float | None  # standard deviation of the baseline's balanced accuracy across seeds, points (None: one seed)
    baseline_range: float | None  # max - min across seeds, points (only files with per-seed values)
    differences: dict[str, Interval]  # loss -> its balanced-accuracy difference to the baseline, across seeds
    holm_survivors: tuple[str, ...] | None = None  # None: the file holds no Holm block (format 1)
    comparisons: int = 0  # how many comparisons Holm's correction was over

    def sentence(self, loss: str, baseline_name: str, loss_name: str) -> str:
        if self.baseline_sd is None:
            return (f"the shipped grid {self.grid} (results/{self.grid}/results.json) has {self.seeds} seed at these settings "
                    "so far, and one seed cannot say how much a second would move this number")
        text = (f"in the shipped grid {self.grid} ({self.seeds} seeds at these settings, results/{self.grid}/results.json) "
                f"{baseline_name}'s own balanced accuracy had a seed-to-seed standard deviation of {self.baseline_sd:.1f} points")
        if self.baseline_range is not None:
            text += f" (range {self.baseline_range:.1f})"
        entry = self.differences.get(loss)
        if entry is not None and entry.has_interval:
            text += (f", and {loss_name} − {baseline_name} averaged {points(100 * entry.mean)} "
                     f"(95 % interval {points(100 * entry.low)} to {points(100 * entry.high)})")
        return text


def baseline_spread(entry: Interval) -> tuple[float, float | None] | None:
    """(sd, range) in points of one interval entry across seeds: from its per-seed values (format 2), or the
    sd from the interval itself (format 1: half-width = t * sd / sqrt(n), with the same tabulated t)."""
    values = [value for value in entry.values if value is not None]
    if len(values) >= 2:
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))
        return 100 * sd, 100 * (max(values) - min(values))
    if entry.seeds >= 2 and entry.has_interval and not entry.clipped:
        half = (entry.high - entry.low) / 2
        return 100 * half * math.sqrt(entry.seeds) / t_critical_95(entry.seeds - 1), None
    return None


def results_root() -> Path:
    return Path(os.environ.get("CCE_RESULTS_DIR") or REPOSITORY_RESULTS)


@functools.lru_cache(maxsize=4)
def _shipped(root: str) -> tuple[tuple[str, GridResults], ...]:
    grids = []
    for path in sorted(Path(root).glob("*/results.json")):
        try:
            grids.append((path.parent.name, load_results(path)))
        except (OSError, ValueError):
            continue  # the Results tab names unreadable files; here they simply do not count
    return tuple(grids)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    defaults = TrainConfig().to_dict()  # files written before a field existed had its default
    return {key: config.get(key, default) for key, default in defaults.items() if key not in IGNORED_FIELDS | GRID_TABLE_FIELDS}


def shipped_spread(config: TrainConfig, root: Path | None = None) -> GridSpread | None:
    """The seed spread for `config` from a shipped grid with the same settings (every field but the seeds,
    the device, the between-epoch evaluation subset and the other losses) and a table for its dataset,
    profile and ratio; None when no shipped grid covers them."""
    mine = _comparable(config.to_dict())
    for name, data in _shipped(str(root or results_root())):
        if _comparable(data.config) != mine:
            continue
        table = data.table_for(config.dataset, config.profile, config.imbalance_ratio)
        if table is None or table.baseline not in table.losses:
            continue
        spread = baseline_spread(table.losses[table.baseline].balanced_accuracy)
        if spread is None and len(table.seeds) != 1:
            continue  # a format-1 interval that was clipped: no spread to recover
        sd, value_range = spread if spread is not None else (None, None)
        differences = {loss: entry.balanced_accuracy for loss, entry in table.versus_baseline.items()}
        holm = table.multiplicity
        return GridSpread(name, len(table.seeds), table.baseline, sd, value_range, differences,
                          holm.survivors if holm.results is not None else None, holm.comparisons or len(table.versus_baseline))
    return None

