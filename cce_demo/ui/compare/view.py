"""The compare view's core: which run the page shows (a `ViewRef`), its snapshot, and every component of the
view drawn from it, with the buttons in step with this visitor's job. Train & compare (handlers.py), the page
lifecycle and the Runs tab (Open) all switch the view through `show`; none of them draws it itself.
"""
from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any, Mapping

import gradio as gr

from ...config import TrainConfig, preset
from ...data import planned_class_counts
from ...jobs import UnknownJobError
from ...run_directory import RunCorruptError, RunRecord
from ...run_state import JobSnapshot, snapshot_from_run_dir
from ...status import JobStatus
from ..context import UiContext, Update
from ..kit.charts import escape
from ..kit.errors import user_error
from ..kit.identity import Visitor
from ..kit.state import BrowserMemory, Controls, Drawn, ViewRef
from .settings import class_names_for
from .timing import expected_wait, form_time
from .verdict import loss_comparisons, verdict_html
from .views import (
    CountsSeries, completion, confusion_html, counts_chart, counts_label, countdown_text, epoch_chart, groups_table,
    live_strip_html, loss_chart, recall_chart, status_html,
)


REPEAT_SEEDS = (0, 1, 2)



TITLE_YOURS = "Your run"



TITLE_OTHER = "A run from another browser (watching; only its browser can stop it)"



NOT_LOADED = "This page has not finished loading, or its session has expired: reload the page."



TITLE_SHIPPED = "Shipped run"



TITLE_RUN = "Run"



_SKIP = object()  # "leave the class-count chart as it is"



log = logging.getLogger("cce_demo.ui")



_LOGGED_FAILURES: set[tuple[str, str]] = set()  # (run, view) already logged: a tick must not log every second



MAX_LOGGED_FAILURES = 1000



def snapshot_for(ctx: UiContext, view: ViewRef | None) -> JobSnapshot | None:
    """The viewed job's or run's snapshot; None when there is nothing to show or it vanished."""
    if view is None:
        return None
    try:
        if view.kind == "job":
            return ctx.app.manager.snapshot(view.id)
        return snapshot_from_run_dir(ctx.app.catalog.find(view.id).run_dir)
    except (UnknownJobError, RunCorruptError, ValueError, OSError):
        return None



def is_active(ctx: UiContext, job_id: str) -> bool:
    try:
        return not ctx.app.manager.snapshot(job_id).is_finished
    except UnknownJobError:
        return False



def controls_for(ctx: UiContext, visitor: Visitor | None) -> Controls:
    """This visitor's queued or running job, if any (from the server's ownership table only)."""
    job_id = ctx.app.owners.job_of(visitor.id if visitor else None)
    return Controls(job_id if job_id and is_active(ctx, job_id) else None)



def start_button(controls: Controls, refusal: str = "") -> Any:
    """Start: enabled when this browser has no job and the form's estimate is within the limit; when disabled
    its label says why (the estimate line under it gives the figures)."""
    if not controls.start_enabled:
        return gr.Button(value="Training… (one run at a time per browser)", interactive=False)
    if refusal:
        return gr.Button(value="Start training — over the time limit here (see the estimate below)", interactive=False)
    return gr.Button(value="Start training", interactive=True)


def control_updates(ctx: UiContext, controls: Controls, refusal: str = "") -> Update:
    """The buttons; a disabled one says why on its label."""
    ui = ctx.ui
    return {
        ui.compare.start: start_button(controls, refusal),
        ui.compare.stop: gr.Button(value="Stop your run" if controls.stop_enabled else "Stop (yours only)",
                           interactive=controls.stop_enabled),
    }



def counts_config(preset_name: str, settings: Mapping[str, Any]) -> TrainConfig:
    """The preset with the form's settings that decide the class counts (dataset, profile, ratio): the rest of
    the form may be half-typed. Raises ValueError or TypeError for an unusable value."""
    return preset(preset_name, dataset=settings["dataset"], profile=settings["profile"], imbalance_ratio=float(settings["ratio"]))


def next_run_counts(preset_name: str, settings: Mapping[str, Any]) -> CountsSeries | None:
    """The class counts the form's settings (by the form's names) would train on; None for a half-typed or
    impossible setting."""
    try:
        config = counts_config(preset_name, settings)
        counts = planned_class_counts(config)
    except (TypeError, ValueError):
        return None
    return CountsSeries(counts_label("next run", config), class_names_for(config.dataset, config.num_classes), tuple(counts))



def shown_run_counts(snapshot: JobSnapshot | None) -> CountsSeries | None:
    if snapshot is None:
        return None
    config = snapshot.config
    counts = tuple(snapshot.class_counts)
    names = tuple(snapshot.class_names)
    if not counts:
        try:
            counts = tuple(planned_class_counts(config))
        except ValueError:
            return None
        names = class_names_for(config.dataset, config.num_classes)
    return CountsSeries(counts_label("shown run", config), names, counts)



def parse_time(text: Any) -> float | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None



def elapsed_seconds(ctx: UiContext, snapshot: JobSnapshot) -> float | None:
    """Wall time of a finished run: from the manager's record, else its run.json timestamps."""
    if snapshot.started_at and snapshot.finished_at:
        return snapshot.finished_at - snapshot.started_at
    try:
        record: RunRecord = ctx.app.catalog.find(snapshot.job_id)
    except (ValueError, RunCorruptError):
        return None
    start, end = parse_time(record.metadata.get("created_at")), parse_time(record.metadata.get("finished_at"))
    return end - start if start is not None and end is not None and end > start else None



def manager_estimate(ctx: UiContext, config: TrainConfig) -> tuple[float, str] | None:
    """The job manager's estimate for a config: (seconds, its words); None for a config it cannot estimate."""
    try:
        value = ctx.app.manager.estimate(config)
    except (ValueError, RuntimeError):
        return None
    if math.isfinite(value.total_seconds) and value.total_seconds > 0:
        return float(value.total_seconds), value.text
    return None



def repeat_estimate(ctx: UiContext, snapshot: JobSnapshot) -> str:
    """How long the 3-seed repeat should take, in words ("" when unknown): the manager's estimate if it
    offers one, else this run's own wall time scaled to 3 seeds."""
    config = snapshot.config.replace(seeds=REPEAT_SEEDS)
    estimate = manager_estimate(ctx, config)
    if estimate is not None:
        seconds, text = estimate
        return text or f"about {countdown_text(seconds)}"
    elapsed = elapsed_seconds(ctx, snapshot)
    done = completion(snapshot).epochs_done
    if elapsed and done:
        return f"about {countdown_text(elapsed * len(REPEAT_SEEDS) * config.epochs / done)} (this run's time × 3)"
    return ""



def repeat_update(ctx: UiContext, snapshot: JobSnapshot | None, controls: Controls) -> Any:
    if snapshot is None or not snapshot.is_finished or len(snapshot.config.seeds) >= len(REPEAT_SEEDS) or snapshot.status == JobStatus.FAILED:
        return gr.Button(visible=False)
    # The label and the limit from the tab's one time source (timing.py), as the estimate beside Start; a
    # manager without an estimate falls back to this run's own time × 3.
    time = form_time(ctx.app.manager, snapshot.config.replace(seeds=REPEAT_SEEDS))
    if time.seconds is not None:
        return gr.Button(value=time.repeat_label(), visible=True, interactive=controls.start_enabled and not time.over_limit)
    how_long = repeat_estimate(ctx, snapshot)
    label = "Repeat these settings with 3 seeds (0, 1, 2)" + (f" — {how_long}" if how_long else "")
    return gr.Button(value=label, visible=True, interactive=controls.start_enabled)



def cannot_draw(what: str) -> str:
    return (f'<div class="cc-card">The {escape(what)} cannot be drawn for this run: some of its numbers are missing or '
            "not finite (a diverged run, or a damaged run file). The rest of the page works as usual.</div>")



def safely(snapshot: JobSnapshot | None, what: str, fallback: Any, draw: Any, *args: Any, **kwargs: Any) -> Any:
    """`draw(*args)`, or `fallback` when it raises: one view that cannot be drawn shows a message in its place,
    and the page, the timer and the other views go on. Logged as one line, once per run and view."""
    try:
        return draw(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - any malformed snapshot: a message in place, never a broken page
        key = (snapshot.job_id if snapshot is not None else "", what)
        if key not in _LOGGED_FAILURES:
            if len(_LOGGED_FAILURES) >= MAX_LOGGED_FAILURES:
                _LOGGED_FAILURES.clear()
            _LOGGED_FAILURES.add(key)
            log.warning("cannot draw the %s of %s: %s: %s", what, key[0] or "no run", type(error).__name__, error)
        return fallback



def status_line(ctx: UiContext, snapshot: JobSnapshot | None, title: str) -> str:
    """The status line; while queued, with the expected wait from the jobs ahead (timing.expected_wait)."""
    wait = None
    if snapshot is not None and snapshot.status == JobStatus.QUEUED and snapshot.queue_position:
        try:
            wait = expected_wait(ctx.app.manager.active_jobs(), snapshot.queue_position,
                                 ctx.app.manager.max_concurrent)
        except (AttributeError, TypeError):
            wait = None
    return status_html(snapshot, title, wait)


def waits_with_eta(snapshot: JobSnapshot | None) -> bool:
    """Whether the verdict card shows "about N min from now" (a running job with no comparison yet): it is then
    redrawn with the status line, from the same snapshot's ETA, so the two never disagree (issue 20)."""
    return snapshot is not None and snapshot.status == JobStatus.RUNNING and not loss_comparisons(snapshot)


def live_strip_update(snapshot: JobSnapshot | None) -> gr.HTML:
    """The strip under Start/Stop, hidden when there is nothing live (an empty block would still take a gap
    and push the verdict below the fold)."""
    html = safely(snapshot, "live strip", "", live_strip_html, snapshot)
    return gr.HTML(html, visible=bool(html))


def render(
    ctx: UiContext, view: ViewRef | None, snapshot: JobSnapshot | None, controls: Controls, *, smoothing: float,
    epoch_views: bool = True, next_counts: Any = _SKIP,
) -> Update:
    """Everything the compare view shows, from one snapshot. Without `epoch_views` only what changes every
    step (status, progress, training loss) is sent; the rest changes once per epoch."""
    ui = ctx.ui
    title = view.title if view else ""
    updates: Update = {
        ui.compare.status: safely(snapshot, "status", cannot_draw("status line"), status_line, ctx, snapshot, title),
        ui.compare.live_strip: live_strip_update(snapshot),
        ui.compare.loss_chart: safely(snapshot, "loss chart", cannot_draw("training-loss chart"), loss_chart, snapshot, smoothing),
    }
    if not epoch_views and waits_with_eta(snapshot):
        updates[ui.compare.verdict] = safely(snapshot, "verdict", cannot_draw("verdict"), verdict_html, snapshot, title)
    if epoch_views:
        updates.update({
            ui.compare.verdict: safely(snapshot, "verdict", cannot_draw("verdict"), verdict_html, snapshot, title),
            ui.compare.repeat: safely(snapshot, "repeat button", gr.Button(visible=False), repeat_update, ctx, snapshot, controls),
            ui.compare.recall_chart: safely(snapshot, "recall chart", cannot_draw("per-class recall chart"), recall_chart, snapshot),
            ui.compare.test_loss_chart: safely(snapshot, "test loss chart", cannot_draw("test-loss chart"), epoch_chart, snapshot,
                                       lambda scores: scores.test_loss, "Test cross entropy per epoch"),
            ui.compare.accuracy_chart: safely(snapshot, "accuracy chart", cannot_draw("accuracy chart"), epoch_chart, snapshot,
                                      lambda scores: scores.balanced_accuracy, "Test balanced accuracy per epoch", as_percent=True),
            ui.compare.groups: safely(snapshot, "group table", groups_table(None), groups_table, snapshot),
            ui.compare.confusion: safely(snapshot, "confusion matrices", cannot_draw("confusion matrices"), confusion_html, snapshot),
        })
    if next_counts is not _SKIP:
        updates[ui.compare.counts_chart] = safely(snapshot, "class counts", cannot_draw("class-count chart"),
                                          lambda: counts_chart(next_counts, shown_run_counts(snapshot)))
    return updates



def memory_for(ctx: UiContext, visitor: Visitor, remembered_job: str | None = None) -> BrowserMemory:
    """What the browser keeps: its signed visitor token and its latest job (the server's record first)."""
    return BrowserMemory(ctx.app.signer.token_for(visitor), ctx.app.owners.job_of(visitor.id) or remembered_job)



def show(
    ctx: UiContext, view: ViewRef | None, visitor: Visitor, smoothing: float, next_counts: Any = _SKIP,
    remembered_job: str | None = None,
) -> Update:
    """Switch the compare view to `view`: state, every view component and the buttons."""
    snapshot = snapshot_for(ctx, view)
    controls = controls_for(ctx, visitor)
    drawn = Drawn(snapshot.version if snapshot else -1, len(snapshot.epochs) if snapshot else -1,
                  snapshot.is_finished if snapshot else True, controls, str(snapshot.status) if snapshot else "")
    return {
        ctx.ui.view: view, ctx.ui.drawn: drawn, ctx.ui.visitor: visitor,
        ctx.ui.memory: memory_for(ctx, visitor, remembered_job).to_json(),
        **render(ctx, view, snapshot, controls, smoothing=smoothing, next_counts=next_counts),
        **control_updates(ctx, controls),
    }



def title_for(ctx: UiContext, run_id: str, visitor: Visitor | None) -> str:
    if visitor is not None and ctx.app.owners.owns(visitor.id, run_id):
        return TITLE_YOURS
    try:
        record = ctx.app.catalog.find(run_id)
    except (ValueError, RunCorruptError):
        return TITLE_RUN
    return TITLE_SHIPPED if ctx.app.catalog.is_shipped(record) else TITLE_RUN



def view_of_run(ctx: UiContext, run_id: str, visitor: Visitor | None) -> ViewRef:
    """A run of this app's manager is viewed as a job (live updates); a shipped run as a run."""
    try:
        record = ctx.app.catalog.find(run_id)
    except (ValueError, RunCorruptError):
        return ViewRef("job", run_id, title_for(ctx, run_id, visitor))
    kind = "run" if ctx.app.catalog.is_shipped(record) else "job"
    return ViewRef(kind, run_id, title_for(ctx, run_id, visitor))



def require_visitor(visitor: Any, where: str) -> Visitor:
    """The session's visitor, or a refusal: a request from a session that never loaded the page (a forged
    queue join) has none."""
    if not isinstance(visitor, Visitor):
        raise user_error(NOT_LOADED, where)
    return visitor
