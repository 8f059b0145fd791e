"""The Gradio app, in parts (docs/design.md, "The UI module"):

- layout.py    every component, in reading order, returned as a typed `Layout`
- handlers.py  Train & compare and the page lifecycle; classify.py and runs.py the other tabs; api.py the
               named API endpoints. Handlers are module-level functions `on_x(ctx, *inputs) -> dict`
- wiring.py    `build_app`: layout, context, then every event connected to its handler
- views.py, verdict.py, charts.py  pure drawing: snapshot in, HTML out
- state.py (typed view state), ownership.py (one job per browser), catalog.py (runs on disk),
  settings.py (form -> config), evidence.py (measured facts), names.py (loss names and colours),
  errors.py (expected errors: one log line), about.py (the About tab), share.py (query links, Copy link,
  the estimate), results.py (the Results tab)

This package is the only one that imports gradio.
"""
from .catalog import RunCatalog, runs_records, runs_table
from .context import AppContext, UiContext
from .settings import config_from_form, config_from_request
from .verdict import verdict_html
from .views import confusion_html, groups_table, loss_chart, recall_chart, status_html
from .wiring import build_app

__all__ = [
    "AppContext", "RunCatalog", "UiContext", "build_app", "config_from_form", "config_from_request", "confusion_html",
    "groups_table", "loss_chart", "recall_chart", "runs_records", "runs_table", "status_html", "verdict_html",
]
