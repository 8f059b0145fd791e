"""Handlers of the Train & compare tab and of the page's lifecycle (load, the 1 s timer).

Each handler is `def on_x(ctx: UiContext, *inputs) -> Update`: it returns a dict keyed by the components it
changes (components left out keep what they show). Expected user errors are raised as `user_error(...)`.

The UI <-> worker contract (docs/design.md, "UI and worker"): handlers never train; they submit configs to
the `JobManager`, read immutable `JobSnapshot`s and cancel. A browser owns at most one queued or running job
(`JobOwners`), remembered in its `BrowserMemory`, so Start cannot make a second one and Stop always reaches it.
"""
from __future__ import annotations

import inspect
import math
from datetime import datetime
from typing import Any

import gradio as gr

from ..checkpoints import RunCorruptError, RunRecord
from ..config import PRESETS, TrainConfig, preset
from ..data import planned_class_counts
from ..jobs import JobSnapshot, UnknownJobError, snapshot_from_run_dir
from ..status import JobStatus
from . import share
from .context import UiContext, Update
from .errors import user_error
from .evidence import preset_note
from .names import display_name
from .settings import class_names_for, config_from_form
from .state import BrowserMemory, Controls, Drawn, ViewRef
from .verdict import verdict_html
from .views import (
    CountsSeries, completion, confusion_html, counts_chart, counts_label, duration_text,
    epoch_chart, groups_table, loss_chart, recall_chart, status_html,
)

REPEAT_SEEDS = (0, 1, 2)
TITLE_YOURS = "Your run"
TITLE_OTHER = "A run from another browser (watching; only its browser can stop it)"
TITLE_SHIPPED = "Shipped run"
TITLE_RUN = "Run"
_SKIP = object()  # "leave the class-count chart as it is"


# ---------------------------------------------------------------- reading state


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


def controls_for(ctx: UiContext, memory: BrowserMemory) -> Controls:
    """This browser's queued or running job, if any (from the ownership table, else its memory)."""
    for job_id in (ctx.app.owners.job_of(memory.client_id), memory.job_id):
        if job_id and is_active(ctx, job_id):
            owner = ctx.app.owners.owner_of(job_id)
            if owner in (None, memory.client_id):
                return Controls(job_id)
    return Controls(None)


def control_updates(ctx: UiContext, controls: Controls) -> Update:
    ui = ctx.ui
    return {
        ui.start: gr.Button(value="Start training" if controls.start_enabled else "Training…", interactive=controls.start_enabled),
        ui.stop: gr.Button(value="Stop your run" if controls.stop_enabled else "Stop", interactive=controls.stop_enabled),
    }


def next_run_counts(preset_name: str, dataset: str, profile: str, ratio: Any) -> CountsSeries | None:
    """The class counts the current settings would train on; None for a half-typed or impossible setting."""
    try:
        config = preset(preset_name, dataset=dataset, profile=profile, imbalance_ratio=float(ratio))
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


# ---------------------------------------------------------------- the "Repeat with 3 seeds" estimate


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
    """The job manager's own estimate for a config, if it offers one: (seconds, its words or "")."""
    method = getattr(ctx.app.manager, "estimate", None)
    if not callable(method):
        return None
    try:
        value = method(config)
    except (ValueError, TypeError, RuntimeError):
        return None
    seconds = getattr(value, "total_seconds", value)
    seconds = seconds() if callable(seconds) else seconds
    if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0:
        return float(seconds), str(getattr(value, "text", "") or "")
    return None


def repeat_estimate(ctx: UiContext, snapshot: JobSnapshot) -> str:
    """How long the 3-seed repeat should take, in words ("" when unknown): the manager's estimate if it
    offers one, else this run's own wall time scaled to 3 seeds."""
    config = snapshot.config.replace(seeds=REPEAT_SEEDS)
    estimate = manager_estimate(ctx, config)
    if estimate is not None:
        seconds, text = estimate
        return text or f"about {duration_text(seconds)}"
    elapsed = elapsed_seconds(ctx, snapshot)
    done = completion(snapshot).epochs_done
    if elapsed and done:
        return f"about {duration_text(elapsed * len(REPEAT_SEEDS) * config.epochs / done)} (this run's time × 3)"
    return ""


def repeat_update(ctx: UiContext, snapshot: JobSnapshot | None, controls: Controls) -> Any:
    if snapshot is None or not snapshot.is_finished or len(snapshot.config.seeds) >= len(REPEAT_SEEDS) or snapshot.status == JobStatus.FAILED:
        return gr.Button(visible=False)
    how_long = repeat_estimate(ctx, snapshot)
    label = "Repeat these settings with 3 seeds (0, 1, 2)" + (f" — {how_long}" if how_long else "")
    return gr.Button(value=label, visible=True, interactive=controls.start_enabled)


# ---------------------------------------------------------------- drawing a view


def render(
    ctx: UiContext, view: ViewRef | None, snapshot: JobSnapshot | None, controls: Controls, *, smoothing: float,
    epoch_views: bool = True, next_counts: Any = _SKIP,
) -> Update:
    """Everything the compare view shows, from one snapshot. Without `epoch_views` only what changes every
    step (status, progress, training loss) is sent; the rest changes once per epoch."""
    ui = ctx.ui
    title = view.title if view else ""
    updates: Update = {ui.status: status_html(snapshot, title), ui.loss_chart: loss_chart(snapshot, smoothing)}
    if epoch_views:
        updates.update({
            ui.verdict: verdict_html(snapshot, title),
            ui.repeat: repeat_update(ctx, snapshot, controls),
            ui.recall_chart: recall_chart(snapshot),
            ui.test_loss_chart: epoch_chart(snapshot, "test_loss", "Test cross entropy per epoch"),
            ui.accuracy_chart: epoch_chart(snapshot, "balanced_accuracy", "Test balanced accuracy per epoch", as_percent=True),
            ui.groups: groups_table(snapshot),
            ui.confusion: confusion_html(snapshot),
        })
    if next_counts is not _SKIP:
        updates[ui.counts_chart] = counts_chart(next_counts, shown_run_counts(snapshot))
    return updates


def show(
    ctx: UiContext, view: ViewRef | None, memory: BrowserMemory, smoothing: float, next_counts: Any = _SKIP,
) -> Update:
    """Switch the compare view to `view`: state, every view component and the buttons."""
    snapshot = snapshot_for(ctx, view)
    controls = controls_for(ctx, memory)
    drawn = Drawn(snapshot.version if snapshot else -1, len(snapshot.epochs) if snapshot else -1,
                  snapshot.is_finished if snapshot else True, controls, str(snapshot.status) if snapshot else "")
    return {
        ctx.ui.view: view, ctx.ui.drawn: drawn, ctx.ui.memory: memory.to_json(),
        **render(ctx, view, snapshot, controls, smoothing=smoothing, next_counts=next_counts),
        **control_updates(ctx, controls),
    }


def title_for(ctx: UiContext, run_id: str, memory: BrowserMemory) -> str:
    if run_id in (memory.job_id, ctx.app.owners.job_of(memory.client_id)):
        return TITLE_YOURS
    try:
        record = ctx.app.catalog.find(run_id)
    except (ValueError, RunCorruptError):
        return TITLE_RUN
    return TITLE_SHIPPED if ctx.app.catalog.is_shipped(record) else TITLE_RUN


def view_of_run(ctx: UiContext, run_id: str, memory: BrowserMemory) -> ViewRef:
    """A run of this app's manager is viewed as a job (live updates); a shipped run as a run."""
    try:
        record = ctx.app.catalog.find(run_id)
    except (ValueError, RunCorruptError):
        return ViewRef("job", run_id, title_for(ctx, run_id, memory))
    kind = "run" if ctx.app.catalog.is_shipped(record) else "job"
    return ViewRef(kind, run_id, title_for(ctx, run_id, memory))


# ---------------------------------------------------------------- handlers


def linked_run(ctx: UiContext, run_id: str | None, memory: BrowserMemory) -> tuple[ViewRef | None, str | None]:
    """The run a link asks to open (`?run=<id>`), or why it cannot be opened."""
    if run_id is None:
        return None, None
    try:
        ctx.app.catalog.find(run_id)
    except (ValueError, RunCorruptError):
        return None, f"run={run_id!r}: no such run here"
    return view_of_run(ctx, run_id, memory), None


def on_load(ctx: UiContext, memory_json: Any, smoothing: float, preset_name: str, dataset: str, profile: str, ratio: Any,
            request: gr.Request = None) -> Update:
    """Give the browser an id, re-attach it to its job (after a reload or an app restart), else show a job that
    is running (a second browser watches instead of starting another by accident), else the default run.
    A link's query (share.py) fills the form and may open a run; it never starts a job."""
    memory = BrowserMemory.from_json(memory_json).with_client()
    manager, owners = ctx.app.manager, ctx.app.owners
    query = share.query_of(request)
    if owners.job_of(memory.client_id) is None and memory.job_id and is_active(ctx, memory.job_id):
        owners.adopt(memory.client_id, memory.job_id)
    view = None
    own = owners.job_of(memory.client_id) or memory.job_id
    if own and snapshot_for(ctx, ViewRef("job", own, TITLE_YOURS)) is not None:
        view = ViewRef("job", own, TITLE_YOURS)
        memory = BrowserMemory(memory.client_id, own)
    linked, run_problem = linked_run(ctx, query.run_id, memory)
    if linked is not None:
        view = linked
    if view is None:
        active = manager.active_jobs()
        if active:
            view = ViewRef("job", active[0].job_id, TITLE_OTHER)
    if view is None:
        record = ctx.app.catalog.default_run()
        if record is not None:
            view = view_of_run(ctx, record.run_id, memory)
    if query.has_settings:
        config = query.config
        counts = next_run_counts(query.preset or "quick", config.dataset, config.profile, config.imbalance_ratio)
    else:
        counts = next_run_counts(preset_name, dataset, profile, ratio)
    updates = show(ctx, view, memory, smoothing, counts)
    updates.update(share.form_updates(ctx, query))
    if ctx.ui.estimate not in updates:
        try:
            updates[ctx.ui.estimate] = share.estimate_html(ctx, preset(preset_name, dataset=dataset, profile=profile,
                                                                         imbalance_ratio=float(ratio)))
        except (TypeError, ValueError):
            pass
    updates[ctx.ui.link_note] = share.link_note_html(query, run_problem, linked.id if linked else None)
    return updates


def submit(ctx: UiContext, config: TrainConfig, client_id: str) -> str:
    """Queue a job, telling the manager whose it is when it takes a client id."""
    manager = ctx.app.manager
    if "client_id" in inspect.signature(manager.submit).parameters:
        return manager.submit(config, client_id=client_id)
    return manager.submit(config)


def start_job(ctx: UiContext, memory: BrowserMemory, config: TrainConfig, smoothing: float, next_counts: Any) -> Update:
    """Queue `config` for this browser, or point at the job it already has."""
    try:
        job_id, started = ctx.app.owners.start(memory.client_id, lambda: submit(ctx, config, memory.client_id),
                                               lambda job: is_active(ctx, job))
    except (ValueError, RuntimeError) as error:  # invalid settings, a full queue, a budget refusal
        raise user_error(str(error), "start") from None
    snapshot = ctx.app.manager.snapshot(job_id)
    if not started:
        gr.Info("Your run is still training; stop it before starting another. The page shows it again.")
    elif snapshot.queue_position and any(other.status == JobStatus.RUNNING for other in ctx.app.manager.active_jobs()):
        gr.Info(f"Another job is training; yours waits its turn (position {snapshot.queue_position}).")
    return show(ctx, ViewRef("job", job_id, TITLE_YOURS), BrowserMemory(memory.client_id, job_id), smoothing, next_counts)


def on_start(ctx: UiContext, memory_json: Any, smoothing: float, *form: Any) -> Update:
    memory = BrowserMemory.from_json(memory_json).with_client()
    try:
        config = config_from_form(*form)
    except ValueError as error:
        raise user_error(str(error), "start") from None
    return start_job(ctx, memory, config, smoothing, next_run_counts(*form[:4]))


def on_repeat(ctx: UiContext, memory_json: Any, view: ViewRef | None, smoothing: float, *counts_form: Any) -> Update:
    """Queue the shown run's settings again with seeds 0, 1, 2."""
    memory = BrowserMemory.from_json(memory_json).with_client()
    snapshot = snapshot_for(ctx, view)
    if snapshot is None:
        raise user_error("There is no run shown to repeat.", "repeat")
    return start_job(ctx, memory, snapshot.config.replace(seeds=REPEAT_SEEDS), smoothing, next_run_counts(*counts_form))


def on_stop(ctx: UiContext, memory_json: Any, view: ViewRef | None) -> Update:
    """Stop this browser's queued or running job (whatever the page shows)."""
    memory = BrowserMemory.from_json(memory_json)
    own = controls_for(ctx, memory).own_active_job
    if own is None:
        raise user_error("This browser has no queued or running job to stop.", "stop")
    try:
        ctx.app.manager.cancel(own)
        snapshot = ctx.app.manager.snapshot(own)
    except UnknownJobError as error:
        raise user_error(str(error), "stop") from None
    updates: Update = {ctx.ui.stop: gr.Button(value="Stopping…", interactive=False)}
    if view is not None and view.id == own:
        updates[ctx.ui.status] = status_html(snapshot, view.title)
    return updates


def on_tick(ctx: UiContext, view: ViewRef | None, drawn: Drawn | None, memory_json: Any, smoothing: float) -> Update:
    """Every second: redraw what changed in a live job; keep the buttons in step with this browser's job."""
    memory = BrowserMemory.from_json(memory_json)
    if drawn is None or memory.client_id is None:
        return {}  # the page has not finished loading
    updates: Update = {}
    controls = controls_for(ctx, memory)
    if controls != drawn.controls:
        updates.update(control_updates(ctx, controls))
        drawn = Drawn(drawn.version, drawn.epochs, drawn.finished, controls, drawn.status)
        updates[ctx.ui.drawn] = drawn
    if view is None or view.kind != "job" or drawn.finished:
        if updates and view is not None:  # the buttons changed: the repeat button follows Start
            snapshot = snapshot_for(ctx, view)
            updates[ctx.ui.repeat] = repeat_update(ctx, snapshot, controls)
        return updates
    try:
        snapshot = ctx.app.manager.snapshot(view.id)
    except UnknownJobError:
        return updates
    if snapshot.version == drawn.version:
        if snapshot.status == JobStatus.RUNNING:  # unchanged: only the status line (its ETA)
            updates[ctx.ui.status] = status_html(snapshot, view.title)
        return updates
    epoch_views = len(snapshot.epochs) != drawn.epochs or snapshot.is_finished or str(snapshot.status) != drawn.status
    updates.update(render(ctx, view, snapshot, controls, smoothing=smoothing, epoch_views=epoch_views))
    updates[ctx.ui.drawn] = Drawn(snapshot.version, len(snapshot.epochs), snapshot.is_finished, controls, str(snapshot.status))
    if snapshot.is_finished:
        from .runs import on_refresh_runs  # the runs list gains the finished run

        updates.update(on_refresh_runs(ctx, select=view.id))
    return updates


def on_preset(ctx: UiContext, preset_name: str, view: ViewRef | None) -> Update:
    """Fill the advanced settings from a preset."""
    ui = ctx.ui
    config = PRESETS[preset_name]
    return {
        ui.preset_note: preset_note(preset_name), ui.dataset: config.dataset, ui.profile: config.profile,
        ui.ratio: config.imbalance_ratio, ui.losses: [display_name(loss) for loss in config.losses], ui.gamma: config.gamma,
        ui.model: config.model, ui.epochs: config.epochs, ui.batch_size: config.batch_size,
        ui.learning_rate: config.learning_rate, ui.seeds: ",".join(map(str, config.seeds)), ui.device: config.device,
        ui.counts_chart: counts_chart(next_run_counts(preset_name, config.dataset, config.profile, config.imbalance_ratio),
                                      shown_run_counts(snapshot_for(ctx, view))),
    }


def on_settings(ctx: UiContext, view: ViewRef | None, preset_name: str, dataset: str, profile: str, ratio: Any) -> Update:
    """The class-count chart follows the settings (a half-typed ratio keeps the last chart)."""
    counts = next_run_counts(preset_name, dataset, profile, ratio)
    if counts is None:
        return {}
    return {ctx.ui.counts_chart: counts_chart(counts, shown_run_counts(snapshot_for(ctx, view)))}


def on_smoothing(ctx: UiContext, view: ViewRef | None, smoothing: float) -> Update:
    return {ctx.ui.loss_chart: loss_chart(snapshot_for(ctx, view), smoothing)}
