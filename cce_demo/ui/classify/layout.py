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


def build(examples_dir: Path | None = None) -> ClassifyLayout:
    """Create the tab's components inside the current `gr.Tab`; `examples_dir` holds the example images."""
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
    return ClassifyLayout(classify_run, upload, correct_prior, classify_button, upload_preview, seen, classify_note,
                          predictions, class_lean)
