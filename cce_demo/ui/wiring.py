"""Builds the app: the layout, then the context, then each tab's events (its package's `connect`) and the
named API."""
from __future__ import annotations

from typing import Any

import gradio as gr

from .api import register_api
from .classify import connect as classify
from .compare import connect as compare
from .context import AppContext, UiContext
from .kit import gradio_log
from .kit.admission import Admission, guard_queue
from .layout import build_layout
from .runs import connect as runs

PAGE_TITLE = "CCE vs CE on long-tailed CIFAR"
# Gradio's cache of uploads and served files: every 5 minutes, remove what is older than 15 (an upload is
# used within seconds). Without it any client could park files there without calling an endpoint.
DELETE_CACHE = (300, 900)


class GuardedBlocks(gr.Blocks):
    """Blocks whose event queue applies the per-visitor limits (admission.py) wherever it is (re)created:
    `queue()` builds a new one, and app.py calls it after the app is built."""

    admission: Admission | None = None

    def queue(self, *args: Any, **kwargs: Any) -> "GuardedBlocks":
        result = super().queue(*args, **kwargs)
        if self.admission is not None:
            guard_queue(self._queue, self.admission)
        return result


def build_app(app: AppContext) -> gr.Blocks:
    gradio_log.install()
    with GuardedBlocks(title=PAGE_TITLE, delete_cache=DELETE_CACHE) as demo:
        ctx = UiContext(app, build_layout(app.examples_dir, app.results_dir, app.storage_note))
        connect(demo, ctx)
        register_api(ctx)
    demo.admission = app.admission
    guard_queue(demo._queue, app.admission)  # the queue Blocks made for itself, in case queue() is not called
    keep_built_files(demo, ctx.ui.classify.upload)
    return demo


def keep_built_files(demo: gr.Blocks, holder: gr.components.Component) -> None:
    """Exempt what the app itself put in Gradio's cache while it was built (the example images) from
    `delete_cache`: Gradio deletes every file of its temporary sets when a lifespan ends, and one ends
    during launch, which took the examples with it. What visitors upload later is still removed."""
    built = {path for files in demo.temp_file_sets for path in files}
    holder.keep_in_cache = set(getattr(holder, "keep_in_cache", set())) | built


def connect(demo: gr.Blocks, ctx: UiContext) -> None:
    compare.connect_page(demo, ctx)
    compare.connect(ctx)
    classify.connect(ctx)
    runs.connect(ctx)
