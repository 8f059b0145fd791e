"""The verdict card: the answer at a glance, per loss against the baseline (CE), in plain sentences.

Rules (docs/design.md, "Reading a paired comparison"):
- One seed compares two trained models, not two losses: the card gives the difference and, beside it, the
  seed-to-seed spread measured for the preset (or says it is not measured), and never names a winner.
- Several seeds: the mean difference with its 95 % interval across seeds, and whether it held up (the
  interval excludes zero) at this budget.
- The card names the run it describes and its scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...equivalence import sensitivity, sensitivity_words
from ...metrics import Direction, direction_of, format_p_value, summarise_differences
from ...provenance import data_copy_text
from ...run_state import JobSnapshot
from ...schema import PairedComparison
from ...status import JobStatus
from ..kit.charts import escape
from ..kit.evidence import GridSpread, preset_of, results_root, shipped_spread
from ..kit.formatting import MODEL_LABELS, countdown_text, points, run_scale_text
from ..kit.names import colour, display_name
from ..kit.theme import VERDICT_STYLE
from .views import completion, status_of


@dataclass(frozen=True)
class LossComparison:
    """One loss against the baseline over the seeds that finished."""

    other: str
    baseline: str
    balanced: tuple[float, ...]  # per seed, points
    tail: tuple[float | None, ...]  # per seed, points
    seeds: tuple[int, ...]
    last: PairedComparison  # the latest seed's comparison (McNemar counts)


def tail_recall_at_seed_end(snapshot: JobSnapshot, seed: int, loss: str) -> float | None:
    """Tail recall of `loss` at the last evaluated epoch of `seed` (its full final evaluation)."""
    points_of_seed = [point for point in snapshot.epochs if point.seed == seed]
    if not points_of_seed:
        return None
    last = max(points_of_seed, key=lambda point: point.epoch)
    return last.losses[loss].group_recall.get("tail") if loss in last.losses else None


def loss_comparisons(snapshot: JobSnapshot) -> list[LossComparison]:
    by_other: dict[str, list[PairedComparison]] = {}
    for comparison in snapshot.comparisons:
        by_other.setdefault(comparison.other, []).append(comparison)
    result = []
    for other, comparisons in by_other.items():
        baseline = comparisons[0].baseline
        tails = []
        for comparison in comparisons:
            mine = tail_recall_at_seed_end(snapshot, comparison.seed, other)
            base = tail_recall_at_seed_end(snapshot, comparison.seed, baseline)
            tails.append(100 * (mine - base) if mine is not None and base is not None else None)
        result.append(LossComparison(
            other, baseline, tuple(100 * c.balanced_accuracy_difference for c in comparisons), tuple(tails),
            tuple(c.seed for c in comparisons), comparisons[-1],
        ))
    return result


def budget_text(snapshot: JobSnapshot) -> str:
    config = snapshot.config
    return f"{MODEL_LABELS.get(config.model, config.model)}, {config.epochs} epoch{'s' if config.epochs != 1 else ''}"


def grids_root() -> Path:
    """Where the shipped result grids are: CCE_RESULTS_DIR, else the repository's results/."""
    return results_root()


def spread_sentence(snapshot: JobSnapshot, loss: str, baseline: str) -> str:
    """The seed-to-seed spread at these settings, computed from the shipped grid that covers them and naming
    it, or a plain statement that none does."""
    spread = shipped_spread(snapshot.config, grids_root())
    if spread is not None:
        return f"For scale: {spread.sentence(loss, display_name(baseline), display_name(loss))}."
    name = preset_of(snapshot.config)
    where = f"the {name} preset at ratio {snapshot.config.imbalance_ratio:g}" if name else "these settings"
    return (f"For scale: how much a second seed would move this number has not been measured yet for {where}: "
            "no shipped result grid covers them.")


# The Results tab's button, clicked from a link in the card (the tabs have no address of their own).
RESULTS_LINK = ('<a href="#results" class="cc-results-link" onclick="const tab = Array.from(document.querySelectorAll('
                "'[role=tab]')).find((b) => b.textContent.trim() === 'Results'); if (tab) { tab.click(); "
                'window.scrollTo(0, 0); } return false;">the Results tab</a>')


def holm_words(spread: GridSpread, loss: str) -> str:
    """Whether a direction the interval names also survives Holm’s correction over the grid’s comparisons."""
    if spread.holm_survivors is None:
        return ", before any correction for the grid's several comparisons"
    survives = "survives" if loss in spread.holm_survivors else "does not survive"
    return f", and it {survives} Holm’s correction over the grid’s {spread.comparisons} comparisons"


def general_answer_html(snapshot: JobSnapshot) -> str:
    """The general answer beside the run shown (issue 20): what the shipped grid with the same settings and
    ratio concludes for each of the run's losses against the baseline, with its 95 % interval, decided by the
    project's one verdict rule (`metrics.direction_of`) on the grid's own numbers (results/<grid>/results.json,
    through `shipped_spread`), never typed; or that no shipped grid covers these settings yet."""
    config = snapshot.config
    spread = shipped_spread(config, grids_root())
    if spread is None:
        name = preset_of(config)
        where = f"the {name} preset at ratio {config.imbalance_ratio:g}" if name else "these settings"
        return (f'<p class="cc-vg" id="verdict-general"><b>The general answer:</b> no shipped result grid covers {escape(where)} '
                f"yet, so there is no answer across seeds to set beside this run; {RESULTS_LINK} lists the grids that ship.</p>")
    if spread.seeds < 2:
        return (f'<p class="cc-vg" id="verdict-general"><b>The general answer:</b> the shipped grid {escape(spread.grid)} has '
                f"{spread.seeds} seed at these settings and ratio {config.imbalance_ratio:g} so far. A direction needs a 95 % "
                f"interval across seeds, which one seed cannot give, so there is no answer across seeds yet; {RESULTS_LINK} "
                "shows that seed.</p>")
    parts = []
    for loss in config.losses:
        entry = spread.differences.get(loss)
        if loss == spread.baseline or entry is None or not entry.has_interval:
            continue
        direction = direction_of(entry.low, entry.high)
        name, base = display_name(loss), display_name(spread.baseline)
        if direction == Direction.UNCLEAR:
            conclusion = "no clear difference at this budget"
        else:
            conclusion = f"{name} {'higher' if direction == Direction.ABOVE else 'lower'}{holm_words(spread, loss)}"
        parts.append(f"{escape(name)} − {escape(base)} {points(100 * entry.mean)} points balanced accuracy (95 % interval "
                     f"{points(100 * entry.low)} to {points(100 * entry.high)}): <b>{escape(conclusion)}</b>")
    if not parts:
        return ""
    return (f'<p class="cc-vg" id="verdict-general"><b>The general answer</b> (shipped grid {escape(spread.grid)}, '
            f"{spread.seeds} seeds at these settings and ratio {config.imbalance_ratio:g}): " + "; ".join(parts)
            + f". The whole grid is in {RESULTS_LINK}.</p>")


def data_sentence(snapshot: JobSnapshot) -> str:
    """Which copy of the data the run used, as its start event (and so its run.json) records it (issue 19);
    older runs say so. From the snapshot: the card is redrawn every second while a job runs."""
    if snapshot.config.dataset == "synthetic":
        return "Data: the synthetic set (generated)."
    data = snapshot.data
    if not isinstance(data.get("copy"), str) or not data["copy"]:  # imported runs are untrusted
        return "Data: which copy of the data this run used was not recorded (its run.json predates the record)."
    return f"Data: {data_copy_text(data)}."


def mean_or_none(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None


def comparison_html(snapshot: JobSnapshot, item: LossComparison) -> str:
    name, base = display_name(item.other), display_name(item.baseline)
    budget = budget_text(snapshot)
    tail = mean_or_none(item.tail)
    tail_text = f" · <b>{points(tail)}</b> <small>points tail recall</small>" if tail is not None else ""
    if len(item.balanced) >= 2:
        summary = summarise_differences(item.balanced)
        low, high = summary.interval
        numbers = (f'<div class="cc-vn">{escape(name)} − {escape(base)}: {points(summary.mean)} <small>points balanced accuracy '
                   f'(95 % interval {points(low)} to {points(high)})</small>{tail_text}</div>')
        direction = direction_of(low, high)
        if direction == Direction.UNCLEAR:
            meaning = (f"Over {len(item.balanced)} seeds, no clear difference at this budget ({budget}): the 95 % interval "
                       "of the mean difference includes zero.")
            limits = sensitivity([value / 100 for value in item.balanced])
            if limits is not None:  # what "no clear difference" can rule out (equivalence.py)
                sentence = sensitivity_words(limits)
                meaning += f" That is not evidence of no difference: {sentence[0].lower() + sentence[1:]}."
        else:
            direction = "higher" if direction == Direction.ABOVE else "lower"
            meaning = (f"Over {len(item.balanced)} seeds it held up: {name} scored {direction} than {base} on average at "
                       f"this budget ({budget}); the 95 % interval excludes zero.")
        per_seed = ", ".join(f"seed {seed}: {points(value)}" for seed, value in zip(item.seeds, item.balanced))
        extra = f"Per seed (balanced accuracy, points): {per_seed}."
        still = len(item.balanced) < len(snapshot.config.seeds)
        if still:
            extra += f" {len(item.balanced)} of {len(snapshot.config.seeds)} seeds so far."
    else:
        numbers = (f'<div class="cc-vn">{escape(name)} − {escape(base)}: {points(item.balanced[0])} '
                   f'<small>points balanced accuracy</small>{tail_text}</div>')
        meaning = (f"On seed {item.seeds[0]} at this budget ({budget}). That is a difference between two trained models, "
                   f"not yet between the two losses. {spread_sentence(snapshot, item.other, item.baseline)} Repeat with 3 seeds to see whether it "
                   "holds up.")
        test = item.last.mcnemar
        extra = (f"Paired test on the same test images: {test.only_a_correct} only {escape(base)} got right, "
                 f"{test.only_b_correct} only {escape(name)} (McNemar p = {format_p_value(test.p_value)}). "
                 "A small p says these two models make different mistakes; two seeds of the same loss differ like that too.")
    return (f'<div class="cc-vi" style="border-color:{colour(item.other)}">{numbers}'
            f'<p class="cc-vs">{meaning}</p>' + (f'<p class="cc-vx">{extra}</p>' if extra else "") + "</div>")


def verdict_html(snapshot: JobSnapshot | None, title: str = "") -> str:
    """The card (#verdict) for the shown run."""
    if snapshot is None:
        return (f'{VERDICT_STYLE}<div class="cc-card"><b>No run to show yet.</b> Choose a preset and press '
                "<b>Start training</b>; the verdict appears here when the first seed has finished.</div>")
    status = status_of(snapshot)
    done = completion(snapshot)
    chip = status.value if not done.partial else f"{status.value} after {done.text()}"
    header = (f'<div class="cc-vh"><b class="who">{escape(title or "Run")}</b><code>{escape(snapshot.job_id)}</code>'
              f'<span class="cc-chip">{escape(run_scale_text(snapshot.config))}</span><span class="cc-chip">{escape(chip)}</span></div>')
    items = loss_comparisons(snapshot)
    if not items:
        body = f"<p>{escape(waiting_sentence(snapshot))}</p>"
    else:
        body = "".join(comparison_html(snapshot, item) for item in items)
        if status.is_finished and status != JobStatus.DONE:
            seeds = len(items[0].balanced)
            body += (f'<p class="cc-vx">The run ended as <i>{escape(status.value)}</i> after {escape(done.text())}; these '
                     f"figures cover the {seeds} seed{'s' if seeds != 1 else ''} that finished.</p>")
    body += general_answer_html(snapshot)
    body += f'<p class="cc-vx">{escape(data_sentence(snapshot))}</p>'
    return f'{VERDICT_STYLE}<div class="cc-card">{header}{body}</div>'


def waiting_sentence(snapshot: JobSnapshot) -> str:
    status = status_of(snapshot)
    first = snapshot.config.seeds[0]
    if status == JobStatus.QUEUED:
        return f"Waiting in the queue. The verdict appears here when seed {first} has finished training."
    if status == JobStatus.RUNNING:
        eta = countdown_text(snapshot.eta_seconds) if len(snapshot.config.seeds) == 1 else ""
        return (f"Training. The verdict appears here when seed {first} has finished"
                + (f" (about {eta} from now)." if eta else "."))
    done = completion(snapshot)
    if status == JobStatus.FAILED:
        return f"No comparison: the run failed ({snapshot.error or 'no reason recorded'})."
    return (f"No comparison: the run ended as {status.value} after {done.text()}, before seed {first} finished. "
            "The charts below show the partly trained models.")
