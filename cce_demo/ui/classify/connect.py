"""Which input feeds the Classify tab's handler: on upload or example, on a change of run or of the prior
toggle, and on the button."""
from __future__ import annotations

from ..context import PRIVATE, UiContext, bind
from . import handlers


def connect(ctx: UiContext) -> None:
    tab = ctx.ui.classify
    inputs = [tab.upload, tab.classify_run, tab.correct_prior]
    for event in (tab.upload.change, tab.correct_prior.change, tab.classify_run.change, tab.classify_button.click):
        event(bind(ctx, handlers.on_classify), inputs, tab.outputs, concurrency_limit=2, concurrency_id="classify",
              trigger_mode="always_last", **PRIVATE)
