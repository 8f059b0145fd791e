"""Links and estimates of the Train & compare tab.

- A page opened with a query (`?preset=quick&ratio=100&seeds=0,1,2`, or `?run=<id>`; cce_demo/links.py) fills
  the form with those settings (it never starts a job) or opens that run; anything unusable is ignored and
  named in one note (`link_note_html`). handlers.on_load calls `query_of` and `form_updates`.
- "Copy link" gives the link for the form's settings or for the run on screen; the browser adds its own
  address (`window.location`) and copies it to the clipboard (wiring.py, `COPY_JS`).
- The estimate beside Start: how long the form's settings should take here, and whether the time limit per
  job would refuse them.
"""
from __future__ import annotations

from typing import Any, Mapping

import gradio as gr

from ...fields import form_values
from ...links import QuerySettings, UnlinkableConfig, link_for, query_for_config, query_for_run, settings_from_query
from ..context import UiContext, Update
from ..kit.charts import escape
from ..kit.errors import user_error
from ..kit.identity import Visitor
from ..kit.state import ViewRef
from .settings import config_from_form
from .timing import FormTime, form_time
from .view import controls_for, start_button

# The browser's own address replaces the link box's value before the handler runs (PAGE_URL_JS as the handler's
# own js; ADDRESS_JS as a step of its own, before a handler whose inputs are a set); the handler answers the
# full link, which COPY_JS copies (the clipboard API needs a secure context: https or localhost; elsewhere the
# text stays selected in the box for Ctrl+C).
PAGE_URL_JS = "(current, ...rest) => [window.location.href, ...rest]"
ADDRESS_JS = "(current) => window.location.href"
COPY_JS = """(link) => {
  if (!link) return;
  const box = document.querySelector('#share-link textarea, #share-link input');
  const select = () => { if (box) { box.focus(); box.select(); } };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(link).then(() => { window.__cce_copied = link; }, select);
  } else { select(); try { document.execCommand('copy'); window.__cce_copied = link; } catch (e) {} }
}"""


def query_of(request: gr.Request | None) -> QuerySettings:
    """The page's query as settings (an empty query when there is no request, e.g. in tests)."""
    params: Mapping[str, str] = {}
    if request is not None:
        try:
            params = dict(request.query_params or {})
        except (AttributeError, TypeError, KeyError):
            params = {}
    return settings_from_query(params)


def link_note_html(settings: QuerySettings, run_problem: str | None = None, run_opened: str | None = None) -> str:
    """One note about the link the page was opened with: what it set, what was ignored and why ("" when the
    page was opened without a query)."""
    parts = []
    if settings.has_settings:
        applied = ([f"preset {settings.preset}"] if settings.preset else []) + list(settings.changed)
        parts.append(f"Settings from the link: {escape(', '.join(applied))}. Nothing starts until you press Start.")
    if run_opened:
        parts.append(f"Showing run <code>{escape(run_opened)}</code> from the link.")
    ignored = list(settings.ignored) + ([run_problem] if run_problem else [])
    if ignored:
        items = "".join(f"<li><code>{escape(item)}</code></li>" for item in ignored)
        parts.append(f'<b>Ignored in this link:</b><ul style="margin:2px 0 0 18px">{items}</ul>')
    if not parts:
        return ""
    warn = ' style="border-color:#b45309"' if ignored else ""
    return f'<div class="cc-card" id="link-note-body"{warn}>{" ".join(parts)}</div>'


def form_updates(ctx: UiContext, settings: QuerySettings) -> Update:
    """The form filled from a query that set anything (else nothing: the form keeps its state)."""
    if not settings.has_settings:
        return {}
    ui = ctx.ui
    preset_name = settings.preset or "quick"
    updates: Update = {ui.compare.settings[name]: value for name, value in form_values(settings.config).items()}
    time = form_time(ctx.app.manager, settings.config)
    updates[ui.compare.preset] = preset_name
    updates[ui.compare.preset_note] = time.preset_note(preset_name)
    updates[ui.compare.estimate] = time.estimate_html()
    return updates


# ---------------------------------------------------------------- the estimate


def estimate_html(ctx: UiContext, config: Any) -> str:
    """"Estimated time: about 1 min 40 s on this machine", and whether the limit per job refuses it (the tab's
    one time source, timing.py)."""
    return form_time(ctx.app.manager, config).estimate_html()


def time_updates(ctx: UiContext, time: FormTime, visitor: Any = None) -> Update:
    """The estimate line, the refusal it implies and Start, from one `FormTime` (Start only when the visitor,
    and so whether it has a job, is known)."""
    tab = ctx.ui.compare
    updates: Update = {tab.estimate: time.estimate_html(), tab.refusal: time.refusal()}
    if isinstance(visitor, Visitor):
        updates[tab.start] = start_button(controls_for(ctx, visitor), time.refusal())
    return updates


def on_estimate(ctx: UiContext, inputs: dict[Any, Any]) -> Update:
    """The estimate follows the settings (a half-typed setting says why there is none), and Start with it.
    `inputs`: the form and the visitor, as {component: value}."""
    visitor = inputs.get(ctx.ui.visitor)
    try:
        config = config_from_form(*ctx.ui.compare.form_of(inputs))
    except (ValueError, TypeError) as error:
        updates: Update = {ctx.ui.compare.estimate: f'<span class="cc-sub">Estimated time: unknown until the settings are valid '
                                                    f"({escape(str(error)[:200])})</span>", ctx.ui.compare.refusal: ""}
        if isinstance(visitor, Visitor):
            updates[ctx.ui.compare.start] = start_button(controls_for(ctx, visitor))
        return updates
    return time_updates(ctx, form_time(ctx.app.manager, config), visitor)


# ---------------------------------------------------------------- Copy link


def on_link_settings(ctx: UiContext, inputs: dict[Any, Any]) -> Update:
    """The link that fills the form with these settings on another browser. `inputs`: the link box, which the
    browser has just filled with its own address (PAGE_URL_JS), and the form, as {component: value}."""
    page_url = inputs[ctx.ui.compare.share_link]
    preset_name, settings = ctx.ui.compare.form_of(inputs)
    try:
        config = config_from_form(preset_name, settings)
        query = query_for_config(config, preset_name)
    except UnlinkableConfig as error:
        raise user_error(str(error), "link") from None
    except (ValueError, TypeError) as error:
        raise user_error(f"No link for settings that are not valid: {error}", "link") from None
    return {ctx.ui.compare.share_link: link_for(str(page_url or ""), query)}


def on_link_run(ctx: UiContext, page_url: Any, view: ViewRef | None) -> Update:
    """The link that opens the run on screen."""
    if view is None:
        raise user_error("There is no run on screen to link to.", "link")
    return {ctx.ui.compare.share_link: link_for(str(page_url or ""), query_for_run(view.id))}
