"""Handlers of the Runs tab: the table of runs on disk, open or delete one, overlay two or more, and download
or upload a run as one zip (cce_demo/transfer.py; the API's /export_run and /import_run use the same two
functions, `export_zip` and `import_zip`).

In public mode (a Space) a visitor deletes only the runs it trained or uploaded, and uploads obey the disk
rules (retention and the MB limit, `retention.DiskRules`) and a per-visitor quota; locally the owner of the
machine may delete any run of the writable runs directory.
"""
from __future__ import annotations

import string
import tempfile
from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from ...jobs import UnknownJobError
from ...retention import TRASH_SECONDS, DiskRules, move_to_trash, restore_from_trash
from ...run_directory import RunCorruptError, RunRecord
from ...run_state import JobSnapshot, snapshot_from_run_dir
from ...status import JobStatus
from ...transfer import (
    MAX_STEP_EVENTS, ExportRefused, ImportedRun, ImportRefused, import_run, prune_exports, write_run_zip,
)
from ..compare.view import NOT_LOADED, next_run_counts, require_visitor, show, view_of_run
from ..context import UiContext, Update
from ..kit.admission import RefusedError
from ..kit.charts import Bars, Line, RowLabel, bar_rows, escape, head_to_tail, line_chart
from ..kit.errors import note_user_error, user_error
from ..kit.formatting import run_scale_text
from ..kit.identity import Visitor, address_of
from ..kit.names import RUN_COLOURS, short_name
from ..listing import on_refresh_runs
from .layout import OVERLAY_HINT

MAX_OVERLAID = len(RUN_COLOURS)
EXPORT_MAX_AGE_SECONDS = 900  # a download is fetched within seconds; Gradio serves its own copy meanwhile
EXPORT_KEEP = 8
NOT_YOURS = ("Only the browser that trained or uploaded a run can delete it here; runs are removed on their own "
             "once enough newer ones exist.")


def one_selected(selected: Any, action: str) -> str:
    chosen = [run for run in (selected or []) if run]
    if len(chosen) != 1:
        raise user_error(f"Select exactly one run to {action} (selected: {len(chosen)}).", action)
    return chosen[0]


def find(ctx: UiContext, run_id: str) -> RunRecord:
    try:
        return ctx.app.catalog.find(run_id)
    except (ValueError, RunCorruptError) as error:
        raise user_error(str(error), "runs") from None


def on_open_run(ctx: UiContext, inputs: dict[Any, Any]) -> Update:
    """Open the selected run in the compare view. `inputs`: the selection, the visitor, the smoothing and the
    form (whose class counts the chart keeps beside the run's), as {component: value}."""
    ui = ctx.ui
    run_id = one_selected(inputs[ui.runs.run_choice], "open")
    find(ctx, run_id)
    visitor = require_visitor(inputs[ui.visitor], "open")
    updates = show(ctx, view_of_run(ctx, run_id, visitor), visitor, inputs[ui.compare.smoothing],
                   next_run_counts(*ui.compare.form_of(inputs)))
    updates[ctx.ui.tabs] = gr.Tabs(selected="compare")
    return updates


def delete_refusal(ctx: UiContext, record: RunRecord, visitor: Visitor | None) -> str | None:
    """Why this visitor may not delete the run, or None."""
    if ctx.app.catalog.is_shipped(record):
        return "Shipped runs cannot be deleted; only runs you trained here."
    if record.status in (JobStatus.RUNNING, JobStatus.QUEUED):
        return "This run is still training; stop it first."
    if ctx.app.public and not (visitor is not None and ctx.app.owners.owns(visitor.id, record.run_id)):
        return NOT_YOURS
    return None


def _deletable(ctx: UiContext, selected: Any, visitor: Visitor | None) -> RunRecord:
    record = find(ctx, one_selected(selected, "delete"))
    refusal = delete_refusal(ctx, record, visitor)
    if refusal:
        raise user_error(refusal, "delete")
    return record


def on_delete_request(ctx: UiContext, selected: Any, visitor: Visitor | None) -> Update:
    """Delete run, step one: name the run and what goes with it; nothing is removed yet."""
    record = _deletable(ctx, selected, visitor)
    tab = ctx.ui.runs
    question = (f'<div class="cc-card" role="alert"><b>Delete run <code>{escape(record.run_id)}</code>?</b> Its models, '
                f"curves and record go to the trash; you can undo it for {TRASH_SECONDS // 60} minutes.</div>")
    return {tab.delete_confirm: gr.Group(visible=True), tab.delete_question: question}


def on_delete_cancel(ctx: UiContext) -> Update:
    return {ctx.ui.runs.delete_confirm: gr.Group(visible=False), ctx.ui.runs.delete_question: ""}


def on_delete_run(ctx: UiContext, selected: Any, visitor: Visitor | None) -> Update:
    """Delete run, step two: the run goes to the trash (one atomic rename; retention removes it for good after
    TRASH_SECONDS), and Undo appears for this browser."""
    record = _deletable(ctx, selected, visitor)
    run_id, tab = record.run_id, ctx.ui.runs
    try:
        token = move_to_trash(record.run_dir)
    except OSError as error:
        raise user_error(f"Could not delete {run_id} ({error.strerror or type(error).__name__}).", "delete") from None
    updates = on_refresh_runs(ctx)
    updates[tab.run_choice] = gr.Dropdown(choices=updates[tab.run_choice].choices, value=[], multiselect=True)
    updates.update({
        tab.delete_confirm: gr.Group(visible=False), tab.delete_question: "",
        tab.undo_note: f'<div class="cc-sub" role="status">Deleted run <code>{escape(run_id)}</code>. Undo within '
                       f"{TRASH_SECONDS // 60} minutes.</div>",
        tab.undo_button: gr.Button(visible=True), tab.deleted: {"token": token, "run_id": run_id},
        tab.delete_button: gr.Button(interactive=False),
    })
    return updates


def on_undo_delete(ctx: UiContext, deleted: Any) -> Update:
    """Put this browser's latest deleted run back, if the trash still holds it."""
    tab = ctx.ui.runs
    if not isinstance(deleted, dict) or not isinstance(deleted.get("token"), str):
        raise user_error("There is no deleted run to restore.", "undo")
    try:
        run_id = restore_from_trash(ctx.app.catalog.runs_dir, deleted["token"])
    except (FileNotFoundError, FileExistsError) as error:
        raise user_error(f"Cannot undo the delete of {deleted.get('run_id')}: {error}.", "undo") from None
    updates = on_refresh_runs(ctx)
    updates[tab.run_choice] = gr.Dropdown(choices=updates[tab.run_choice].choices, value=[run_id], multiselect=True)
    updates.update({tab.undo_note: f'<div class="cc-sub" role="status">Restored run <code>{escape(run_id)}</code>.</div>',
                    tab.undo_button: gr.Button(visible=False), tab.deleted: None})
    return updates


def dropped_message(unknown: Sequence[str], kept: Sequence[str]) -> str:
    """What a selection lost: the texts that name no run here, and that the other selections stay."""
    names = ", ".join(f"“{run}”" for run in unknown)
    several = len(unknown) > 1
    return (f"{names} {'are not runs' if several else 'is not a run'} here, so {'they were' if several else 'it was'} "
            f"left out of the selection{' (the other selections stay)' if kept else ''}. Pick runs from the list; "
            "Refresh lists runs added since the page opened.")


def on_runs_tab(ctx: UiContext) -> Update:
    """The Runs tab was opened: its table and run picker list the runs on disk now (runs trained or uploaded
    elsewhere since the page loaded). The Classify tab's run stays the one this visitor picked."""
    updates = on_refresh_runs(ctx)
    updates.pop(ctx.ui.classify.classify_run, None)
    return updates


def snapshot_of_run(ctx: UiContext, run_id: str) -> JobSnapshot | None:
    try:
        record = ctx.app.catalog.find(run_id)
        if not ctx.app.catalog.is_shipped(record):
            return ctx.app.manager.snapshot(run_id)  # live when it is still training
        return snapshot_from_run_dir(record.run_dir)
    except (ValueError, RunCorruptError, UnknownJobError, OSError):
        return None


def mean_per_epoch(snapshot: JobSnapshot, loss: str) -> list[tuple[float, float | None]]:
    """Balanced accuracy of `loss` at each epoch, averaged over the seeds evaluated at that epoch."""
    by_epoch: dict[int, list[float]] = {}
    for point in snapshot.epochs:
        value = point.losses[loss].balanced_accuracy if loss in point.losses else None
        if value is not None:
            by_epoch.setdefault(point.epoch, []).append(value)
    return [(epoch, sum(values) / len(values)) for epoch, values in sorted(by_epoch.items())]


def overlay_accuracy(snapshots: Sequence[tuple[str, JobSnapshot]]) -> str:
    """Balanced accuracy per epoch of every loss of every run: colour per run, CE solid, other losses dashed;
    runs with several seeds are averaged over their seeds at each epoch."""
    lines = []
    for (letter, snapshot), hue in zip(snapshots, RUN_COLOURS):
        baseline = snapshot.config.baseline
        for loss in snapshot.config.losses:
            lines.append(Line(f"{letter} · {short_name(loss)}", hue, mean_per_epoch(snapshot, loss),
                              style="solid" if loss == baseline else "dashed", markers=True))
    return line_chart(title="Balanced accuracy per epoch, runs overlaid", lines=lines, x_label="epoch",
                      y_title="balanced accuracy (%)", x_integer=True, y_format=lambda value: f"{100 * value:.0f} %",
                      value_format=lambda value: f"{100 * value:.1f} %", y_floor=0.0, height=240,
                      subtitle="Colour: run (key below). Solid: the baseline loss (CE); dashed: the other losses. "
                               "Runs with several seeds: the mean over their seeds at each epoch.",
                      empty_text="These runs have no evaluated epoch yet.")


def overlay_recall(snapshots: Sequence[tuple[str, JobSnapshot]]) -> str:
    """Per-class recall (latest evaluation) of every loss of every run, grouped by class."""
    usable = [(letter, snapshot) for letter, snapshot in snapshots if snapshot.latest]
    if not usable:
        return ""
    names = usable[0][1].class_names
    if any(snapshot.class_names != names for _, snapshot in usable):
        return ('<div class="cc-card">Per-class recall is overlaid only for runs on the same classes; these runs use '
                "different datasets.</div>")
    counts = list(usable[0][1].class_counts) or [0] * len(names)
    order = head_to_tail(counts)
    bars = []
    for (letter, snapshot), hue in zip(snapshots, RUN_COLOURS):
        if not snapshot.latest:
            continue
        baseline = snapshot.config.baseline
        for loss in snapshot.config.losses:
            recall = snapshot.latest[loss].per_class_recall if loss in snapshot.latest else None
            if recall:
                bars.append(Bars(f"{letter} · {short_name(loss)}", hue, [recall[index] for index in order], hatched=loss != baseline))
    rows = [RowLabel(names[index], f"{counts[index]:,} training images in run {usable[0][0]}") for index in order]
    return bar_rows(title="Per-class recall, runs overlaid (head → tail)", rows=rows, bars=bars,
                    subtitle="Colour: run; striped: the non-baseline losses. Each run's latest evaluation.",
                    label_heading="class · training images")


def delete_controls(ctx: UiContext, chosen: Sequence[str], visitor: Visitor | None) -> Update:
    """Delete is available for exactly one selected run this visitor may delete; otherwise a note says why."""
    ui = ctx.ui
    reason = ""
    if len(chosen) == 1:
        try:
            reason = delete_refusal(ctx, ctx.app.catalog.find(chosen[0]), visitor) or ""
        except (ValueError, RunCorruptError):
            reason = "This run cannot be read."
    note = f'<div class="cc-sub">Delete is not available: {escape(reason)}</div>' if reason else ""
    # Exactly one run, and one this visitor may delete: with none selected there is nothing to delete.
    return {ui.runs.delete_button: gr.Button(interactive=len(chosen) == 1 and not reason), ui.runs.delete_note: note,
            ui.runs.delete_confirm: gr.Group(visible=False)}


def on_runs_selected(ctx: UiContext, selected: Any, visitor: Visitor | None = None) -> Update:
    """Overlay the selected runs once two or more are selected; say whether the selected run can be deleted.
    Text that names no run here is dropped from the selection, with a warning that names it."""
    ui = ctx.ui
    chosen = [run for run in (selected or []) if run]
    picker: Update = {}
    records, _ = ctx.app.catalog.records()
    ids = [record.run_id for record in records]
    unknown = [run for run in chosen if run not in ids]
    if unknown:  # typed text (or a run removed meanwhile): dropped and named; the picker's update comes back here
        chosen = [run for run in chosen if run in ids]
        gr.Warning(dropped_message([str(run) for run in unknown], chosen))  # a toast shows text as it is
        picker = {ui.runs.run_choice: gr.Dropdown(choices=ids, value=chosen, multiselect=True)}
    chosen = chosen[:MAX_OVERLAID]
    controls = {**delete_controls(ctx, chosen, visitor), **picker}
    if len(chosen) < 2:
        return {ui.runs.overlay_accuracy: OVERLAY_HINT, ui.runs.overlay_recall: "", **controls}
    snapshots = []
    for letter, run_id in zip(string.ascii_uppercase, chosen):
        snapshot = snapshot_of_run(ctx, run_id)
        if snapshot is not None:
            snapshots.append((letter, snapshot))
    key = "".join(
        f'<div><b style="color:{hue}">{letter}</b> = <code>{escape(snapshot.job_id)}</code> · {escape(run_scale_text(snapshot.config))} · '
        f"{escape(str(snapshot.status))}</div>" for (letter, snapshot), hue in zip(snapshots, RUN_COLOURS)
    )
    return {ui.runs.overlay_accuracy: overlay_accuracy(snapshots) + f'<div class="cc-card" style="margin-top:6px;font-size:13px">{key}</div>',
            ui.runs.overlay_recall: overlay_recall(snapshots), **controls}


# ---------------------------------------------------------------- download and upload a run


def exports_dir(ctx: UiContext) -> Path:
    return ctx.app.exports_dir or Path(tempfile.gettempdir()) / "cce_demo_exports"


def export_zip(ctx: UiContext, run_id: str, address: str) -> Path:
    """Write the run's zip for download; raises ValueError (ExportRefused) or RunCorruptError for people, and
    RefusedError while this address has another export or import running."""
    record = ctx.app.catalog.find(run_id)
    if record.status in (JobStatus.RUNNING, JobStatus.QUEUED):
        raise ExportRefused(f"export: run {run_id!r} is still training; download it when it has finished")
    with ctx.app.admission.running(address, "transfer"):
        directory = exports_dir(ctx)
        prune_exports(directory, EXPORT_MAX_AGE_SECONDS, EXPORT_KEEP)  # the exports folder does not grow
        return write_run_zip(record.run_dir, directory)


def disk_rules(ctx: UiContext) -> DiskRules:
    limits = ctx.app.manager.limits
    return DiskRules(limits.keep_runs, limits.max_runs_mb)


def import_zip(ctx: UiContext, zip_path: str, address: str, owner: str | None) -> ImportedRun:
    """Import an uploaded run zip into the writable runs directory (ids of shipped runs count as taken), under
    the disk rules, the per-visitor quota (public mode) and one transfer at a time per address. The run is
    recorded as `owner`'s (a visitor id, or an API caller's address key)."""
    if not isinstance(zip_path, str) or not zip_path.lower().endswith(".zip"):
        raise ImportRefused("import: expected a .zip file exported by this app (Download run)")
    catalog = ctx.app.catalog
    with ctx.app.admission.running(address, "transfer"):
        if ctx.app.public and not ctx.app.import_quota.allow(address):
            limit = ctx.app.import_quota.limit
            raise ImportRefused(f"import: you have uploaded {limit} runs within the hour (limit {limit} per visitor); "
                                "try again later")
        protected = {job.job_id for job in ctx.app.manager.active_jobs()}
        imported = import_run(zip_path, catalog.runs_dir, other_roots=catalog.shipped_dirs, rules=disk_rules(ctx),
                              protected_ids=protected, max_step_events=MAX_STEP_EVENTS)
    if owner:
        ctx.app.owners.record(imported.run_id, owner)
    return imported


def on_export_run(ctx: UiContext, selected: Any, request: gr.Request = None) -> Update:
    """Download run: the selected run's zip in the file box (its link downloads it)."""
    run_id = one_selected(selected, "download")
    try:
        path = export_zip(ctx, run_id, address_of(request))
    except (ValueError, RunCorruptError, RefusedError) as error:
        raise user_error(str(error), "export") from None
    return {ctx.ui.runs.run_zip: gr.File(value=str(path), visible=True)}


def on_import_run(ctx: UiContext, upload: Any, visitor: Visitor | None, request: gr.Request = None) -> Update:
    """Upload run: import the zip, then list it, select it and offer it to Classify."""
    path = upload if isinstance(upload, str) else getattr(upload, "name", None)
    if not isinstance(visitor, Visitor):
        message = note_user_error(NOT_LOADED, "import")
        return {ctx.ui.runs.transfer_note: f'<div class="cc-card" style="color:#b91c1c;border-color:#b91c1c">{escape(message)}</div>'}
    try:
        imported = import_zip(ctx, path, address_of(request), visitor.id)
    except (ValueError, RefusedError) as error:  # ImportRefused names the reason
        message = note_user_error(str(error), "import")
        return {ctx.ui.runs.transfer_note: f'<div class="cc-card" style="color:#b91c1c;border-color:#b91c1c">{escape(message)}</div>'}
    except OSError as error:
        raise user_error(f"import: could not write the run here ({error.strerror or type(error).__name__})", "import") from None
    renamed = f" (its id {imported.original_run_id} was taken here)" if imported.renamed else ""
    if imported.removed:
        renamed += (f"; to stay within this app's limits on runs kept, {len(imported.removed)} older "
                    f"run{'s were' if len(imported.removed) > 1 else ' was'} removed")
    updates = on_refresh_runs(ctx, select=imported.run_id)
    # multiselect: the update's own check of its value then takes the list as selections, not as one value.
    updates[ctx.ui.runs.run_choice] = gr.Dropdown(choices=updates[ctx.ui.runs.run_choice].choices, value=[imported.run_id],
                                                  multiselect=True)
    updates[ctx.ui.runs.transfer_note] = (f'<div class="cc-card">Imported run <code>{escape(imported.run_id)}</code>{escape(renamed)}, '
                                     f"status {escape(imported.status)}. It is selected above: open it in the compare view, "
                                     "or classify with it.</div>")
    return updates


