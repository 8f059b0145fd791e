"""Handlers of the Runs tab: the table of runs on disk, open or delete one, overlay two or more, and download
or upload a run as one zip (cce_demo/transfer.py; the API's /export_run and /import_run use the same two
functions, `export_zip` and `import_zip`).
"""
from __future__ import annotations

import shutil
import string
import tempfile
from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from ..checkpoints import RunCorruptError, RunRecord
from ..jobs import JobSnapshot, UnknownJobError, snapshot_from_run_dir
from ..status import JobStatus
from ..transfer import ExportRefused, ImportedRun, ImportRefused, export_run, import_run
from .catalog import runs_table
from .charts import Bars, Line, RowLabel, bar_rows, escape, line_chart
from .classify import run_choices
from .context import UiContext, Update
from .errors import note_user_error, user_error
from .handlers import next_run_counts, show, view_of_run
from .layout import OVERLAY_HINT
from .names import RUN_COLOURS, short_name
from .settings import scale_text
from .state import BrowserMemory
from .views import head_to_tail

MAX_OVERLAID = len(RUN_COLOURS)


def on_refresh_runs(ctx: UiContext, select: str | None = None) -> Update:
    """The runs table and both run pickers; `select` (a run that just finished) is preselected for classifying
    when it has models."""
    ui, catalog = ctx.ui, ctx.app.catalog
    records, problems = catalog.records()
    frame = runs_table(catalog, records)
    ids = [record.run_id for record in records]
    with_weights = run_choices(records)
    default = catalog.default_run(records)
    chosen = select if select in with_weights else (default.run_id if default else (with_weights[0] if with_weights else None))
    message = ("**Unreadable run directories:** " + "; ".join(problems)) if problems else ""
    return {
        ui.runs_frame: frame, ui.run_choice: gr.Dropdown(choices=ids), ui.runs_problems: message,
        ui.classify_run: gr.Dropdown(choices=with_weights, value=chosen),
    }


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


def on_open_run(ctx: UiContext, selected: Any, memory_json: Any, smoothing: float, *counts_form: Any) -> Update:
    run_id = one_selected(selected, "open")
    find(ctx, run_id)
    memory = BrowserMemory.from_json(memory_json).with_client()
    updates = show(ctx, view_of_run(ctx, run_id, memory), memory, smoothing, next_run_counts(*counts_form))
    updates[ctx.ui.tabs] = gr.Tabs(selected="compare")
    return updates


def on_delete_run(ctx: UiContext, selected: Any) -> Update:
    run_id = one_selected(selected, "delete")
    record = find(ctx, run_id)
    if ctx.app.catalog.is_shipped(record):
        raise user_error("Shipped runs cannot be deleted; only runs you trained here.", "delete")
    if record.status in (JobStatus.RUNNING, JobStatus.QUEUED):
        raise user_error("This run is still training; stop it first.", "delete")
    try:
        shutil.rmtree(record.run_dir)
    except OSError as error:
        raise user_error(f"Could not delete {run_id}: {error}", "delete") from None
    gr.Info(f"Deleted run {run_id}.")
    updates = on_refresh_runs(ctx)
    updates[ctx.ui.run_choice] = gr.Dropdown(choices=updates[ctx.ui.run_choice].choices, value=[])
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
        value = point["losses"].get(loss, {}).get("balanced_accuracy")
        if value is not None:
            by_epoch.setdefault(point["epoch"], []).append(value)
    return [(epoch, sum(values) / len(values)) for epoch, values in sorted(by_epoch.items())]


def overlay_accuracy(snapshots: Sequence[tuple[str, JobSnapshot]]) -> str:
    """Balanced accuracy per epoch of every loss of every run: colour per run, CE solid, other losses dashed;
    runs with several seeds are averaged over their seeds at each epoch."""
    lines = []
    for (letter, snapshot), hue in zip(snapshots, RUN_COLOURS):
        baseline = snapshot.config.losses[0]
        for loss in snapshot.config.losses:
            lines.append(Line(f"{letter} · {short_name(loss)}", hue, mean_per_epoch(snapshot, loss),
                              style="solid" if loss == baseline else "dashed", markers=True))
    return line_chart(title="Balanced accuracy per epoch, runs overlaid", lines=lines, x_label="epoch",
                      x_integer=True, y_format=lambda value: f"{100 * value:.0f} %", y_floor=0.0, height=240,
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
        baseline = snapshot.config.losses[0]
        for loss in snapshot.config.losses:
            recall = (snapshot.latest.get(loss) or {}).get("per_class_recall")
            if recall:
                bars.append(Bars(f"{letter} · {short_name(loss)}", hue, [recall[index] for index in order], hatched=loss != baseline))
    rows = [RowLabel(names[index], f"{counts[index]:,} training images in run {usable[0][0]}") for index in order]
    return bar_rows(title="Per-class recall, runs overlaid (head → tail)", rows=rows, bars=bars,
                    subtitle="Colour: run; striped: the non-baseline losses. Each run's latest evaluation.",
                    label_heading="class · training images")


def on_runs_selected(ctx: UiContext, selected: Any) -> Update:
    """Overlay the selected runs once two or more are selected."""
    ui = ctx.ui
    chosen = [run for run in (selected or []) if run][:MAX_OVERLAID]
    if len(chosen) < 2:
        return {ui.overlay_accuracy: OVERLAY_HINT, ui.overlay_recall: ""}
    snapshots = []
    for letter, run_id in zip(string.ascii_uppercase, chosen):
        snapshot = snapshot_of_run(ctx, run_id)
        if snapshot is not None:
            snapshots.append((letter, snapshot))
    key = "".join(
        f'<div><b style="color:{hue}">{letter}</b> = <code>{escape(snapshot.job_id)}</code> · {escape(scale_text(snapshot.config))} · '
        f"{escape(str(snapshot.status))}</div>" for (letter, snapshot), hue in zip(snapshots, RUN_COLOURS)
    )
    return {ui.overlay_accuracy: overlay_accuracy(snapshots) + f'<div class="cc-card" style="margin-top:6px;font-size:13px">{key}</div>',
            ui.overlay_recall: overlay_recall(snapshots)}


# ---------------------------------------------------------------- download and upload a run


def exports_dir(ctx: UiContext) -> Path:
    return ctx.app.exports_dir or Path(tempfile.gettempdir()) / "cce_demo_exports"


def export_zip(ctx: UiContext, run_id: str) -> Path:
    """Write the run's zip for download; raises ValueError (ExportRefused) or RunCorruptError for people."""
    record = ctx.app.catalog.find(run_id)
    if record.status in (JobStatus.RUNNING, JobStatus.QUEUED):
        raise ExportRefused(f"export: run {run_id!r} is still training; download it when it has finished")
    return export_run(record.run_dir, exports_dir(ctx))


def import_zip(ctx: UiContext, zip_path: str) -> ImportedRun:
    """Import an uploaded run zip into the writable runs directory (ids of shipped runs count as taken)."""
    if not isinstance(zip_path, str) or not zip_path.lower().endswith(".zip"):
        raise ImportRefused("import: expected a .zip file exported by this app (Download run)")
    catalog = ctx.app.catalog
    return import_run(zip_path, catalog.runs_dir, other_roots=catalog.shipped_dirs)


def on_export_run(ctx: UiContext, selected: Any) -> Update:
    """Download run: the selected run's zip in the file box (its link downloads it)."""
    run_id = one_selected(selected, "download")
    try:
        path = export_zip(ctx, run_id)
    except (ValueError, RunCorruptError) as error:
        raise user_error(str(error), "export") from None
    return {ctx.ui.run_zip: gr.File(value=str(path), visible=True)}


def on_import_run(ctx: UiContext, upload: Any) -> Update:
    """Upload run: import the zip, then list it, select it and offer it to Classify."""
    path = upload if isinstance(upload, str) else getattr(upload, "name", None)
    try:
        imported = import_zip(ctx, path)
    except ValueError as error:  # ImportRefused names the reason
        note_user_error(str(error), "import")
        return {ctx.ui.transfer_note: f'<div class="cc-card" style="color:#b91c1c;border-color:#b91c1c">{escape(str(error))}</div>'}
    except OSError as error:
        raise user_error(f"import: could not write the run here ({error.strerror or error})", "import") from None
    renamed = f" (its id {imported.original_run_id} was taken here)" if imported.renamed else ""
    updates = on_refresh_runs(ctx, select=imported.run_id)
    updates[ctx.ui.run_choice] = gr.Dropdown(choices=updates[ctx.ui.run_choice].choices, value=[imported.run_id],
                                           allow_custom_value=True)
    updates[ctx.ui.transfer_note] = (f'<div class="cc-card">Imported run <code>{escape(imported.run_id)}</code>{escape(renamed)}, '
                                     f"status {escape(imported.status)}. It is selected above: open it in the compare view, "
                                     "or classify with it.</div>")
    return updates
