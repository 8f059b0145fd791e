"""Numbers and runs in words, the same on every tab: a difference in points, a cell of a table, a countdown, a
run's scale."""
from __future__ import annotations

from typing import Any

from ...budget import COUNTDOWN_STEP_SECONDS, describe_duration
from ...config import TrainConfig
from ...datasets import dataset_spec
from ...metrics import with_minus
from .charts import finite


def points(value: float) -> str:
    """A difference in percentage points, with a real minus sign: "−1.6", "+0.3", "0.0"."""
    text = f"{value:+.1f}"
    if text in ("+0.0", "-0.0"):
        return "0.0"
    return with_minus(text)


def countdown_text(seconds: float | None) -> str:
    """A countdown in words ("1 min 15 s"), "" when unknown."""
    return describe_duration(seconds, COUNTDOWN_STEP_SECONDS)



def percent_cell(value: Any) -> str:
    """A fraction as a table cell in %: "n/a" for None, NaN, ±inf or anything else (a diverged run)."""
    number = finite(value)
    return "n/a" if number is None else f"{100 * number:.1f}"



def number_cell(value: Any, digits: int = 3) -> str:
    number = finite(value)
    return "n/a" if number is None else f"{number:.{digits}f}"


MODEL_LABELS = {
    "resnet8": "ResNet-8", "resnet20": "ResNet-20", "resnet32": "ResNet-32",
    "convnet-s": "ConvNet-S", "convnet-m": "ConvNet-M", "convnet-l": "ConvNet-L",
}



def run_scale_text(config: TrainConfig) -> str:
    """A run's scale in a few words: "CIFAR-10-LT, ratio 100 · ResNet-8 · 25 epochs · seed 0"."""
    dataset = dataset_spec(config.dataset).label
    profile = "" if config.profile == "exp" else f" ({config.profile} profile)"
    seeds = f"seed {config.seeds[0]}" if len(config.seeds) == 1 else f"{len(config.seeds)} seeds ({', '.join(map(str, config.seeds))})"
    return (f"{dataset}, ratio {config.imbalance_ratio:g}{profile} · {MODEL_LABELS.get(config.model, config.model)} · "
            f"{config.epochs} epoch{'s' if config.epochs != 1 else ''} · {seeds}")
