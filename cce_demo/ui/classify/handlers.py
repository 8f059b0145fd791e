"""Handlers of the Classify tab: classify as soon as an image arrives, show the upload beside the 32×32 image
the models see, each model's top 5 in its loss colour, and why the models lean to head classes (the run's
class counts, each model's balanced accuracy, and an optional correction for the training prior).

Errors are shown in the tab itself, with the old results cleared; they are never raised here, because a
raised error marks every output with an "Error" badge. The /classify API endpoint raises them (api.py).
"""
from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from ...predict import InvalidImageError, PreparedImage, classify_prepared, open_upload, prepare_image, to_rgb
from ...run_directory import RunCorruptError, RunRecord
from ..catalog import final_results
from ..context import UiContext, Update
from ..kit.admission import RefusedError
from ..kit.charts import Bars, RowLabel, bar_rows, escape, head_to_tail
from ..kit.errors import note_user_error
from ..kit.identity import address_of
from ..kit.names import colour, display_name

PREVIEW_SIZE = 256  # the upload preview's longest side, in pixels
SEEN_SIZE = 160  # the 32×32 image enlarged (nearest neighbour, so its pixels stay visible)


def classify_file(ctx: UiContext, file_path: Any, run_id: Any, correct_prior: bool = False
                  ) -> tuple[RunRecord, Image.Image, PreparedImage, dict[str, list[tuple[str, float]]]]:
    """Shared by the tab and the API. Raises ValueError (InvalidImageError included) or RunCorruptError with a
    message meant for the person."""
    if not run_id:
        raise ValueError("Choose a run to classify with (train one, or use the shipped run).")
    if not file_path:
        raise InvalidImageError("Upload an image (PNG, JPEG, WebP, GIF or BMP) or pick an example.")
    record = ctx.app.catalog.find(run_id)
    image = open_upload(file_path)
    prepared = prepare_image(image)
    predictions = classify_prepared(prepared, record, ctx.app.model_cache, correct_prior=correct_prior)
    return record, image, prepared, predictions


def preview_of(image: Image.Image) -> Image.Image:
    """The upload as the person sent it, at most PREVIEW_SIZE pixels; a tiny image is enlarged (nearest
    neighbour) so it can be seen."""
    rgb, _ = to_rgb(image)
    rgb = rgb.copy()
    rgb.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    factor = SEEN_SIZE // max(rgb.size)
    if factor > 1:
        rgb = rgb.resize((rgb.width * factor, rgb.height * factor), Image.Resampling.NEAREST)
    return rgb


def balanced_accuracies(record: RunRecord) -> dict[str, tuple[float | None, float | None]]:
    """Each model's balanced accuracy on the test set, as trained and with the prior correction (None when
    not known), for the seed whose models classify (the first saved)."""
    evaluations = final_results(record).evaluations
    if not evaluations:
        return {}
    first = evaluations[sorted(evaluations, key=lambda seed: int(seed) if str(seed).isdigit() else 0)[0]]
    result = {}
    for loss, value in first.items():
        corrected = value.prior_corrected.balanced_accuracy if value.prior_corrected is not None else None
        result[loss] = (value.balanced_accuracy, corrected)
    return result


def accuracy_text(plain: float | None, corrected: float | None) -> str:
    if not isinstance(plain, (int, float)):
        return ""
    text = f"balanced accuracy {100 * plain:.1f} % on the test set"
    if isinstance(corrected, (int, float)):
        text += f" ({100 * corrected:.1f} % prior corrected)"
    return text


def predictions_html(record: RunRecord, predictions: dict[str, list[tuple[str, float]]], corrected: bool) -> str:
    """One card per model (#prediction-0, #prediction-1, …) in its loss colour, with its balanced accuracy."""
    accuracies = balanced_accuracies(record)
    cards = []
    for index, loss in enumerate(loss for loss in record.config.losses if loss in predictions):
        hue = colour(loss)
        rows = []
        for name, probability in predictions[loss]:
            rows.append(f'<div class="cc-bar" title="{escape(name)}: {100 * probability:.1f} %">'
                        f'<span style="flex:0 0 6.5em;font-size:12px">{escape(name)}</span>'
                        f'<span class="cc-track" style="background:none"><i style="width:{100 * probability:.1f}%;background:{hue}"></i></span>'
                        f'<b style="flex-basis:3.2em">{100 * probability:.1f}</b></div>')
        summary = accuracy_text(*accuracies.get(loss, (None, None)))
        footer = "top 5, probability in %" + (", <b>after the prior correction</b>" if corrected else "")
        cards.append(
            f'<div id="prediction-{index}" class="cc-chart" style="flex:1 1 260px;border-top:4px solid {hue}">'
            f'<div class="cc-title" style="color:{hue}">{escape(display_name(loss))}</div>'
            f'<div class="cc-sub">{escape(summary)}</div>'
            f'<div style="display:grid;row-gap:6px">{"".join(rows)}</div><div class="cc-sub" style="margin-top:4px">{footer}</div></div>'
        )
    return f'<div style="display:flex;flex-wrap:wrap;gap:12px">{"".join(cards)}</div>'


def lean_html(record: RunRecord, predictions: dict[str, list[tuple[str, float]]], corrected: bool) -> str:
    """Why the models lean to head classes: the run's training counts and what the correction does."""
    names, counts = record.class_names, record.class_counts
    if not names or len(counts) != len(names):
        return ""
    order = head_to_tail(counts)
    head, tail = order[0], order[-1]
    explanation = (
        f"This run trained on {counts[head]:,} <b>{escape(names[head])}</b> images but only {counts[tail]:,} "
        f"<b>{escape(names[tail])}</b> images (ratio {record.config.imbalance_ratio:g}). A model that is unsure falls back "
        "on the classes it saw most, so photos unlike CIFAR's 32×32 pictures often come out as a head class."
    )
    if corrected:
        explanation += (" <b>Prior corrected:</b> each model's logits minus log of the training share of each class "
                        "(post-hoc logit adjustment, Menon et al. 2021, τ = 1), as if it had trained on balanced data.")
    else:
        explanation += (" Tick <i>Correct for the training prior</i> to divide that lean out (post-hoc logit "
                        "adjustment, Menon et al. 2021).")
    chart = bar_rows(
        title="Training images per class in this run", rows=[RowLabel(names[index]) for index in order],
        bars=[Bars("training images", "#64748b", [counts[index] for index in order])], maximum=max(counts) or 1,
        value_text=lambda v: "" if v is None else f"{v:,.0f}", axis=((0.0, "0"), (1.0, f"{max(counts):,}")),
        mark_zero=False, max_height=300, wide_numbers=True,
    )
    return f'<div class="cc-card" style="margin-top:8px">{explanation}</div><div style="margin-top:8px">{chart}</div>'


def cleared(ctx: UiContext, message: str = "", error: bool = False) -> Update:
    """Empty results with a note (an error in red): nothing from an earlier image stays on screen."""
    ui = ctx.ui
    note = ""
    if message:
        style = "color:#b91c1c;border-color:#b91c1c" if error else ""
        note = f'<div class="cc-card" style="{style}">{escape(message)}</div>'
    return {ui.classify.upload_preview: None, ui.classify.seen: None, ui.classify.classify_note: note, ui.classify.predictions: "", ui.classify.class_lean: ""}


def on_classify(ctx: UiContext, file_path: Any, run_id: Any, correct_prior: bool, request: gr.Request = None) -> Update:
    """Classify the upload (on upload, on an example, on a run or toggle change, or on the button); one at a
    time per visitor address in public mode."""
    if not file_path:
        return cleared(ctx, "Upload an image or pick an example: it is classified as soon as it arrives.")
    try:
        with ctx.app.admission.running(address_of(request), "classify"):
            record, image, prepared, predictions = classify_file(ctx, file_path, run_id, correct_prior)
    except (ValueError, RunCorruptError, RefusedError) as error:
        return cleared(ctx, note_user_error(str(error), "classify"), error=True)
    ui = ctx.ui
    notes = "The models see this 32×32 image (centre square, resized)."
    if prepared.notes:
        notes += " Note: " + "; ".join(prepared.notes) + "."
    seen = Image.fromarray(prepared.pixels).resize((SEEN_SIZE, SEEN_SIZE), Image.Resampling.NEAREST)
    return {
        ui.classify.upload_preview: preview_of(image), ui.classify.seen: seen,
        ui.classify.classify_note: f'<div class="cc-sub" style="font-size:13px">{escape(notes)}</div>',
        ui.classify.predictions: predictions_html(record, predictions, correct_prior),
        ui.classify.class_lean: lean_html(record, predictions, correct_prior),
    }


