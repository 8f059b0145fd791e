"""The Train & compare tab's components, in reading order: the settings form, Start and Stop, the verdict
card beside the class counts, then the evidence (per-class recall, curves, group table, confusion matrices)
and the share links. No behaviour here: handlers.py fills them and connect.py wires their events."""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import gradio as gr

from ...config import PRESETS
from ...fields import FORM_FIELDS, Field, widget_value
from ..kit.charts import DEFAULT_SMOOTHING
from ..kit.evidence import PRESET_FACTS
from ..kit.names import display_name

DEFAULT_PRESET = "quick"
# What the preset radio shows once any advanced setting was edited by hand: the form no longer is a preset, so
# neither the preset's name nor its note may stay on screen (issue 20). The settings the form does not show
# still come from the preset last picked, which the radio's value carries ("custom:standard" under the label
# "custom"): no extra component, so the form's inputs stay the ones API and queue clients already send.
CUSTOM = "custom"


def custom_value(base_preset: str) -> str:
    return f"{CUSTOM}:{base_preset}"


def is_custom(value: Any) -> bool:
    return isinstance(value, str) and (value == CUSTOM or value.startswith(CUSTOM + ":"))


def base_of(value: Any) -> str:
    """The preset a radio value stands for: itself, or for "custom:<preset>" the preset it started from."""
    if is_custom(value):
        base = value.partition(":")[2]
        return base if base in PRESETS else DEFAULT_PRESET
    return value


def preset_choices(base_preset: str = DEFAULT_PRESET) -> list[tuple[str, str]]:
    return [(name, name) for name in PRESETS] + [(CUSTOM, custom_value(base_preset))]


@dataclass(frozen=True)
class CompareLayout:
    link_note: gr.HTML  # what a link's query set and what it ignored (share.py)
    public_panel: gr.HTML  # in public mode: the limits that apply and what happens to the runs (public.py)
    preset: gr.Radio
    preset_note: gr.Markdown
    # The settings' widgets by the form's names (fields.py), in its order; also reachable as attributes
    # (`layout.ratio`).
    settings: Mapping[str, gr.components.Component]
    counts_chart: gr.HTML
    start: gr.Button
    stop: gr.Button
    estimate: gr.HTML  # how long the settings should take here, and whether the time limit refuses them
    live_strip: gr.HTML  # while a viewed job trains: progress, time left, each model's latest loss and accuracy
    link_settings: gr.Button
    link_run: gr.Button
    share_link: gr.Textbox
    verdict: gr.HTML
    repeat: gr.Button
    status: gr.HTML
    recall_chart: gr.HTML
    loss_chart: gr.HTML
    smoothing: gr.Slider
    test_loss_chart: gr.HTML
    accuracy_chart: gr.HTML
    groups: gr.Dataframe
    confusion: gr.HTML
    # Why Start is refused for the form's settings ("" when it is not): written with the estimate, read by the
    # timer when it redraws the buttons, so a job ending does not re-enable Start for settings over the limit.
    refusal: gr.State

    def __getattr__(self, name: str) -> gr.components.Component:
        if name != "settings" and name in self.settings:
            return self.settings[name]
        raise AttributeError(name)

    @property
    def form(self) -> set[gr.components.Component]:
        """The preset and the settings: as an event's inputs, the handler gets them as one {component: value}."""
        return {self.preset, *self.settings.values()}

    def form_of(self, inputs: Mapping[gr.components.Component, Any]) -> tuple[str, dict[str, Any]]:
        """The preset's name and the settings' values by the form's names, from an event's {component: value}.
        For "custom" settings the name is the preset they started from (it supplies the fields the form does
        not show)."""
        return base_of(inputs[self.preset]), {setting: inputs[widget] for setting, widget in self.settings.items()}

    @property
    def view_outputs(self) -> list[gr.components.Component]:
        """Everything that shows the viewed run (what `view.render` may update)."""
        return [self.status, self.live_strip, self.verdict, self.repeat, self.counts_chart, self.recall_chart, self.loss_chart,
                self.test_loss_chart, self.accuracy_chart, self.groups, self.confusion]


# The keyboard's way through the page (issue 20): the WAI-ARIA patterns for tabs and radio groups, which
# Gradio's front end leaves out. Its tab buttons were five tab stops and each radio its own (every input gets a
# name of its own, so the browser does not group them), which put Start 12 Tab presses from the page's top.
# Now the tab list and each radio group are one stop (the selected tab, the checked radio) and the arrow keys
# (Home, End) move between the tabs or the radios and select them, so nothing leaves the keyboard's reach.
# The stops are put right before each Tab press, so they follow selections made in any other way.
KEYBOARD_JS = """
if (!window.ccKeyboard) {
  window.ccKeyboard = true;
  const tabsOf = () => [...document.querySelectorAll('#tabs [role=tablist] [role=tab]')];
  const radiosOf = input => [...(input.closest('fieldset') || input.parentElement).querySelectorAll('input[type=radio]')];
  const rove = () => {
    const tabs = tabsOf();
    const selected = tabs.find(tab => tab.getAttribute('aria-selected') === 'true') || tabs[0];
    tabs.forEach(tab => { tab.tabIndex = tab === selected ? 0 : -1; });
    for (const group of document.querySelectorAll('.gradio-container fieldset')) {
      const radios = [...group.querySelectorAll('input[type=radio]')];
      const usable = radios.filter(radio => !radio.disabled);
      const stop = usable.find(radio => radio.checked) || usable[0];
      radios.forEach(radio => { radio.tabIndex = radio === stop ? 0 : -1; });
    }
  };
  const moves = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1};
  document.addEventListener('keydown', event => {
    if (event.key === 'Tab') { rove(); return; }
    if (event.altKey || event.ctrlKey || event.metaKey || !(event.key in moves || event.key === 'Home' || event.key === 'End')) return;
    const target = event.target;
    const isTab = tabsOf().includes(target);
    if (isTab && (event.key === 'ArrowUp' || event.key === 'ArrowDown')) return;  // a horizontal tab list
    if (!isTab && !(target instanceof HTMLInputElement && target.type === 'radio')) return;
    const items = (isTab ? tabsOf() : radiosOf(target)).filter(item => !item.disabled);
    const here = items.indexOf(target);
    if (items.length < 2 || here < 0) return;
    event.preventDefault();
    const next = items[event.key === 'Home' ? 0 : event.key === 'End' ? items.length - 1
                       : (here + moves[event.key] + items.length) % items.length];
    items.forEach(item => { item.tabIndex = item === next ? 0 : -1; });
    next.focus();
    next.click();
  }, true);
}
"""


# Chart values on a touch screen (issue 31): every bar, point and hover band of the charts carries its value
# as a tooltip (an SVG <title> or a title attribute), which only a mouse shows. A tap on one shows the same
# text in a small box by the finger, until the next tap elsewhere; the mouse's tooltips are unchanged.
TAP_JS = """
if (!window.ccTap) {
  window.ccTap = true;
  const box = document.createElement('div');
  box.id = 'cc-tap';
  box.setAttribute('role', 'status');
  box.style.cssText = 'position:fixed;z-index:1000;max-width:80vw;padding:6px 8px;border-radius:6px;font-size:13px;' +
    'background:#111827;color:#fff;box-shadow:0 2px 8px rgba(0,0,0,.3);display:none;pointer-events:none;white-space:pre-line';
  document.body.appendChild(box);
  const textOf = element => {
    for (let node = element; node && !node.classList?.contains('cc-chart'); node = node.parentElement) {
      const title = node.querySelector?.(':scope > title');
      if (title && title.textContent.trim()) return title.textContent.trim();
      if (node.getAttribute && node.getAttribute('title')) return node.getAttribute('title');
    }
    return '';
  };
  document.addEventListener('click', event => {
    const chart = event.target.closest && event.target.closest('.cc-chart');
    const text = chart ? textOf(event.target) : '';
    if (!text) { box.style.display = 'none'; return; }
    box.textContent = text;
    box.style.display = 'block';
    const x = Math.min(event.clientX + 8, window.innerWidth - box.offsetWidth - 8);
    const y = event.clientY > window.innerHeight / 2 ? event.clientY - box.offsetHeight - 12 : event.clientY + 16;
    box.style.left = Math.max(8, x) + 'px';
    box.style.top = Math.max(8, y) + 'px';
  }, true);
}
"""


def widget(field: Field, value: Any) -> gr.components.Component:
    """The form's widget for one setting of the table (fields.py), showing `value`."""
    if field.kind == "dropdown":
        return gr.Dropdown(list(field.choices), value=value, label=field.label)
    if field.kind == "radio":
        return gr.Radio(list(field.choices), value=value, label=field.label)
    if field.kind == "losses":
        return gr.CheckboxGroup([display_name(loss) for loss in field.choices], value=value, label=field.label)
    if field.kind == "seeds":
        return gr.Textbox(value, label=field.label)
    bounds = {} if field.minimum is None else {"minimum": field.minimum}
    return gr.Number(value, label=field.label, precision=0 if field.kind == "whole" else None, **bounds)


def build() -> CompareLayout:
    """Create the tab's components inside the current `gr.Tab`."""
    quick = PRESETS[DEFAULT_PRESET]
    link_note = gr.HTML(elem_id="link-note", js_on_load=KEYBOARD_JS + TAP_JS)  # the page's keyboard script rides here
    public_panel = gr.HTML(elem_id="public-panel-box")
    preset = gr.Radio(preset_choices(), value=DEFAULT_PRESET, label="Preset", elem_id="preset")
    # What the preset is for; the page's load adds how long it takes here (timing.py: computed, never typed).
    note = gr.Markdown(PRESET_FACTS[DEFAULT_PRESET].note, elem_id="preset-note")
    with gr.Accordion("Advanced settings", open=False):
        settings = {}
        for row, fields in itertools.groupby(FORM_FIELDS, key=lambda field: field.row):
            with gr.Row() if row is not None else contextlib.nullcontext():
                for field in fields:
                    settings[field.name] = widget(field, widget_value(field, quick))
    with gr.Row():
        # Disabled until the page has loaded and knows whether this browser already has a job.
        start = gr.Button("Start training", variant="primary", interactive=False, elem_id="start", min_width=120)
        stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop", min_width=120)
    # Right under Start/Stop, so that something live is above the fold while a job trains (issue 31).
    live_strip = gr.HTML(elem_id="live-strip", visible=False)
    estimate = gr.HTML(elem_id="estimate")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            # The answer first: directly under Start/Stop, beside the class counts it is about.
            verdict = gr.HTML(elem_id="verdict")
            repeat = gr.Button("Repeat with 3 seeds", visible=False, elem_id="repeat", variant="secondary")
            status = gr.HTML(elem_id="job-status")
        with gr.Column(scale=2, min_width=300):
            counts_chart = gr.HTML(elem_id="counts-chart")
    recall_chart = gr.HTML(elem_id="recall-chart")
    loss_chart = gr.HTML(elem_id="loss-curve")
    smoothing = gr.Slider(0, 0.99, value=DEFAULT_SMOOTHING, step=0.01, label="Smoothing (0 = raw)",
                          elem_id="smoothing")
    with gr.Row(equal_height=False):
        test_loss_chart = gr.HTML(elem_id="test-loss-chart", min_width=320)
        accuracy_chart = gr.HTML(elem_id="accuracy-chart", min_width=320)
    groups = gr.Dataframe(label="Head / medium / tail recall", interactive=False)
    confusion = gr.HTML(elem_id="confusion")
    with gr.Row(equal_height=True):
        link_settings = gr.Button("Copy link to these settings", elem_id="link-settings", size="sm", min_width=160)
        link_run = gr.Button("Copy link to the run shown", elem_id="link-run", size="sm", min_width=160)
        share_link = gr.Textbox(label="Link (copied to the clipboard)", elem_id="share-link", interactive=False,
                                scale=3, buttons=["copy"])
    # Created last: a State in the event inputs takes a slot after every other component's (API and queue
    # clients send the form's values in that order).
    refusal = gr.State("")
    return CompareLayout(
        refusal=refusal, public_panel=public_panel, link_note=link_note, preset=preset, preset_note=note, settings=MappingProxyType(settings), counts_chart=counts_chart, start=start, stop=stop, estimate=estimate,
        live_strip=live_strip,
        link_settings=link_settings, link_run=link_run, share_link=share_link, verdict=verdict, repeat=repeat,
        status=status, recall_chart=recall_chart, loss_chart=loss_chart, smoothing=smoothing,
        test_loss_chart=test_loss_chart, accuracy_chart=accuracy_chart, groups=groups, confusion=confusion,
    )
