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

from typing import Any

import gradio as gr

from ...config import PRESETS, TrainConfig
from ...fields import form_values
from ...jobs import UnknownJobError
from ...run_directory import RunCorruptError
from ...status import JobStatus
from ..context import UiContext, Update
from ..kit.errors import user_error
from ..kit.identity import Visitor, address_key
from ..kit.state import BrowserMemory, Drawn, ViewRef
from ..listing import on_refresh_runs
from . import share
from .layout import base_of, custom_value, is_custom, preset_choices
from .settings import config_from_form
from .public import plain_text, public_panel_html
from .timing import custom_note, form_time
from .view import (
    REPEAT_SEEDS, TITLE_OTHER, TITLE_YOURS, cannot_draw, control_updates, controls_for, is_active, live_strip_update,
    next_run_counts, render, repeat_update, require_visitor, safely, show, shown_run_counts, snapshot_for, view_of_run,
    status_line, waits_with_eta,
)
from .verdict import verdict_html
from .views import counts_chart, loss_chart, status_html



# ---------------------------------------------------------------- reading state


# ---------------------------------------------------------------- the "Repeat with 3 seeds" estimate


# ---------------------------------------------------------------- drawing a view


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


def on_load(ctx: UiContext, inputs: dict[Any, Any], request: gr.Request = None) -> Update:
    """Recognise the visitor by its signed token (or issue a new one) and hold it in the session, re-attach it to
    its job after a reload, else show its last run, else a job that is running (a second browser watches
    instead of starting another by accident), else the default run. A link's query (share.py) fills the form
    and may open a run; it never starts a job. `inputs`: the browser's memory, the visitor, the smoothing and the
    form, as {component: value}."""
    ui = ctx.ui
    memory, visitor, smoothing = BrowserMemory.from_json(inputs[ui.memory]), inputs[ui.visitor], inputs[ui.compare.smoothing]
    preset_name, settings = ui.compare.form_of(inputs)
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
        counts = next_run_counts(query.preset or "quick", form_values(query.config))
    else:
        counts = next_run_counts(preset_name, settings)
    updates = show(ctx, view, visitor, smoothing, counts, remembered_job=memory.job_id)
    updates.update(share.form_updates(ctx, query))
    try:  # the note, the estimate and Start from one figure (timing.py); a link's form_updates set its note
        time = form_time(manager, query.config if query.has_settings else config_from_form(preset_name, settings))
    except (TypeError, ValueError):
        pass
    else:
        updates.update(share.time_updates(ctx, time, visitor))
        if not query.has_settings and not is_custom(inputs[ui.compare.preset]):
            updates[ctx.ui.compare.preset_note] = time.preset_note(preset_name)
    updates[ctx.ui.compare.link_note] = share.link_note_html(query, run_problem, linked.id if linked else None)
    # Public mode explains itself (public.py); a local app belongs to its user and shows nothing.
    updates[ctx.ui.compare.public_panel] = (public_panel_html(manager.limits, ctx.app.storage_note)
                                            if ctx.app.public else "")
    return updates


def submit(ctx: UiContext, config: TrainConfig, client_id: str) -> str:
    """Queue a job under the caller's address (the manager's per-visitor cap counts it)."""
    return ctx.app.manager.submit(config, client_id=client_id)


def start_job(ctx: UiContext, visitor: Visitor, config: TrainConfig, smoothing: float, next_counts: Any,
              request: gr.Request | None) -> Update:
    """Queue `config` for this visitor, or point at the job it already has. The manager counts it against the
    caller's address (its per-visitor cap), the ownership table against the visitor."""
    client = address_key(request)
    try:
        job_id, started = ctx.app.owners.start(visitor.id, lambda: submit(ctx, config, client),
                                               lambda job: is_active(ctx, job))
    except (ValueError, RuntimeError) as error:  # invalid settings, a full queue, a budget refusal
        raise user_error(plain_text(str(error)), "start") from None
    snapshot = ctx.app.manager.snapshot(job_id)
    if not started:
        gr.Info("Your run is still training; stop it before starting another. The page shows it again.")
    elif snapshot.queue_position and any(other.status == JobStatus.RUNNING for other in ctx.app.manager.active_jobs()):
        gr.Info(f"Another job is training; yours waits its turn (position {snapshot.queue_position}).")
    return show(ctx, ViewRef("job", job_id, TITLE_YOURS), visitor, smoothing, next_counts)


def on_start(ctx: UiContext, inputs: dict[Any, Any], request: gr.Request = None) -> Update:
    """Queue the form's settings. `inputs`: the visitor, the smoothing and the form, as {component: value}."""
    ui = ctx.ui
    visitor = require_visitor(inputs[ui.visitor], "start")
    preset_name, settings = ui.compare.form_of(inputs)
    try:
        config = config_from_form(preset_name, settings)
    except ValueError as error:
        raise user_error(str(error), "start") from None
    return start_job(ctx, visitor, config, inputs[ui.compare.smoothing], next_run_counts(preset_name, settings), request)


def on_repeat(ctx: UiContext, inputs: dict[Any, Any], request: gr.Request = None) -> Update:
    """Queue the shown run's settings again with seeds 0, 1, 2. `inputs`: the visitor, the view, the smoothing
    and the form, as {component: value}."""
    ui = ctx.ui
    visitor = require_visitor(inputs[ui.visitor], "repeat")
    snapshot = snapshot_for(ctx, inputs[ui.view])
    if snapshot is None:
        raise user_error("There is no run shown to repeat.", "repeat")
    return start_job(ctx, visitor, snapshot.config.replace(seeds=REPEAT_SEEDS), inputs[ui.compare.smoothing],
                     next_run_counts(*ui.compare.form_of(inputs)), request)


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
    updates: Update = {ctx.ui.compare.stop: gr.Button(value="Stopping…", interactive=False)}
    if view is not None and view.id == own:
        updates[ctx.ui.compare.status] = safely(snapshot, "status", cannot_draw("status line"), status_html, snapshot, view.title)
    return updates


def on_tick(ctx: UiContext, view: ViewRef | None, drawn: Drawn | None, visitor: Visitor | None, smoothing: float,
            refusal: str | None = "") -> Update:
    """Every second: redraw what changed in a live job; keep the buttons in step with this visitor's job (and
    Start with the form's estimate: `refusal`, why the limit refuses the form, "" when it does not)."""
    if drawn is None or not isinstance(visitor, Visitor):
        return {}  # the page has not finished loading
    updates: Update = {}
    controls = controls_for(ctx, visitor)
    if controls != drawn.controls:
        updates.update(control_updates(ctx, controls, refusal or ""))
        drawn = Drawn(drawn.version, drawn.epochs, drawn.finished, controls, drawn.status)
        updates[ctx.ui.drawn] = drawn
    if view is None or view.kind != "job" or drawn.finished:
        if updates and view is not None:  # the buttons changed: the repeat button follows Start
            snapshot = snapshot_for(ctx, view)
            updates[ctx.ui.compare.repeat] = safely(snapshot, "repeat button", gr.Button(visible=False), repeat_update, ctx, snapshot, controls)
        return updates
    try:
        snapshot = ctx.app.manager.snapshot(view.id)
    except UnknownJobError:
        return updates
    if snapshot.version == drawn.version:
        if snapshot.status in (JobStatus.RUNNING, JobStatus.QUEUED):  # unchanged: only the status line (its ETA or
            # expected wait), and the verdict's
            updates[ctx.ui.compare.status] = safely(snapshot, "status", cannot_draw("status line"), status_line, ctx, snapshot, view.title)
            updates[ctx.ui.compare.live_strip] = live_strip_update(snapshot)
            if waits_with_eta(snapshot):
                updates[ctx.ui.compare.verdict] = safely(snapshot, "verdict", cannot_draw("verdict"), verdict_html, snapshot, view.title)
        return updates
    epoch_views = len(snapshot.epochs) != drawn.epochs or snapshot.is_finished or str(snapshot.status) != drawn.status
    updates.update(render(ctx, view, snapshot, controls, smoothing=smoothing, epoch_views=epoch_views))
    updates[ctx.ui.drawn] = Drawn(snapshot.version, len(snapshot.epochs), snapshot.is_finished, controls, str(snapshot.status))
    if snapshot.is_finished:
        updates.update(on_refresh_runs(ctx, select=view.id))  # the runs list gains the finished run
    return updates


def on_preset(ctx: UiContext, preset_name: str, view: ViewRef | None, visitor: Visitor | None = None) -> Update:
    """Fill the advanced settings from a preset, with its note and its estimate made from the same settings
    in the same response (timing.py), so no estimate of a half-switched form is drawn. Picking "custom"
    changes no setting."""
    ui = ctx.ui
    if is_custom(preset_name):
        return {}
    config = PRESETS[preset_name]
    values = form_values(config)
    time = form_time(ctx.app.manager, config)
    return {
        ui.compare.preset_note: time.preset_note(preset_name),
        **share.time_updates(ctx, time, visitor),
        **{ui.compare.settings[name]: value for name, value in values.items()},
        ui.compare.counts_chart: counts_chart(next_run_counts(preset_name, values), shown_run_counts(snapshot_for(ctx, view))),
    }


def on_edit(ctx: UiContext, preset_value: str) -> Update:
    """A setting edited by hand: the form is no longer the preset, so the radio says "custom" and the preset's
    note goes (the settings the form does not show still come from the preset, which the value carries)."""
    if is_custom(preset_value):
        return {}
    base = base_of(preset_value)
    return {ctx.ui.compare.preset: gr.Radio(choices=preset_choices(base), value=custom_value(base)),
            ctx.ui.compare.preset_note: custom_note(base)}


def on_settings(ctx: UiContext, inputs: dict[Any, Any]) -> Update:
    """The class-count chart follows the settings (a half-typed ratio keeps the last chart). `inputs`: the view
    and the form, as {component: value}."""
    counts = next_run_counts(*ctx.ui.compare.form_of(inputs))
    if counts is None:
        return {}
    return {ctx.ui.compare.counts_chart: counts_chart(counts, shown_run_counts(snapshot_for(ctx, inputs[ctx.ui.view])))}


def on_smoothing(ctx: UiContext, view: ViewRef | None, smoothing: float) -> Update:
    snapshot = snapshot_for(ctx, view)
    return {ctx.ui.compare.loss_chart: safely(snapshot, "loss chart", cannot_draw("training-loss chart"), loss_chart, snapshot, smoothing)}
