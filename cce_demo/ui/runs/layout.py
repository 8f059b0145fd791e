"""The Runs tab's components: the runs on disk, open / delete / download / upload, and the overlays of the
selected runs."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..kit.theme import RUNS_COLUMN_WIDTHS

OVERLAY_HINT = '<div class="cc-sub">Select two or more runs above to overlay their curves and per-class recall.</div>'


@dataclass(frozen=True)
class RunsLayout:
    runs_frame: gr.Dataframe
    runs_problems: gr.Markdown
    run_choice: gr.Dropdown
    open_button: gr.Button
    delete_button: gr.Button
    refresh_button: gr.Button
    delete_note: gr.HTML  # why Delete is not available for the selected run
    delete_confirm: gr.Group  # "Delete run X?" with Delete / Cancel, shown by Delete run
    delete_question: gr.HTML
    delete_yes: gr.Button
    delete_no: gr.Button
    undo_note: gr.HTML  # "Deleted X." beside Undo, while the run is in the trash
    undo_button: gr.Button
    deleted: gr.State  # {"token", "run_id"} of this browser's latest delete, for Undo
    download_button: gr.Button
    upload_button: gr.UploadButton
    run_zip: gr.File  # the exported zip, with its download link
    transfer_note: gr.HTML
    overlay_accuracy: gr.HTML
    overlay_recall: gr.HTML


def build(storage_note: str = "") -> RunsLayout:
    """Create the tab's components inside the current `gr.Tab`. `storage_note` says where runs are kept and
    whether they survive a restart."""
    if storage_note:
        gr.Markdown(storage_note, elem_id="storage-note")
    gr.HTML('<h2 class="cc-h2">Runs on disk</h2>')
    # Fixed shares of the width so the table fits the page (the Δ columns were behind an inner scroll at
    # 1,400 px); on a phone RUNS_STYLE keeps only run, status, balanced accuracy and the two Δ columns.
    runs_frame = gr.Dataframe(label="Runs on disk", show_label=False, interactive=False, wrap=True, elem_id="runs-table",
                              column_widths=list(RUNS_COLUMN_WIDTHS))
    runs_problems = gr.Markdown()
    # Only real run ids (issue 20): typed text that names no run is dropped from the selection as soon as it is
    # entered, the valid selections stay, and a warning names what was dropped (handlers.on_runs_selected).
    # Custom values stay allowed for Gradio itself: with them off, a selected run that was removed meanwhile
    # (retention, another browser) made every later click fail with Gradio's raw "not in the list of choices";
    # now it is named by the handlers like any unknown run. The choices follow the runs on disk: filled on load,
    # refreshed after Start, Upload, Delete, Refresh, a run of this browser ending, and whenever this tab is
    # opened (runs/connect.py), so a run trained elsewhere since the page loaded is listed.
    run_choice = gr.Dropdown([], multiselect=True, allow_custom_value=True, elem_id="run-choice",
                             label="Runs: select one to open or delete, two or more to overlay them below")
    with gr.Row():
        open_button = gr.Button("Open in compare view", elem_id="open-run")
        # Enabled only with one run selected that this visitor may delete (handlers.delete_controls).
        delete_button = gr.Button("Delete run", variant="stop", elem_id="delete-run", interactive=False)
        refresh_button = gr.Button("Refresh", elem_id="refresh-runs")
    delete_note = gr.HTML(elem_id="delete-note")
    # A second step names the run before anything is removed; a delete can then be undone for a while.
    with gr.Group(visible=False, elem_id="delete-confirm") as delete_confirm:
        delete_question = gr.HTML(elem_id="delete-question")
        with gr.Row():
            delete_yes = gr.Button("Delete", variant="stop", elem_id="delete-yes")
            delete_no = gr.Button("Cancel", elem_id="delete-no")
    with gr.Row():
        undo_note = gr.HTML(elem_id="undo-note")
        undo_button = gr.Button("Undo delete", visible=False, elem_id="undo-delete")
    deleted = gr.State(None)
    with gr.Row():
        download_button = gr.Button("Download run (.zip)", elem_id="download-run")
        upload_button = gr.UploadButton("Upload run (.zip)", file_types=[".zip"], file_count="single",
                                        type="filepath", elem_id="upload-run")
    run_zip = gr.File(label="Run zip: run.json, events.jsonl, weights, curves.csv, recall.csv", visible=False,
                      interactive=False, elem_id="run-zip")
    transfer_note = gr.HTML(elem_id="transfer-note")
    overlay_accuracy = gr.HTML(OVERLAY_HINT, elem_id="overlay-accuracy")
    overlay_recall = gr.HTML(elem_id="overlay-recall")
    return RunsLayout(runs_frame, runs_problems, run_choice, open_button, delete_button, refresh_button, delete_note,
                      delete_confirm, delete_question, delete_yes, delete_no, undo_note, undo_button, deleted,
                      download_button, upload_button, run_zip, transfer_note, overlay_accuracy, overlay_recall)
