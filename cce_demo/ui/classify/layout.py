"""The Classify tab's components: a run and an image in, each model's top classes out."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr


@dataclass(frozen=True)
class ClassifyLayout:
    classify_run: gr.Dropdown
    upload: gr.File
    correct_prior: gr.Checkbox
    classify_button: gr.Button
    upload_preview: gr.Image
    seen: gr.Image
    classify_note: gr.HTML
    predictions: gr.HTML
    class_lean: gr.HTML

    @property
    def outputs(self) -> list[gr.components.Component]:
        return [self.upload_preview, self.seen, self.classify_note, self.predictions, self.class_lean]


def example_labels(count: int) -> list[str]:
    """The example chips' names: numbers only, never the class."""
    return [f"Example {number}" for number in range(1, count + 1)]


def build(examples_dir: Path | None = None) -> ClassifyLayout:
    """Create the tab's components inside the current `gr.Tab`; `examples_dir` holds the example images."""
    # The image and the results share one column, results directly under the image: stacked on a phone, the
    # old two columns put the predictions about 1,150 px below the example chips.
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            gr.HTML('<h2 class="cc-h2">Classify an image</h2>')
            upload = gr.File(label="Image (PNG, JPEG, WebP, GIF or BMP)", type="filepath", file_types=["image"],
                             elem_id="upload", height=120)
            if examples_dir and examples_dir.is_dir():
                examples = sorted(str(path) for path in examples_dir.glob("*.png"))
                if examples:
                    # Numbered chips and numbered files (the file box shows the name): a class in either would give the
                    # answer away. examples/labels.json keeps the true classes.
                    gr.Examples(examples, inputs=[upload], label="Examples (CIFAR-10 test images): pick one",
                                example_labels=example_labels(len(examples)))
            with gr.Row():
                upload_preview = gr.Image(label="Your image", type="pil", interactive=False, height=170,
                                          elem_id="upload-preview", buttons=[], min_width=140,
                                          alt_text="The image you gave")
                seen = gr.Image(label="What the models see (32×32, enlarged)", type="pil", interactive=False,
                                height=170, elem_id="seen", buttons=[], min_width=140,
                                alt_text="The same image at 32×32 pixels, as the models see it, enlarged")
            classify_note = gr.HTML(elem_id="classify-note")
            predictions = gr.HTML(elem_id="predictions")
        with gr.Column(scale=2, min_width=300):
            gr.HTML('<h2 class="cc-h2">Model and correction</h2>')
            classify_run = gr.Dropdown([], label="Run (its models classify)", allow_custom_value=True, elem_id="classify-run")
            correct_prior = gr.Checkbox(False, label="Correct for the training prior (logit adjustment, τ = 1)",
                                        elem_id="correct-prior")
            classify_button = gr.Button("Classify again", elem_id="classify-button")
            class_lean = gr.HTML(elem_id="class-lean")
    return ClassifyLayout(classify_run, upload, correct_prior, classify_button, upload_preview, seen, classify_note,
                          predictions, class_lean)
