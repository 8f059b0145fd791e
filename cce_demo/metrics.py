"""Evaluation metrics for imbalanced classification and the paired significance tests.

Confusion matrix, per-class recall, balanced accuracy, head/medium/tail recall by training count, McNemar's
exact test between two models on the same test set, and the across-seed summary of paired differences.
"""
from __future__ import annotations

import math
from enum import StrEnum
from typing import Sequence

import torch

from .schema import McNemar, SeedSummary

GROUP_NAMES = ("head", "medium", "tail")
# Share of classes in the head and in the tail groups; CIFAR-10 gives the usual 3 / 4 / 3 split.
GROUP_FRACTION = 0.3


def confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts[i, j] = number of samples of true class i predicted as j (int64, on the inputs' device)."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_recall(confusion: torch.Tensor) -> torch.Tensor:
    """Recall of each class; a class with no test samples gets NaN (not 0: it was never tested)."""
    support = confusion.sum(dim=1).double()
    return confusion.diagonal().double() / support


def balanced_accuracy(confusion: torch.Tensor) -> float:
    """Mean of the per-class recalls over the classes present in the test set."""
    recall = per_class_recall(confusion)
    return float(recall[~torch.isnan(recall)].mean())


def accuracy(confusion: torch.Tensor) -> float:
    return int(confusion.diagonal().sum()) / int(confusion.sum())  # integer counts: no float32 rounding


def class_groups(class_counts: Sequence[int]) -> dict[str, list[int]]:
    """Head / medium / tail class indices by training count: the 30 % most frequent classes, the 30 % rarest
    and the rest (CIFAR-10-LT: classes 0-2 / 3-6 / 7-9). Classes with equal counts always share a group, so
    the step profile gives its frequent half as head and its rare half as tail (medium empty)."""
    num_classes = len(class_counts)
    ordered = sorted(class_counts, reverse=True)
    group_size = max(1, round(GROUP_FRACTION * num_classes))
    head_floor = ordered[group_size - 1]
    tail_ceiling = ordered[num_classes - group_size]
    head = [index for index, count in enumerate(class_counts) if count >= head_floor]
    tail = [index for index, count in enumerate(class_counts) if count <= tail_ceiling and index not in head]
    medium = [index for index in range(num_classes) if index not in head and index not in tail]
    return {"head": head, "medium": medium, "tail": tail}


# The many / medium / few convention of published CIFAR-100-LT and ImageNet-LT tables (Liu et al. 2019): by
# training images per class, > 100 / 20-100 / < 20. On CIFAR-10-LT (ratio 100: 5000 ... 50) it leaves "few"
# empty, which is why the rank thirds above stay the default for 10 classes.
COUNT_GROUP_NAMES = ("many", "medium", "few")
MANY_SHOT_MINIMUM = 101
FEW_SHOT_MAXIMUM = 19


def count_groups(class_counts: Sequence[int]) -> dict[str, list[int]]:
    """Many / medium / few class indices by training count (> 100, 20-100, < 20 images)."""
    return {
        "many": [index for index, count in enumerate(class_counts) if count >= MANY_SHOT_MINIMUM],
        "medium": [index for index, count in enumerate(class_counts) if FEW_SHOT_MAXIMUM < count < MANY_SHOT_MINIMUM],
        "few": [index for index, count in enumerate(class_counts) if count <= FEW_SHOT_MAXIMUM],
    }


def mean_recall_of_groups(recall: Sequence[float], groups: dict[str, list[int]]) -> dict[str, float]:
    """Mean recall of each group of class indices (NaN for an empty group)."""
    result = {}
    for name, members in groups.items():
        values = [recall[index] for index in members if not math.isnan(recall[index])]
        result[name] = sum(values) / len(values) if values else float("nan")
    return result


def group_recall(recall: Sequence[float], class_counts: Sequence[int]) -> dict[str, float]:
    """Mean recall of the head / medium / tail rank groups (NaN for an empty group, as with 2 or 3 classes)."""
    return mean_recall_of_groups(recall, class_groups(class_counts))


# ---------------------------------------------------------------- McNemar


def binomial_two_sided_p(successes: int, trials: int) -> float:
    """Exact two-sided p-value of a fair-coin binomial: min(1, 2 * P(X <= min(k, n - k))). The tail is summed
    in log space (lgamma), since 2**-n underflows floats for the 10,000-sample test sets and exact integers
    cost seconds there."""
    if trials == 0:
        return 1.0
    smaller = min(successes, trials - successes)
    log_terms = [
        math.lgamma(trials + 1) - math.lgamma(count + 1) - math.lgamma(trials - count + 1) - trials * math.log(2)
        for count in range(smaller + 1)
    ]
    largest = max(log_terms)
    log_tail = largest + math.log(math.fsum(math.exp(term - largest) for term in log_terms))
    return min(1.0, 2 * math.exp(log_tail))


def mcnemar(correct_a: torch.Tensor, correct_b: torch.Tensor) -> McNemar:
    """McNemar's exact test on two boolean vectors of per-sample correctness."""
    if correct_a.shape != correct_b.shape:
        raise ValueError(f"mcnemar: both models must be scored on the same samples, got {correct_a.shape} and {correct_b.shape}")
    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((~correct_a & correct_b).sum())
    return McNemar(only_a_correct=only_a, only_b_correct=only_b, p_value=binomial_two_sided_p(only_a, only_a + only_b))


def mcnemar_per_class(
    targets: torch.Tensor, predictions_a: torch.Tensor, predictions_b: torch.Tensor, num_classes: int
) -> list[McNemar]:
    correct_a = predictions_a == targets
    correct_b = predictions_b == targets
    return [mcnemar(correct_a[targets == index], correct_b[targets == index]) for index in range(num_classes)]


# ---------------------------------------------------------------- across seeds

# Two-sided 95 % Student-t critical values by degrees of freedom, rounded up (the wide side) at the sixth
# decimal, so an interval recomputed with an exact quantile agrees to ~1e-6 of its half-width. Past 120 the
# normal 1.96 is within 1 %.
_T_CRITICAL_95 = {
    1: 12.706205, 2: 4.302653, 3: 3.182447, 4: 2.776446, 5: 2.570582, 6: 2.446912, 7: 2.364625, 8: 2.306005,
    9: 2.262158, 10: 2.228139, 11: 2.200986, 12: 2.178813, 13: 2.160369, 14: 2.144787, 15: 2.131450, 16: 2.119906,
    17: 2.109816, 18: 2.100923, 19: 2.093025, 20: 2.085964, 25: 2.059539, 30: 2.042273, 40: 2.021076, 60: 2.000298,
    120: 1.979931,
}


def t_critical_95(degrees_of_freedom: int) -> float:
    """The tabulated value for the largest tabulated df not above the given one: it errs on the wide side."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom: must be >= 1, got {degrees_of_freedom}")
    return _T_CRITICAL_95[max(df for df in _T_CRITICAL_95 if df <= degrees_of_freedom)]


def summarise_differences(differences: Sequence[float]) -> SeedSummary:
    values = tuple(float(value) for value in differences)
    if not values:
        raise ValueError("differences: need at least one seed")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return SeedSummary(differences=values, mean=mean, interval=None)
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    half_width = t_critical_95(len(values) - 1) * math.sqrt(variance / len(values))
    return SeedSummary(differences=values, mean=mean, interval=(mean - half_width, mean + half_width))


class Direction(StrEnum):
    """What a paired difference across seeds says about its sign (other loss minus baseline)."""

    ABOVE = "above"
    BELOW = "below"
    UNCLEAR = "no clear difference"


def direction_of(low: float, high: float) -> Direction:
    """The verdict rule (docs/design.md, "Reading a paired comparison"), decided here once: a difference has
    a direction only when its 95 % interval excludes zero. The verdict card, the Results tab and the grid
    tables word it each in their own way."""
    if high < 0:
        return Direction.BELOW
    if low > 0:
        return Direction.ABOVE
    return Direction.UNCLEAR


def clip_interval(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float, bool]:
    """A t-interval cut to the values the quantity can take (an accuracy lies in [0, 1]); the flag says
    whether it was cut. The t-interval is symmetric and unbounded, so with few seeds near 0 or 1 it can reach
    past them; the cut part holds no possible value."""
    clipped_low, clipped_high = max(low, bounds[0]), min(high, bounds[1])
    return clipped_low, clipped_high, (clipped_low, clipped_high) != (low, high)


# ---------------------------------------------------------------- paired t-test and Holm's correction

# Lentz's continued fraction for the incomplete beta function: stop when a step changes the value by less
# than this relative amount; a denominator below TINY is replaced by it (Numerical Recipes, sec. 6.4).
BETA_FRACTION_TOLERANCE = 1e-14
BETA_FRACTION_TINY = 1e-300
BETA_FRACTION_MAX_TERMS = 10_000


def regularised_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction (Numerical Recipes eq. 6.4.5), using the symmetry
    I_x(a, b) = 1 - I_(1-x)(b, a) where the fraction converges slowly."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x: must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    if x > (a + 1) / (a + b + 2):
        return 1.0 - regularised_incomplete_beta(1.0 - x, b, a)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > BETA_FRACTION_TINY else BETA_FRACTION_TINY)
    fraction = d
    for m in range(1, BETA_FRACTION_MAX_TERMS):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > BETA_FRACTION_TINY else BETA_FRACTION_TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > BETA_FRACTION_TINY else BETA_FRACTION_TINY
            step = c * d
            fraction *= step
        if abs(step - 1.0) < BETA_FRACTION_TOLERANCE:
            break
    return math.exp(log_front) * fraction / a


def paired_t_p_value(differences: Sequence[float]) -> float | None:
    """Two-sided p-value of the one-sample t-test of mean zero on paired differences (one per seed):
    t = mean / (sd / sqrt(n)), df = n - 1, p = I_(df / (df + t^2))(df / 2, 1 / 2). None with one seed."""
    values = [float(value) for value in differences]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    if variance == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / math.sqrt(variance / len(values))
    df = len(values) - 1
    return regularised_incomplete_beta(df / (df + t * t), df / 2, 0.5)


def holm(p_values: dict[str, float], alpha: float = 0.05) -> dict[str, dict[str, float | bool]]:
    """Holm's step-down correction (Holm 1979) over a family of m tests: sorted p_(1) <= ... <= p_(m), the
    adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)); a test survives when its adjusted p is
    below alpha. Controls the family-wise error rate at alpha."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ordered)
    result, running = {}, 0.0
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        result[name] = {"p_value": p, "adjusted_p": running, "survives": running < alpha}
    return result


# ---------------------------------------------------------------- formatting (CLI and UI share these)


def with_minus(text: str) -> str:
    """Number text with the typographic minus (U+2212) for every hyphen: the one home of that rule. Apply it to
    numbers only; names beside them keep their hyphens ("LDAM-DRW")."""
    return text.replace("-", "−")


def signed(value: float, digits: int = 1) -> str:
    """A signed number with the typographic minus: "+1.2", "−0.4"."""
    return with_minus(f"{value:+.{digits}f}")


def format_percent(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def format_p_value(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"
