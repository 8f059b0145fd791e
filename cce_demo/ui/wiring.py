"""Builds the app: the layout, then the context, then every event connected to its handler — the one place
that says which input feeds which handler and what it may update."""
from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable

import gradio as gr

from . import classify, gradio_log, handlers, runs, share
from .admission import Admission, guard_queue
from .api import register_api
from .context import AppContext, UiContext
from .layout import build_layout

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


def bind(ctx: UiContext, handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler` with its context filled in, as Gradio needs it: the remaining signature and type hints (so a
    `gr.Request` parameter is still recognised), and an empty dict of updates turned into `gr.skip()`."""
    signature = inspect.signature(handler)
    parameters = list(signature.parameters.values())[1:]
    names = {parameter.name for parameter in parameters}
    try:
        hints = typing.get_type_hints(handler)
    except (NameError, TypeError):
        hints = {}

    @functools.wraps(handler, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
    def run(*args: Any, **kwargs: Any) -> Any:
        updates = handler(ctx, *args, **kwargs)
        return gr.skip() if isinstance(updates, dict) and not updates else updates

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {name: hint for name, hint in hints.items() if name in names}
    return run


def build_app(app: AppContext) -> gr.Blocks:
    gradio_log.install()
    with GuardedBlocks(title=PAGE_TITLE, delete_cache=DELETE_CACHE) as demo:
        ctx = UiContext(app, build_layout(app.examples_dir, app.results_dir, app.storage_note))
        connect(demo, ctx)
        register_api(ctx)
    demo.admission = app.admission
    guard_queue(demo._queue, app.admission)  # the queue Blocks made for itself, in case queue() is not called
    keep_built_files(demo, ctx.ui.upload)
    return demo


def keep_built_files(demo: gr.Blocks, holder: gr.components.Component) -> None:
    """Exempt what the app itself put in Gradio's cache while it was built (the example images) from
    `delete_cache`: Gradio deletes every file of its temporary sets when a lifespan ends, and one ends
    during launch, which took the examples with it. What visitors upload later is still removed."""
    built = {path for files in demo.temp_file_sets for path in files}
    holder.keep_in_cache = set(getattr(holder, "keep_in_cache", set())) | built


def connect(demo: gr.Blocks, ctx: UiContext) -> None:
    ui = ctx.ui
    private: dict[str, Any] = {"api_visibility": "private"}
    quiet: dict[str, Any] = {**private, "show_progress": "hidden"}
    counts_form = [ui.preset, ui.dataset, ui.profile, ui.ratio]
    view_switch = [ui.view, ui.drawn, ui.memory, ui.visitor, *ui.view_outputs, ui.start, ui.stop]
    refresh_runs = bind(ctx, runs.on_refresh_runs)

    # Page lifecycle: load (re-attach to this browser's job; a link's query fills the form or opens a run), then
    # the 1 s timer redraws live jobs.
    load_outputs = [*view_switch, *ui.form, ui.preset_note, ui.estimate, ui.link_note]
    demo.load(bind(ctx, handlers.on_load), [ui.memory, ui.visitor, ui.smoothing, *counts_form], load_outputs, **quiet).then(
        refresh_runs, None, ui.runs_outputs, **quiet)
    ui.timer.tick(bind(ctx, handlers.on_tick), [ui.view, ui.drawn, ui.visitor, ui.smoothing],
                  [ui.drawn, *ui.view_outputs, ui.start, ui.stop, *ui.runs_outputs], concurrency_limit=None, **quiet)

    # Train & compare. The preset fills the form only when the person picks one (`input`): a link that sets a
    # preset and some of its settings must not have them overwritten by the preset's own values.
    ui.preset.input(bind(ctx, handlers.on_preset), [ui.preset, ui.view], [ui.preset_note, *ui.form[1:], ui.counts_chart], **quiet)
    for widget in (ui.dataset, ui.profile, ui.ratio):
        widget.change(bind(ctx, handlers.on_settings), [ui.view, *counts_form], ui.counts_chart, **quiet)
    ui.start.click(bind(ctx, handlers.on_start), [ui.visitor, ui.smoothing, *ui.form], view_switch, **quiet).then(
        refresh_runs, None, ui.runs_outputs, **quiet)
    ui.repeat.click(bind(ctx, handlers.on_repeat), [ui.visitor, ui.view, ui.smoothing, *counts_form], view_switch, **quiet).then(
        refresh_runs, None, ui.runs_outputs, **quiet)
    ui.stop.click(bind(ctx, handlers.on_stop), [ui.visitor, ui.view], [ui.stop, ui.status], **quiet)
    gr.on([widget.change for widget in ui.form], bind(ctx, share.on_estimate), ui.form, ui.estimate,
          trigger_mode="always_last", **quiet)
    ui.link_settings.click(bind(ctx, share.on_link_settings), [ui.share_link, *ui.form], ui.share_link,
                           js=share.PAGE_URL_JS, **quiet).then(None, ui.share_link, None, js=share.COPY_JS, **private)
    ui.link_run.click(bind(ctx, share.on_link_run), [ui.share_link, ui.view], ui.share_link,
                      js=share.PAGE_URL_JS, **quiet).then(None, ui.share_link, None, js=share.COPY_JS, **private)
    ui.smoothing.change(bind(ctx, handlers.on_smoothing), [ui.view, ui.smoothing], ui.loss_chart,
                        trigger_mode="always_last", **quiet)

    # Classify: on upload or example, on a change of run or of the prior toggle, and on the button.
    classify_inputs = [ui.upload, ui.classify_run, ui.correct_prior]
    for event in (ui.upload.change, ui.correct_prior.change, ui.classify_run.change, ui.classify_button.click):
        event(bind(ctx, classify.on_classify), classify_inputs, ui.classify_outputs, concurrency_limit=2,
              concurrency_id="classify", trigger_mode="always_last", **private)

    # Runs
    ui.refresh_button.click(refresh_runs, None, ui.runs_outputs, **quiet)
    ui.open_button.click(bind(ctx, runs.on_open_run), [ui.run_choice, ui.visitor, ui.smoothing, *counts_form],
                         [*view_switch, ui.tabs], **quiet)
    ui.delete_button.click(bind(ctx, runs.on_delete_run), [ui.run_choice, ui.visitor], ui.runs_outputs, **quiet)
    ui.download_button.click(bind(ctx, runs.on_export_run), ui.run_choice, ui.run_zip, concurrency_limit=2,
                             concurrency_id="transfer", **quiet)
    ui.upload_button.upload(bind(ctx, runs.on_import_run), [ui.upload_button, ui.visitor], [*ui.runs_outputs, ui.transfer_note],
                            concurrency_limit=2, concurrency_id="transfer", **private)
    ui.run_choice.change(bind(ctx, runs.on_runs_selected), [ui.run_choice, ui.visitor],
                         [ui.overlay_accuracy, ui.overlay_recall, ui.delete_button, ui.delete_note], **quiet)
