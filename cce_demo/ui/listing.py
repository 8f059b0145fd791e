"""The runs list: the table of runs on disk and both run pickers (Runs and Classify), refreshed after every
change of the runs directory."""
from __future__ import annotations

import gradio as gr

from .catalog import run_choices, runs_table
from .context import UiContext, Update
from .kit.errors import without_paths


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
    message = ("**Unreadable run directories:** " + "; ".join(without_paths(problem) for problem in problems)) if problems else ""
    return {
        ui.runs.runs_frame: frame, ui.runs.run_choice: gr.Dropdown(choices=ids), ui.runs.runs_problems: message,
        ui.classify.classify_run: gr.Dropdown(choices=with_weights, value=chosen),
    }
