"""Which input feeds which handler of the Runs tab, and what each may update."""
from __future__ import annotations

from ..context import PRIVATE, QUIET, UiContext, bind
from ..listing import on_refresh_runs
from . import handlers


def connect(ctx: UiContext) -> None:
    ui, tab = ctx.ui, ctx.ui.runs
    tab.refresh_button.click(bind(ctx, on_refresh_runs), None, ui.runs_outputs, **QUIET)
    # The picker keeps only run ids (layout.py, on_runs_selected below); opening the tab lists the runs on disk now.
    runs_tab = next((child for child in ui.tabs.children if getattr(child, "id", None) == "runs"), None)
    if runs_tab is not None:
        runs_tab.select(bind(ctx, handlers.on_runs_tab), None, [tab.runs_frame, tab.run_choice, tab.runs_problems], **QUIET)
    tab.open_button.click(bind(ctx, handlers.on_open_run), {tab.run_choice, ui.visitor, ui.compare.smoothing, *ui.compare.form},
                          [*ui.view_switch, ui.tabs], **QUIET)
    # Delete asks first (naming the run); Delete there moves it to the trash, and Undo puts it back.
    tab.delete_button.click(bind(ctx, handlers.on_delete_request), [tab.run_choice, ui.visitor],
                            [tab.delete_confirm, tab.delete_question], **QUIET)
    tab.delete_no.click(bind(ctx, handlers.on_delete_cancel), None, [tab.delete_confirm, tab.delete_question], **QUIET)
    tab.delete_yes.click(bind(ctx, handlers.on_delete_run), [tab.run_choice, ui.visitor],
                         [*ui.runs_outputs, tab.delete_confirm, tab.delete_question, tab.undo_note, tab.undo_button,
                          tab.deleted, tab.delete_button], **QUIET)
    tab.undo_button.click(bind(ctx, handlers.on_undo_delete), tab.deleted,
                          [*ui.runs_outputs, tab.undo_note, tab.undo_button, tab.deleted], **QUIET)
    tab.download_button.click(bind(ctx, handlers.on_export_run), tab.run_choice, tab.run_zip, concurrency_limit=2,
                              concurrency_id="transfer", **QUIET)
    tab.upload_button.upload(bind(ctx, handlers.on_import_run), [tab.upload_button, ui.visitor],
                             [*ui.runs_outputs, tab.transfer_note], concurrency_limit=2, concurrency_id="transfer", **PRIVATE)
    tab.run_choice.change(bind(ctx, handlers.on_runs_selected), [tab.run_choice, ui.visitor],
                          [tab.run_choice, tab.overlay_accuracy, tab.overlay_recall, tab.delete_button, tab.delete_note,
                           tab.delete_confirm],
                          **QUIET)
