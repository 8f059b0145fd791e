"""Handlers of the Train & compare tab and of the page's lifecycle (load, the 1 s timer).

Each handler is `def on_x(ctx: UiContext, *inputs) -> Update`: it returns a dict keyed by the components it
changes (components left out keep what they show). Expected user errors are raised as `user_error(...)`.

The UI <-> worker contract (docs/design.md, "UI and worker"): handlers never train; they submit configs to
the `JobManager`, read immutable `JobSnapshot`s and cancel. Who is asking is the `Visitor` the server issued
on page load and holds in a `gr.State` (identity.py), never anything the browser sends. A visitor owns at
most one queued or running job (`JobOwners`), so Start cannot make a second one and Stop always reaches it;
the manager also caps jobs per address (`identity.address_key`), which a visitor cannot multiply.
"""
from __future__ import annotations

import inspect
import logging
import math
from datetime import datetime
from typing import Any

import gradio as gr

from ..run_directory import RunCorruptError, RunRecord
from ..config import PRESETS, TrainConfig, preset
from ..data import planned_class_counts
from ..jobs import JobSnapshot, UnknownJobError, snapshot_from_run_dir
from ..status import JobStatus
from . import share
from .charts import escape
from .context import UiContext, Update
from .errors import user_error
from .evidence import preset_note
from .identity import Visitor, address_key
from .names import display_name
from .settings import class_names_for, config_from_form
from .state import BrowserMemory, Controls, Drawn, ViewRef
from .verdict import verdict_html
from .views import (
    CountsSeries, completion, confusion_html, counts_chart, counts_label, countdown_text,
    epoch_chart, groups_table, loss_chart, recall_chart, status_html,
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


def controls_for(ctx: UiContext, visitor: Visitor | None) -> Controls:
    """This visitor's queued or running job, if any (from the server's ownership table only)."""
    job_id = ctx.app.owners.job_of(visitor.id if visitor else None)
    return Controls(job_id if job_id and is_active(ctx, job_id) else None)


def control_updates(ctx: UiContext, controls: Controls) -> Update:
    """The buttons; a disabled one says why on its label."""
    ui = ctx.ui
    return {
        ui.start: gr.Button(value="Start training" if controls.start_enabled else "Training… (one run at a time per browser)",
                            interactive=controls.start_enabled),
        ui.stop: gr.Button(value="Stop your run" if controls.stop_enabled else "Stop (only while your own run trains)",
                           interactive=controls.stop_enabled),
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
        return text or f"about {countdown_text(seconds)}"
    elapsed = elapsed_seconds(ctx, snapshot)
    done = completion(snapshot).epochs_done
    if elapsed and done:
        return f"about {countdown_text(elapsed * len(REPEAT_SEEDS) * config.epochs / done)} (this run's time × 3)"
    return ""


def repeat_update(ctx: UiContext, snapshot: JobSnapshot | None, controls: Controls) -> Any:
    if snapshot is None or not snapshot.is_finished or len(snapshot.config.seeds) >= len(REPEAT_SEEDS) or snapshot.status == JobStatus.FAILED:
        return gr.Button(visible=False)
    how_long = repeat_estimate(ctx, snapshot)
    label = "Repeat these settings with 3 seeds (0, 1, 2)" + (f" — {how_long}" if how_long else "")
    return gr.Button(value=label, visible=True, interactive=controls.start_enabled)


# ---------------------------------------------------------------- drawing a view


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


def render(
    ctx: UiContext, view: ViewRef | None, snapshot: JobSnapshot | None, controls: Controls, *, smoothing: float,
    epoch_views: bool = True, next_counts: Any = _SKIP,
) -> Update:
    """Everything the compare view shows, from one snapshot. Without `epoch_views` only what changes every
    step (status, progress, training loss) is sent; the rest changes once per epoch."""
    ui = ctx.ui
    title = view.title if view else ""
    updates: Update = {
        ui.status: safely(snapshot, "status", cannot_draw("status line"), status_html, snapshot, title),
        ui.loss_chart: safely(snapshot, "loss chart", cannot_draw("training-loss chart"), loss_chart, snapshot, smoothing),
    }
    if epoch_views:
        updates.update({
            ui.verdict: safely(snapshot, "verdict", cannot_draw("verdict"), verdict_html, snapshot, title),
            ui.repeat: safely(snapshot, "repeat button", gr.Button(visible=False), repeat_update, ctx, snapshot, controls),
            ui.recall_chart: safely(snapshot, "recall chart", cannot_draw("per-class recall chart"), recall_chart, snapshot),
            ui.test_loss_chart: safely(snapshot, "test loss chart", cannot_draw("test-loss chart"), epoch_chart, snapshot,
                                       "test_loss", "Test cross entropy per epoch"),
            ui.accuracy_chart: safely(snapshot, "accuracy chart", cannot_draw("accuracy chart"), epoch_chart, snapshot,
                                      "balanced_accuracy", "Test balanced accuracy per epoch", as_percent=True),
            ui.groups: safely(snapshot, "group table", groups_table(None), groups_table, snapshot),
            ui.confusion: safely(snapshot, "confusion matrices", cannot_draw("confusion matrices"), confusion_html, snapshot),
        })
    if next_counts is not _SKIP:
        updates[ui.counts_chart] = safely(snapshot, "class counts", cannot_draw("class-count chart"),
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


# ---------------------------------------------------------------- handlers


def linked_run(ctx: UiContext, run_id: str | None, visitor: Visitor) -> tuple[ViewRef | None, str | None]:
    """The run a link asks to open (`?run=<id>`), or why it cannot be opened."""
    if run_id is None:
        return None, None
    try:
        ctx.app.catalog.find(run_id)
    except (ValueError, RunCorruptError):
        return None, f"run={run_id!r}: no such run here"
    return view_of_run(ctx, run_id, visitor), None


def on_load(ctx: UiContext, memory_json: Any, visitor: Visitor | None, smoothing: float, preset_name: str, dataset: str,
            profile: str, ratio: Any, request: gr.Request = None) -> Update:
    """Recognise the visitor by its signed token (or issue a new one) and hold it in the session, re-attach it to
    its job after a reload, else show its last run, else a job that is running (a second browser watches
    instead of starting another by accident), else the default run. A link's query (share.py) fills the form
    and may open a run; it never starts a job."""
    memory = BrowserMemory.from_json(memory_json)
    if not isinstance(visitor, Visitor):
        visitor, _ = ctx.app.signer.recognise(memory.token)
    manager, owners = ctx.app.manager, ctx.app.owners
    query = share.query_of(request)
    view = None
    own = owners.job_of(visitor.id)
    if own and snapshot_for(ctx, ViewRef("job", own, TITLE_YOURS)) is not None:
        view = ViewRef("job", own, TITLE_YOURS)
    elif memory.job_id and snapshot_for(ctx, view_of_run(ctx, memory.job_id, visitor)) is not None:
        view = view_of_run(ctx, memory.job_id, visitor)  # its last run, read only: a job id proves nothing
    linked, run_problem = linked_run(ctx, query.run_id, visitor)
    if linked is not None:
        view = linked
    if view is None:
        active = manager.active_jobs()
        if active:
            view = ViewRef("job", active[0].job_id, TITLE_OTHER)
    if view is None:
        record = ctx.app.catalog.default_run()
        if record is not None:
            view = view_of_run(ctx, record.run_id, visitor)
    if query.has_settings:
        config = query.config
        counts = next_run_counts(query.preset or "quick", config.dataset, config.profile, config.imbalance_ratio)
    else:
        counts = next_run_counts(preset_name, dataset, profile, ratio)
    updates = show(ctx, view, visitor, smoothing, counts, remembered_job=memory.job_id)
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


def require_visitor(visitor: Any, where: str) -> Visitor:
    """The session's visitor, or a refusal: a request from a session that never loaded the page (a forged
    queue join) has none."""
    if not isinstance(visitor, Visitor):
        raise user_error(NOT_LOADED, where)
    return visitor


def start_job(ctx: UiContext, visitor: Visitor, config: TrainConfig, smoothing: float, next_counts: Any,
              request: gr.Request | None) -> Update:
    """Queue `config` for this visitor, or point at the job it already has. The manager counts it against the
    caller's address (its per-visitor cap), the ownership table against the visitor."""
    client = address_key(request)
    try:
        job_id, started = ctx.app.owners.start(visitor.id, lambda: submit(ctx, config, client),
                                               lambda job: is_active(ctx, job))
    except (ValueError, RuntimeError) as error:  # invalid settings, a full queue, a budget refusal
        raise user_error(str(error), "start") from None
    snapshot = ctx.app.manager.snapshot(job_id)
    if not started:
        gr.Info("Your run is still training; stop it before starting another. The page shows it again.")
    elif snapshot.queue_position and any(other.status == JobStatus.RUNNING for other in ctx.app.manager.active_jobs()):
        gr.Info(f"Another job is training; yours waits its turn (position {snapshot.queue_position}).")
    return show(ctx, ViewRef("job", job_id, TITLE_YOURS), visitor, smoothing, next_counts)


def on_start(ctx: UiContext, visitor: Visitor | None, smoothing: float, *form: Any, request: gr.Request = None) -> Update:
    visitor = require_visitor(visitor, "start")
    try:
        config = config_from_form(*form)
    except ValueError as error:
        raise user_error(str(error), "start") from None
    return start_job(ctx, visitor, config, smoothing, next_run_counts(*form[:4]), request)


def on_repeat(ctx: UiContext, visitor: Visitor | None, view: ViewRef | None, smoothing: float, *counts_form: Any,
              request: gr.Request = None) -> Update:
    """Queue the shown run's settings again with seeds 0, 1, 2."""
    visitor = require_visitor(visitor, "repeat")
    snapshot = snapshot_for(ctx, view)
    if snapshot is None:
        raise user_error("There is no run shown to repeat.", "repeat")
    return start_job(ctx, visitor, snapshot.config.replace(seeds=REPEAT_SEEDS), smoothing, next_run_counts(*counts_form),
                     request)


def on_stop(ctx: UiContext, visitor: Visitor | None, view: ViewRef | None) -> Update:
    """Stop this visitor's queued or running job (whatever the page shows); nobody else's."""
    visitor = require_visitor(visitor, "stop")
    own = controls_for(ctx, visitor).own_active_job
    if own is None:
        raise user_error("This browser has no queued or running job to stop.", "stop")
    try:
        ctx.app.manager.cancel(own)
        snapshot = ctx.app.manager.snapshot(own)
    except UnknownJobError as error:
        raise user_error(str(error), "stop") from None
    updates: Update = {ctx.ui.stop: gr.Button(value="Stopping…", interactive=False)}
    if view is not None and view.id == own:
        updates[ctx.ui.status] = safely(snapshot, "status", cannot_draw("status line"), status_html, snapshot, view.title)
    return updates


def on_tick(ctx: UiContext, view: ViewRef | None, drawn: Drawn | None, visitor: Visitor | None, smoothing: float) -> Update:
    """Every second: redraw what changed in a live job; keep the buttons in step with this visitor's job."""
    if drawn is None or not isinstance(visitor, Visitor):
        return {}  # the page has not finished loading
    updates: Update = {}
    controls = controls_for(ctx, visitor)
    if controls != drawn.controls:
        updates.update(control_updates(ctx, controls))
        drawn = Drawn(drawn.version, drawn.epochs, drawn.finished, controls, drawn.status)
        updates[ctx.ui.drawn] = drawn
    if view is None or view.kind != "job" or drawn.finished:
        if updates and view is not None:  # the buttons changed: the repeat button follows Start
            snapshot = snapshot_for(ctx, view)
            updates[ctx.ui.repeat] = safely(snapshot, "repeat button", gr.Button(visible=False), repeat_update, ctx, snapshot, controls)
        return updates
    try:
        snapshot = ctx.app.manager.snapshot(view.id)
    except UnknownJobError:
        return updates
    if snapshot.version == drawn.version:
        if snapshot.status == JobStatus.RUNNING:  # unchanged: only the status line (its ETA)
            updates[ctx.ui.status] = safely(snapshot, "status", cannot_draw("status line"), status_html, snapshot, view.title)
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
    snapshot = snapshot_for(ctx, view)
    return {ctx.ui.loss_chart: safely(snapshot, "loss chart", cannot_draw("training-loss chart"), loss_chart, snapshot, smoothing)}
