"""The Gradio app, by tab (docs/design.md, "The UI module"):

- compare/, classify/, runs/, results/, about/  one package per tab: its `layout` (components), its
  `handlers` (module-level functions `on_x(ctx, *inputs) -> dict`) and its `connect` (events)
- kit/         what every tab shares: charts, formatting, theme, names, state, errors, identity, ownership,
               admission, measured facts
- layout.py    the page: the tabs' layouts and the page's state, as one typed `Layout`
- context.py   the app's services and the page (`UiContext`), `bind`
- catalog.py   runs on disk; listing.py the runs list and pickers, refreshed by several tabs
- api.py       the named API endpoints; wiring.py `build_app`

This package is the only one that imports gradio.
"""
from .catalog import RunCatalog, runs_records, runs_table
from .compare.settings import config_from_form, config_from_request
from .compare.verdict import verdict_html
from .compare.views import confusion_html, groups_table, loss_chart, recall_chart, status_html
from .context import AppContext, UiContext
from .wiring import build_app

__all__ = [
    "AppContext", "RunCatalog", "UiContext", "build_app", "config_from_form", "config_from_request", "confusion_html",
    "groups_table", "loss_chart", "recall_chart", "runs_records", "runs_table", "status_html", "verdict_html",
]
