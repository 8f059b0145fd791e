"""One time source for the Train & compare tab (issue 20): the preset note, the estimate beside Start, the
reason Start is refused and the "Repeat with 3 seeds" label all read one `FormTime`, made from the job
manager's own estimate (the one `submit` checks against the time limit, on the speed-probed table). So no
figure on the tab can disagree with another, and none is typed: the preset note used to quote a wall time
measured for an earlier preset.

A handler that changes the form (a preset picked, a link opened) sends the note and the estimate in the same
response as the settings, made from the settings it sends, so no estimate for a half-switched form (the new
preset with the old settings) is ever drawn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ...budget import describe_duration
from ...config import TrainConfig
from ...jobs import JobManager
from ...status import JobStatus
from ..kit.charts import escape
from ..kit.evidence import PRESET_FACTS


@dataclass(frozen=True)
class FormTime:
    """How long a config should take here, and what the time limit per job says about it."""

    seconds: float | None  # None when there is no estimate (`problem` says why)
    text: str  # "about 3 min on this machine"
    measured: bool  # False when the device's costs are guesses
    limit_seconds: float | None  # the limit per job here; None: no limit
    problem: str = ""

    def __post_init__(self) -> None:
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"seconds: must be a finite number >= 0 or None, got {self.seconds!r}")
        if self.seconds is None and not self.problem:
            raise ValueError("a FormTime without seconds must say why (problem)")

    @property
    def over_limit(self) -> bool:
        return self.seconds is not None and self.limit_seconds is not None and self.seconds > self.limit_seconds

    @property
    def limit_text(self) -> str:
        return describe_duration(self.limit_seconds) if self.limit_seconds is not None else ""

    def refusal(self) -> str:
        """Why Start would be refused for this config ("" when it would not be)."""
        if not self.over_limit:
            return ""
        return (f"Estimated {self.text}: over the limit of {self.limit_text} per job here. Fewer epochs, seeds or "
                "losses, or a smaller model, make it shorter.")

    def estimate_html(self) -> str:
        """The line beside Start: "Estimated time: about 1 min 40 s on this machine", and the limit."""
        if self.seconds is None:
            return f'<span class="cc-sub">Estimated time: unknown ({escape(self.problem[:200])})</span>'
        text = f"Estimated time: <b>{escape(self.text)}</b>"
        if not self.measured:
            text += " (a rough guess: no timings measured on this kind of device)"
        if self.over_limit:
            return (f'<span style="color:#b91c1c">{text}: over the limit of {self.limit_text} per job here, so Start '
                    "is off (the job would be refused). Fewer epochs, seeds or losses, or a smaller model, make it shorter.</span>")
        if self.limit_seconds is not None:
            text += f" (limit here: {self.limit_text} per job)"
        return f'<span class="cc-sub">{text}</span>'

    def preset_note(self, preset_name: str) -> str:
        """The preset's note: what it is for, and how long it takes here, from this estimate (Markdown)."""
        facts = PRESET_FACTS.get(preset_name)
        if facts is None:
            return ""
        if self.seconds is None:
            return facts.note
        # The GPU presets' facts say what they are meant for; the time is this machine's, computed.
        meant = f" ({facts.meant_for})" if facts.meant_for else ""
        return f"**{self.text[0].upper()}{self.text[1:]}**{meant}. {facts.note}"

    def repeat_label(self) -> str:
        """The label of the button that repeats the shown run with 3 seeds."""
        label = "Repeat these settings with 3 seeds (0, 1, 2)"
        if self.seconds is None:
            return label
        return f"{label} — {self.text}" + (f" (over the {self.limit_text} limit)" if self.over_limit else "")


def expected_wait(active: Sequence[Any], position: int, workers: int = 1) -> float | None:
    """Seconds until the job at queue `position` (1-based) should start: the time left of the running jobs
    (their ETA, else what their estimate leaves) plus the estimates of the jobs queued ahead of it, shared over
    `workers`. None when a job ahead has no figure at all (no wait is better than a wrong one)."""
    total = 0.0
    for job in active:
        if job.status == JobStatus.RUNNING:
            left = job.eta_seconds
            if left is None and job.estimate_seconds is not None:
                left = job.estimate_seconds * (1 - job.progress)
        elif job.status == JobStatus.QUEUED and job.queue_position is not None and job.queue_position < position:
            left = job.estimate_seconds
        else:
            continue
        if left is None or not math.isfinite(left):
            return None
        total += max(0.0, left)
    return total / max(1, workers)


def custom_note(base_preset: str) -> str:
    """The note once the settings were edited by hand: the preset's own note no longer applies."""
    return f"Custom settings, starting from the *{base_preset}* preset. The estimate below is for these settings."


def form_time(manager: JobManager, config: TrainConfig) -> FormTime:
    """The manager's estimate of `config` (a CostEstimate) as a `FormTime`, with the manager's job limit."""
    limit_minutes = manager.limits.max_job_minutes
    limit = None if limit_minutes is None else limit_minutes * 60
    try:
        estimate = manager.estimate(config)
    except (ValueError, RuntimeError) as error:
        return FormTime(None, "", False, limit, problem=str(error) or type(error).__name__)
    seconds = estimate.total_seconds
    if not math.isfinite(seconds) or seconds < 0:
        return FormTime(None, "", False, limit, problem="the job manager gave no estimate")
    return FormTime(float(seconds), estimate.text or f"about {describe_duration(seconds)}", estimate.measured, limit)
