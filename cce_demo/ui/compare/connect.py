"""Which input feeds which handler of the Train & compare tab, and what each may update; and the page's
lifecycle (load, the 1 s timer), whose first screen is this tab. A handler that reads the form gets its inputs
as one {component: value} (a set of inputs), never as positional slices."""
from __future__ import annotations

import gradio as gr

from ..context import PRIVATE, QUIET, UiContext, bind
from ..listing import on_refresh_runs
from . import handlers, share


def connect_page(demo: gr.Blocks, ctx: UiContext) -> None:
    """Load (re-attach to this browser's job; a link's query fills the form or opens a run), then the 1 s
    timer redraws live jobs."""
    ui, tab = ctx.ui, ctx.ui.compare
    refresh_runs = bind(ctx, on_refresh_runs)
    load_outputs = [*ui.view_switch, tab.preset, *tab.settings.values(), tab.preset_note, tab.estimate, tab.refusal,
                    tab.link_note, tab.public_panel]
    demo.load(bind(ctx, handlers.on_load), {ui.memory, ui.visitor, tab.smoothing, *tab.form}, load_outputs, **QUIET).then(
        refresh_runs, None, ui.runs_outputs, **QUIET)
    ui.timer.tick(bind(ctx, handlers.on_tick), [ui.view, ui.drawn, ui.visitor, tab.smoothing, tab.refusal],
                  [ui.drawn, *tab.view_outputs, tab.start, tab.stop, *ui.runs_outputs], concurrency_limit=None, **QUIET)


def connect(ctx: UiContext) -> None:
    ui, tab = ctx.ui, ctx.ui.compare
    refresh_runs = bind(ctx, on_refresh_runs)
    # The preset fills the form only when the person picks one (`input`): a link that sets a preset and some of
    # its settings must not have them overwritten by the preset's own values.
    tab.preset.input(bind(ctx, handlers.on_preset), [tab.preset, ui.view, ui.visitor],
                     [tab.preset_note, tab.estimate, tab.refusal, tab.start, *tab.settings.values(), tab.counts_chart], **QUIET)
    # Only an edit by hand (`input`) makes the form "custom"; a preset or a link filling it does not.
    gr.on([widget.input for widget in tab.settings.values()], bind(ctx, handlers.on_edit), tab.preset,
          [tab.preset, tab.preset_note], **QUIET)
    for name in ("dataset", "profile", "ratio"):  # the settings that decide the class counts
        tab.settings[name].change(bind(ctx, handlers.on_settings), {ui.view, *tab.form}, tab.counts_chart, **QUIET)
    tab.start.click(bind(ctx, handlers.on_start), {ui.visitor, tab.smoothing, *tab.form}, ui.view_switch, **QUIET).then(
        refresh_runs, None, ui.runs_outputs, **QUIET)
    tab.repeat.click(bind(ctx, handlers.on_repeat), {ui.visitor, ui.view, tab.smoothing, *tab.form}, ui.view_switch,
                     **QUIET).then(refresh_runs, None, ui.runs_outputs, **QUIET)
    tab.stop.click(bind(ctx, handlers.on_stop), [ui.visitor, ui.view], [tab.stop, tab.status], **QUIET)
    # The settings, not the preset radio: a preset's estimate comes with its settings (on_preset), where the
    # radio's own change would estimate the new preset with the old settings for a moment (issue 20).
    gr.on([widget.change for widget in tab.settings.values()], bind(ctx, share.on_estimate), {*tab.form, ui.visitor},
          [tab.estimate, tab.refusal, tab.start], trigger_mode="always_last", **QUIET)
    # The browser first puts its own address into the link box, which the handler then reads with the form.
    tab.link_settings.click(None, tab.share_link, tab.share_link, js=share.ADDRESS_JS, **PRIVATE).then(
        bind(ctx, share.on_link_settings), {tab.share_link, *tab.form}, tab.share_link, **QUIET).then(
        None, tab.share_link, None, js=share.COPY_JS, **PRIVATE)
    tab.link_run.click(bind(ctx, share.on_link_run), [tab.share_link, ui.view], tab.share_link,
                       js=share.PAGE_URL_JS, **QUIET).then(None, tab.share_link, None, js=share.COPY_JS, **PRIVATE)
    tab.smoothing.change(bind(ctx, handlers.on_smoothing), [ui.view, tab.smoothing], tab.loss_chart,
                         trigger_mode="always_last", **QUIET)
