"""The page: every component, created in reading order, returned as one typed `Layout`. No behaviour here;
handlers (handlers.py, classify.py, runs.py) fill the components and wiring.py connects the events."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..config import DATASETS, LOSS_NAMES, MODEL_NAMES, PRESETS, PROFILES
from .about import ABOUT
from .charts import STYLE, escape
from .evidence import preset_note
from .names import display_name
from .results import load_result_sets, result_set_html, results_html
from .verdict import VERDICT_STYLE
from .views import DEFAULT_SMOOTHING

DEFAULT_PRESET = "quick"
REFRESH_SECONDS = 1.0
# BrowserState's own "secret" is sent to every browser in /config, so it protects nothing and is not relied
# on: what the browser keeps is a visitor token the server signs and checks (identity.py) and a job id that
# only chooses what to show.
BROWSER_STORAGE_KEY = "cce_demo_browser"
BROWSER_SECRET = "cce_demo_browser_memory"
OVERLAY_HINT = '<div class="cc-sub">Select two or more runs above to overlay their curves and per-class recall.</div>'
HEADER = """<div style="display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 14px">
<h1 style="margin:0;font-size:clamp(18px,4.6vw,24px)">Complement Cross Entropy vs Cross Entropy on long-tailed CIFAR</h1>
<span class="cc-tagline" style="color:var(--body-text-color-subdued);font-size:13px">Both losses train as a <i>paired</i> run (same initial
weights, same batches, only the loss differs); results are reported as they come out.</span></div>"""


@dataclass(frozen=True)
class Layout:
    tabs: gr.Tabs
    link_note: gr.HTML  # what a link's query set and what it ignored (share.py)
    # Train & compare: settings (in the order `settings.config_from_form` takes them)
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
    # Classify
    classify_run: gr.Dropdown
    upload: gr.File
    correct_prior: gr.Checkbox
    classify_button: gr.Button
    upload_preview: gr.Image
    seen: gr.Image
    classify_note: gr.HTML
    predictions: gr.HTML
    class_lean: gr.HTML
    # Runs
    runs_frame: gr.Dataframe
    runs_problems: gr.Markdown
    run_choice: gr.Dropdown
    open_button: gr.Button
    delete_button: gr.Button
    refresh_button: gr.Button
    download_button: gr.Button
    upload_button: gr.UploadButton
    run_zip: gr.File  # the exported zip, with its download link
    transfer_note: gr.HTML
    overlay_accuracy: gr.HTML
    overlay_recall: gr.HTML
    # State
    view: gr.State  # ViewRef | None
    drawn: gr.State  # Drawn
    memory: gr.BrowserState  # BrowserMemory as JSON
    visitor: gr.State  # identity.Visitor | None: set by the server on load, never by a request
    delete_note: gr.HTML  # why Delete is not available for the selected run
    timer: gr.Timer

    @property
    def form(self) -> list[gr.components.Component]:
        """The settings, in `config_from_form`'s argument order."""
        return [self.preset, self.dataset, self.profile, self.ratio, self.losses, self.gamma, self.model, self.epochs,
                self.batch_size, self.learning_rate, self.seeds, self.device]

    @property
    def view_outputs(self) -> list[gr.components.Component]:
        """Everything that shows the viewed run (what `handlers.render` may update)."""
        return [self.status, self.verdict, self.repeat, self.counts_chart, self.recall_chart, self.loss_chart,
                self.test_loss_chart, self.accuracy_chart, self.groups, self.confusion]

    @property
    def controls(self) -> list[gr.components.Component]:
        return [self.start, self.stop, self.repeat]

    @property
    def runs_outputs(self) -> list[gr.components.Component]:
        return [self.runs_frame, self.run_choice, self.runs_problems, self.classify_run]

    @property
    def classify_outputs(self) -> list[gr.components.Component]:
        return [self.upload_preview, self.seen, self.classify_note, self.predictions, self.class_lean]


SAVE_PNG_HINT = """### Saving a chart as PNG
The charts are drawn as HTML, so they have no download menu of their own. To save one as a picture, use your
browser's screenshot tool: in Chrome or Edge, right-click the chart → *Inspect*, then right-click the highlighted
element → *Capture node screenshot*; in Firefox, right-click → *Take Screenshot* and click the chart. The numbers
behind the charts come with every run you download (Runs tab → *Download run*): `curves.csv` (training loss per
step) and `recall.csv` (per-class recall of each model), ready for a spreadsheet or your own plots."""


def build_layout(examples_dir: Path | None = None, results_dir: Path | None = None, storage_note: str = "") -> Layout:
    """Create the components inside the current `gr.Blocks` context. `storage_note` says where runs are kept
    and whether they survive a restart (shown on the Runs tab)."""
    quick = PRESETS[DEFAULT_PRESET]
    gr.HTML(STYLE + VERDICT_STYLE + HEADER)
    with gr.Tabs() as tabs:
        with gr.Tab("Train & compare", id="compare"):
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

        with gr.Tab("Classify", id="classify"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=300):
                    classify_run = gr.Dropdown([], label="Run (its models classify)", allow_custom_value=True, elem_id="classify-run")
                    upload = gr.File(label="Image (PNG, JPEG, WebP, GIF or BMP)", type="filepath", file_types=["image"], elem_id="upload")
                    if examples_dir and examples_dir.is_dir():
                        examples = sorted(str(path) for path in examples_dir.glob("*.png"))
                        if examples:
                            gr.Examples(examples, inputs=[upload], label="Examples (CIFAR-10 test images): pick one")
                    correct_prior = gr.Checkbox(False, label="Correct for the training prior (logit adjustment, τ = 1)",
                                                elem_id="correct-prior")
                    classify_button = gr.Button("Classify again", elem_id="classify-button")
                with gr.Column(scale=3, min_width=300):
                    with gr.Row():
                        upload_preview = gr.Image(label="Your image", type="pil", interactive=False, height=170,
                                                  elem_id="upload-preview", buttons=[])
                        seen = gr.Image(label="What the models see (32×32, enlarged)", type="pil", interactive=False,
                                        height=170, elem_id="seen", buttons=[])
                    classify_note = gr.HTML(elem_id="classify-note")
                    predictions = gr.HTML(elem_id="predictions")
                    class_lean = gr.HTML(elem_id="class-lean")

        with gr.Tab("Runs", id="runs"):
            if storage_note:
                gr.Markdown(storage_note, elem_id="storage-note")
            runs_frame = gr.Dataframe(label="Runs on disk", interactive=False, wrap=True, elem_id="runs-table")
            runs_problems = gr.Markdown()
            run_choice = gr.Dropdown([], multiselect=True, allow_custom_value=True, elem_id="run-choice",
                                     label="Runs: select one to open or delete, two or more to overlay them below")
            with gr.Row():
                open_button = gr.Button("Open in compare view", elem_id="open-run")
                delete_button = gr.Button("Delete run", variant="stop", elem_id="delete-run")
                refresh_button = gr.Button("Refresh", elem_id="refresh-runs")
            delete_note = gr.HTML(elem_id="delete-note")
            with gr.Row():
                download_button = gr.Button("Download run (.zip)", elem_id="download-run")
                upload_button = gr.UploadButton("Upload run (.zip)", file_types=[".zip"], file_count="single",
                                                type="filepath", elem_id="upload-run")
            run_zip = gr.File(label="Run zip: run.json, events.jsonl, weights, curves.csv, recall.csv", visible=False,
                              interactive=False, elem_id="run-zip")
            transfer_note = gr.HTML(elem_id="transfer-note")
            overlay_accuracy = gr.HTML(OVERLAY_HINT, elem_id="overlay-accuracy")
            overlay_recall = gr.HTML(elem_id="overlay-recall")

        with gr.Tab("Results", id="results"):
            gr.HTML(results_tab_html(results_dir), elem_id="results")

        with gr.Tab("About", id="about"):
            gr.Markdown(ABOUT + "\n" + SAVE_PNG_HINT)

    view = gr.State(None)
    drawn = gr.State(None)
    memory = gr.BrowserState(None, storage_key=BROWSER_STORAGE_KEY, secret=BROWSER_SECRET)
    visitor = gr.State(None)
    timer = gr.Timer(REFRESH_SECONDS)
    return Layout(
        tabs=tabs, link_note=link_note, preset=preset, preset_note=note, dataset=dataset, profile=profile, ratio=ratio, losses=losses,
        gamma=gamma, model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seeds=seeds,
        device=device, counts_chart=counts_chart, start=start, stop=stop, estimate=estimate,
        link_settings=link_settings, link_run=link_run, share_link=share_link, verdict=verdict, repeat=repeat, status=status,
        recall_chart=recall_chart, loss_chart=loss_chart, smoothing=smoothing, test_loss_chart=test_loss_chart,
        accuracy_chart=accuracy_chart, groups=groups, confusion=confusion, classify_run=classify_run, upload=upload,
        correct_prior=correct_prior, classify_button=classify_button, upload_preview=upload_preview, seen=seen,
        classify_note=classify_note, predictions=predictions, class_lean=class_lean, runs_frame=runs_frame,
        runs_problems=runs_problems, run_choice=run_choice, open_button=open_button, delete_button=delete_button,
        refresh_button=refresh_button, download_button=download_button, upload_button=upload_button, run_zip=run_zip,
        transfer_note=transfer_note, overlay_accuracy=overlay_accuracy, overlay_recall=overlay_recall, view=view,
        drawn=drawn, memory=memory, visitor=visitor, delete_note=delete_note, timer=timer,
    )


def results_tab_html(results_dir: Path | None) -> str:
    """The Results tab, built once at start-up: a grid file that cannot be drawn (a missing key, a wrong type)
    is listed as unreadable instead of stopping the app."""
    sets, problems = load_result_sets(results_dir)
    drawable = []
    for result in sets:
        try:
            result_set_html(result)
        except Exception as error:  # noqa: BLE001 - any malformed grid: listed, never fatal
            problems.append(f"{result.name}: cannot be drawn ({type(error).__name__}: {str(error)[:200]})")
            continue
        drawable.append(result)
    html = results_html(drawable, problems)
    if not drawable and problems:  # results_html lists problems only beside a drawable grid
        html += "".join(f'<div class="cc-sub">Unreadable: {escape(problem)}</div>' for problem in problems)
    return html
