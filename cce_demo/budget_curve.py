"""The difference as a function of training length: for each imbalance ratio, every loss − the baseline in
balanced accuracy (mean over seeds and its 95 % interval) at every budget a shipped grid trained, and what that
curve says in words by the project's one verdict rule (a direction only where the interval excludes zero).

It answers the question a reader of the paper brings to short CPU budgets: does a deficit (or a gain) shrink,
vanish or flip as the models train longer? Pure functions of typed results files (schema.GridResults); the
Results tab draws the curves and the claims module writes the sentences into the README.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .losses import DISPLAY_NAMES
from .metrics import Direction, direction_of, with_minus
from .schema import GridResults, Interval


@dataclass(frozen=True)
class BudgetPoint:
    """One loss − baseline difference at one budget: from grid `grid`, trained `epochs` epochs."""

    grid: str
    epochs: int
    seeds: int
    subset_per_seed: bool  # each seed drew its own long-tailed subset (the interval covers the draw too)
    difference: Interval  # balanced accuracy, loss − baseline, paired per seed (fractions, not points)

    @property
    def verdict(self) -> Direction | None:
        """ABOVE / BELOW / UNCLEAR by the one rule; None with a single seed (no interval)."""
        if not self.difference.has_interval:
            return None
        return direction_of(self.difference.low, self.difference.high)


@dataclass(frozen=True)
class BudgetCurve:
    """Every shipped budget at one (dataset, profile, imbalance ratio), per loss, shortest budget first."""

    dataset: str
    profile: str
    imbalance_ratio: float
    baseline: str
    points: dict[str, tuple[BudgetPoint, ...]]  # loss -> its budgets

    @property
    def budgets(self) -> tuple[int, ...]:
        return tuple(sorted({point.epochs for points in self.points.values() for point in points}))


def budget_curves(grids: Sequence[tuple[str, GridResults]]) -> list[BudgetCurve]:
    """One curve per (dataset, profile, ratio) that some grid covers, highest ratio first. Two grids at the same
    ratio and budget would be two points at one x: the later name is kept apart by its grid name in the point."""
    grouped: dict[tuple[str, str, float, str], dict[str, list[BudgetPoint]]] = {}
    for name, results in grids:
        epochs = results.config.get("epochs")
        if not isinstance(epochs, int):
            continue
        for table in results.tables:
            per_seed = len(set(table.subset_seeds) - {None}) > 1
            losses = grouped.setdefault((table.dataset, table.profile, table.imbalance_ratio, table.baseline), {})
            for loss, versus in table.versus_baseline.items():
                losses.setdefault(loss, []).append(
                    BudgetPoint(name, epochs, len(table.seeds), per_seed, versus.balanced_accuracy))
    curves = [
        BudgetCurve(dataset, profile, ratio, baseline,
                    {loss: tuple(sorted(points, key=lambda point: (point.epochs, point.grid))) for loss, points in losses.items()})
        for (dataset, profile, ratio, baseline), losses in grouped.items()
    ]
    return sorted(curves, key=lambda curve: (curve.dataset, curve.profile, -curve.imbalance_ratio))


def _name(loss: str) -> str:
    return DISPLAY_NAMES.get(loss, loss)


def _points_text(point: BudgetPoint) -> str:
    entry = point.difference
    text = f"{100 * entry.mean:+.1f}"
    if entry.has_interval:
        text += f" [{100 * entry.low:+.1f}, {100 * entry.high:+.1f}]"
    return with_minus(text)


def _verdict_text(verdict: Direction | None) -> str:
    return "one seed: no verdict" if verdict is None else str(verdict)


def curve_statement(curve: BudgetCurve, loss: str) -> str:
    """What one loss's curve shows, in words: its difference at each budget, and whether the verdict held,
    appeared, vanished or flipped as training got longer."""
    points = curve.points[loss]
    base = _name(curve.baseline)
    steps = "; ".join(
        f"{point.epochs} epochs ({point.seeds} seeds{', a subset draw per seed' if point.subset_per_seed else ''}): "
        f"{_points_text(point)} points, {_verdict_text(point.verdict)}{'' if point.verdict in (Direction.UNCLEAR, None) else ' ' + base}"
        for point in points
    )
    text = f"{_name(loss)} − {base}, balanced accuracy: {steps}"
    verdicts = [point.verdict for point in points if point.verdict is not None]
    if len(points) < 2:
        return text + " (one budget shipped: no trend yet)."
    if len(verdicts) < len(points):
        return text + " (a budget with one seed has no verdict: no trend is stated)."
    first, last = verdicts[0], verdicts[-1]
    span = f"from {points[0].epochs} to {points[-1].epochs} epochs"
    if first == last:
        change = (f"the verdict is the same {span}" if first != Direction.UNCLEAR
                  else f"no clear difference at any budget {span}")
    elif last == Direction.UNCLEAR:
        change = f"the {first}-{base} difference at {points[0].epochs} epochs is no longer clear at {points[-1].epochs}"
    elif first == Direction.UNCLEAR:
        change = f"a difference appears {span}: {last} {base} at {points[-1].epochs} epochs"
    else:
        change = f"the sign flips {span}: {first} {base}, then {last}"
    return f"{text}. So {change}."


def curve_statements(curve: BudgetCurve) -> list[str]:
    return [curve_statement(curve, loss) for loss in curve.points]
