"""What "no clear difference" can and cannot rule out, from the per-seed paired differences of a grid.

An interval that covers zero is not evidence of no effect: with five seeds it may be too wide to see a real
difference. Two computed answers go beside every such verdict:

- the smallest difference the grid could detect: the true mean difference that a two-sided paired t-test at
  5 % would find with 80 % power, given the seeds' spread, approximately (t_(1 − α/2, n − 1) + t_(power, n − 1))
  × sd / √n (the usual normal-shift approximation of the non-central t);
- an equivalence test (TOST, two one-sided tests at 5 %) against a margin fixed before computing any of it:
  the difference is shown equivalent to zero within ± margin when the 90 % t-interval lies inside it.

Pure functions of numbers; the claims module and the Results tab word the outcome.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .metrics import regularised_incomplete_beta, with_minus

# The equivalence margin in balanced accuracy (a fraction): one point, the tolerance the long-budget rule uses
# for "as good as", chosen before any equivalence was computed. Not tuned to any result.
EQUIVALENCE_MARGIN = 0.01
ALPHA = 0.05
POWER = 0.80
QUANTILE_TOLERANCE = 1e-10


def t_upper_tail(t: float, degrees_of_freedom: int) -> float:
    """P(T > t) for Student's t with `degrees_of_freedom`: ½ I_(df / (df + t²))(df / 2, ½) for t ≥ 0."""
    tail = 0.5 * regularised_incomplete_beta(degrees_of_freedom / (degrees_of_freedom + t * t), degrees_of_freedom / 2, 0.5)
    return tail if t >= 0 else 1.0 - tail


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """The t such that P(T ≤ t) = probability, by bisection on the tail (monotone, so it always converges)."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability: must be in (0, 1), got {probability}")
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom: must be >= 1, got {degrees_of_freedom}")
    low, high = -1e3, 1e3
    while high - low > QUANTILE_TOLERANCE:
        middle = (low + high) / 2
        if 1.0 - t_upper_tail(middle, degrees_of_freedom) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True)
class Sensitivity:
    """What a set of paired differences (one per seed) can rule out."""

    seeds: int
    mean: float
    detectable: float  # the difference found with 80 % power at 5 % (two-sided); same unit as the inputs
    interval_90: tuple[float, float]  # the TOST interval
    margin: float

    @property
    def equivalent(self) -> bool:
        """Both one-sided tests reject: the difference lies within ± margin (at 5 %)."""
        low, high = self.interval_90
        return -self.margin < low and high < self.margin


def sensitivity(differences: Sequence[float], margin: float = EQUIVALENCE_MARGIN) -> Sensitivity | None:
    """None with fewer than two seeds (no spread to reason from)."""
    values = [float(value) for value in differences if value is not None]
    if len(values) < 2:
        return None
    count = len(values)
    mean = sum(values) / count
    standard_error = math.sqrt(sum((value - mean) ** 2 for value in values) / (count - 1) / count)
    degrees = count - 1
    detectable = (t_quantile(1 - ALPHA / 2, degrees) + t_quantile(POWER, degrees)) * standard_error
    half = t_quantile(1 - ALPHA, degrees) * standard_error
    return Sensitivity(count, mean, detectable, (mean - half, mean + half), margin)


def sensitivity_words(result: Sensitivity, scale: float = 100.0, unit: str = "points") -> str:
    """'the 5 seeds could detect about 2.1 points (80 % power); within ±1 point of zero: not shown (90 % interval
    −2.0 to +0.4)' — a clause for beside a "no clear difference"."""
    low, high = (scale * value for value in result.interval_90)
    interval = with_minus(f"90 % interval {low:+.1f} to {high:+.1f}")
    verdict = "shown equivalent" if result.equivalent else "equivalence not shown"
    return (f"the {result.seeds} seeds could detect about {scale * result.detectable:.1f} {unit} (80 % power); "
            f"within ±{scale * result.margin:g} {unit.rstrip('s') if scale * result.margin == 1 else unit} of zero: {verdict} ({interval})")
