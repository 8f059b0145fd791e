"""The Train & compare tab's components, in reading order: the settings form, Start and Stop, the verdict
card beside the class counts, then the evidence (per-class recall, curves, group table, confusion matrices)
and the share links. No behaviour here: handlers.py fills them and connect.py wires their events."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ...config import DATASETS, LOSS_NAMES, MODEL_NAMES, PRESETS, PROFILES
from ..kit.charts import DEFAULT_SMOOTHING
from ..kit.evidence import preset_note
from ..kit.names import display_name

DEFAULT_PRESET = "quick"


@dataclass(frozen=True)
class CompareLayout:
    link_note: gr.HTML  # what a link's query set and what it ignored (share.py)
    # The settings (in the order `settings.config_from_form` takes them)
    preset: gr.Radio
    preset_note: gr.Markdown
    dataset: gr.Dropdown
    profile: gr.Radio
    ratio: gr.Number
    losses: gr.CheckboxGroup
    gamma: gr.Number
    model: gr.Dropdown
    epochs: gr.Number
    batch_size: gr.Number
    learning_rate: gr.Number
    seeds: gr.Textbox
    device: gr.Radio
    counts_chart: gr.HTML
    start: gr.Button
    stop: gr.Button
    estimate: gr.HTML  # how long the settings should take here, and whether the time limit refuses them
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

    @property
    def form(self) -> list[gr.components.Component]:
        """The settings, in `config_from_form`'s argument order."""
        return [self.preset, self.dataset, self.profile, self.ratio, self.losses, self.gamma, self.model, self.epochs,
                self.batch_size, self.learning_rate, self.seeds, self.device]

    @property
    def view_outputs(self) -> list[gr.components.Component]:
        """Everything that shows the viewed run (what `view.render` may update)."""
        return [self.status, self.verdict, self.repeat, self.counts_chart, self.recall_chart, self.loss_chart,
                self.test_loss_chart, self.accuracy_chart, self.groups, self.confusion]


def build() -> CompareLayout:
    """Create the tab's components inside the current `gr.Tab`."""
    quick = PRESETS[DEFAULT_PRESET]
    link_note = gr.HTML(elem_id="link-note")
    preset = gr.Radio(list(PRESETS), value=DEFAULT_PRESET, label="Preset", elem_id="preset")
    note = gr.Markdown(preset_note(DEFAULT_PRESET), elem_id="preset-note")
    with gr.Accordion("Advanced settings", open=False):
        with gr.Row():
            dataset = gr.Dropdown(list(DATASETS), value=quick.dataset, label="Dataset")
            profile = gr.Radio(list(PROFILES), value=quick.profile, label="Imbalance profile")
            ratio = gr.Number(quick.imbalance_ratio, label="Imbalance ratio (≥ 1)", minimum=1)
        losses = gr.CheckboxGroup(
            [display_name(loss) for loss in LOSS_NAMES],
            value=[display_name(loss) for loss in quick.losses], label="Losses to compare",
        )
        with gr.Row():
            gamma = gr.Number(quick.gamma, label="γ of paper-form CCE")
            model = gr.Dropdown(list(MODEL_NAMES), value=quick.model, label="Model")
            epochs = gr.Number(quick.epochs, label="Epochs", precision=0)
        with gr.Row():
            batch_size = gr.Number(quick.batch_size, label="Batch size", precision=0)
            learning_rate = gr.Number(quick.learning_rate, label="Learning rate")
            seeds = gr.Textbox(",".join(map(str, quick.seeds)), label="Seeds (e.g. 0,1,2)")
            device = gr.Radio(["auto", "cpu", "cuda"], value=quick.device, label="Device")
    with gr.Row():
        # Disabled until the page has loaded and knows whether this browser already has a job.
        start = gr.Button("Start training", variant="primary", interactive=False, elem_id="start", min_width=120)
        stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop", min_width=120)
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
    return CompareLayout(
        link_note=link_note, preset=preset, preset_note=note, dataset=dataset, profile=profile, ratio=ratio,
        losses=losses, gamma=gamma, model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        seeds=seeds, device=device, counts_chart=counts_chart, start=start, stop=stop, estimate=estimate,
        link_settings=link_settings, link_run=link_run, share_link=share_link, verdict=verdict, repeat=repeat,
        status=status, recall_chart=recall_chart, loss_chart=loss_chart, smoothing=smoothing,
        test_loss_chart=test_loss_chart, accuracy_chart=accuracy_chart, groups=groups, confusion=confusion,
    )
