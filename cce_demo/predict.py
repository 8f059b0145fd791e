"""Classify an uploaded image with a run's models: safe decoding of untrusted uploads, reduction to the
32x32 RGB image the models see, and top-k probabilities from every model of the run.
"""
from __future__ import annotations

import io
import re
import os
import threading
import warnings
from collections import OrderedDict
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .data import IMAGE_SIZE, to_model_input
from .datasets import dataset_spec
from .engine import test_logits
from .losses import log_prior
from .run_directory import RunRecord, load_models

# What to do about an image that is too large, in every such message.
SMALLER_COPY = ("The models see 32x32 pixels, so a smaller copy works as well: save it at about 1,000 px "
                "on the long side (or as a JPEG) and upload that.")
MAX_UPLOAD_PIXELS = 25_000_000  # 25 megapixels: a large photo passes, a decompression bomb does not
# At most this many pixels are ever decoded. What the models see is 32x32, so a large JPEG is decoded at 1/2,
# 1/4 or 1/8 of its size (`Image.draft`, in the decoder, at a fraction of the cost); the other formats cannot
# decode scaled and are refused above it. 4 MP (2048x2048) keeps the preview sharp and a decode in tens of ms.
MAX_DECODED_PIXELS = 4_200_000
# What the Classify tab promises (its label, the API's docs): Pillow's format ids. Nothing else is even
# identified: TIFF, DDS, JPEG 2000, PCX, SGI, ... have decoders that a public upload has no reason to reach.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
TOP_K = 5
MODEL_CACHE_SIZE = 8  # runs whose models stay loaded
T = TypeVar("T")


class InvalidImageError(ValueError):
    """An upload that cannot be used; the message is meant for the person who uploaded it."""


@dataclass(frozen=True)
class PreparedImage:
    pixels: np.ndarray  # uint8 (32, 32, 3): exactly what the models see
    notes: tuple[str, ...]  # what was done to get there (mode conversion, upscaling…)


def decoded_size(width: int, height: int, image_format: str | None) -> tuple[int, int] | None:
    """The size an upload is decoded at: itself when it is at most MAX_DECODED_PIXELS, a JPEG's smallest
    1/2, 1/4 or 1/8 scale still at least 32 pixels a side that fits, else None (refused). Pure."""
    if width * height <= MAX_DECODED_PIXELS:
        return width, height
    if image_format != "JPEG":
        return None
    for scale in (2, 4, 8):
        scaled = (-(-width // scale), -(-height // scale))  # the decoder rounds up
        if scaled[0] * scaled[1] <= MAX_DECODED_PIXELS and min(scaled) >= IMAGE_SIZE:
            return scaled
    return None


def open_upload(source: str | os.PathLike | bytes) -> Image.Image:
    """Decode an untrusted upload, refusing empty, non-image, truncated and oversized files and formats the
    app does not name with a clear message (never a stack trace). Never decodes more than
    MAX_DECODED_PIXELS: a large JPEG is decoded scaled down (`decoded_size`)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidImageError("No image was received. Upload a PNG, JPEG, WebP, GIF or BMP file.")
        size = path.stat().st_size
        if size == 0:
            raise InvalidImageError("The uploaded file is empty (0 bytes).")
        if size > MAX_UPLOAD_BYTES:
            raise InvalidImageError(f"The file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB. {SMALLER_COPY}")
        data = path.read_bytes()
    else:
        data = bytes(source)
        if not data:
            raise InvalidImageError("The uploaded file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its own limit; treat that as the refusal it should be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise InvalidImageError(
                    f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels); "
                    f"the limit is {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels. {SMALLER_COPY}"
                )
            target = decoded_size(width, height, image.format)
            if target is None:
                raise InvalidImageError(
                    f"The image is {width}x{height} ({width * height / 1e6:.1f} megapixels); a {image.format} is "
                    f"decoded up to {MAX_DECODED_PIXELS / 1e6:.0f} megapixels (a JPEG up to "
                    f"{MAX_UPLOAD_PIXELS / 1e6:.0f}). {SMALLER_COPY}"
                )
            if target != (width, height):
                image.draft(image.mode, target)  # JPEG: the decoder itself scales by 1/2, 1/4 or 1/8
            image.seek(0)  # animated formats: the first frame
            image.load()  # decode now, so truncation is caught here
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow names the size it refused ("Image size (N pixels) exceeds limit of M pixels ...").
        found = re.search(r"\((\d+) pixels\)", str(error))
        size_text = f" ({int(found.group(1)) / 1e6:.0f} megapixels)" if found else ""
        raise InvalidImageError(
            f"The image{size_text} is too large to decode safely: the limit is {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels. "
            f"{SMALLER_COPY}"
        ) from error
    except UnidentifiedImageError as error:
        raise InvalidImageError("This file is not an image in a format the app reads (PNG, JPEG, WebP, GIF or BMP).") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidImageError(f"The image is damaged or truncated and cannot be decoded ({error}).") from error
    return image


def to_rgb(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Any Pillow mode to 8-bit RGB: transparency over white, 16/32-bit and float greyscale rescaled (a plain
    convert would clip them to white), EXIF orientation applied."""
    notes = []
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or (mode == "I" and values.max(initial=0) > 255) else 255.0
        if mode == "F" and values.max(initial=0) <= 1.0:
            top = 1.0
        image = Image.fromarray(np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8), "L")
        notes.append(f"{mode} greyscale rescaled to 8 bits")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
        notes.append("transparency composited over white")
    if image.mode != "RGB":
        if image.mode not in ("L", "RGBA"):
            notes.append(f"converted from {image.mode} to RGB")
        image = image.convert("RGB")
    return image, notes


def prepare_image(image: Image.Image) -> PreparedImage:
    """Centre-crop to a square and resize to 32x32, as CIFAR images are."""
    rgb, notes = to_rgb(image)
    width, height = rgb.size
    if width < IMAGE_SIZE or height < IMAGE_SIZE:
        notes.append(f"the image is only {width}x{height}; it was enlarged to {IMAGE_SIZE}x{IMAGE_SIZE}")
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # reducing_gap: shrink large photos in two cheap passes with the same quality.
    fitted = rgb.resize(
        (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side), reducing_gap=3.0
    )
    return PreparedImage(np.asarray(fitted, dtype=np.uint8).copy(), tuple(notes))


def prior_adjusted_logits(logits: torch.Tensor, class_counts: Sequence[int], tau: float = 1.0) -> torch.Tensor:
    """Post-hoc logit adjustment (Menon et al. 2021, "Long-tail learning via logit adjustment"): logits − τ·log π,
    with π the training class prior (the counts, normalised). With τ = 1 the softmax becomes p(y|x)/π_y
    renormalised: the model's belief with the training set's imbalance divided out, as if trained on balanced
    data. Pure; `logits` is (..., K)."""
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() != logits.shape[-1]:
        raise ValueError(f"class_counts: expected {logits.shape[-1]} counts, got {counts.numel()}")
    if not bool((counts > 0).all()) or not bool(torch.isfinite(counts).all()):
        raise ValueError("class_counts: every class needs a positive training count for the prior correction")
    return (logits.double() - tau * log_prior(class_counts, torch.float64)).to(logits.dtype)


# One image through a small net is a few milliseconds of work: spread over torch's intra-op threads it only
# waits on them, and while a training job keeps the cores busy it took many times longer (measured on 2
# cores; the figures were not kept). Inference therefore runs on one dedicated thread with a single intra-op
# thread. torch's setting is global, but each thread fixes its own intra-op thread count at its first parallel
# operation, from the global value at that moment. So the inference thread starts with the global at 1 and runs
# a small convolution at once; the caller then puts the global back for everyone else.
_INFERENCE_THREAD: ThreadPoolExecutor | None = None
_INFERENCE_LOCK = threading.Lock()


class InferenceStopped(ValueError):
    """A classification cut off by the app's shutdown; a ValueError, so that every handler that shows a user
    error shows this one too, instead of a traceback."""


def _single_threaded() -> None:
    torch.set_num_threads(1)
    with torch.inference_mode():  # a first parallel operation: this thread's count is fixed now, at 1
        torch.nn.functional.conv2d(torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 3, 3))


def run_single_threaded(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on the inference thread (one intra-op thread); returns its result or raises."""
    global _INFERENCE_THREAD
    with _INFERENCE_LOCK:
        if _INFERENCE_THREAD is None:
            default = torch.get_num_threads()
            _INFERENCE_THREAD = ThreadPoolExecutor(1, thread_name_prefix="cce-classify", initializer=_single_threaded)
            _INFERENCE_THREAD.submit(lambda: None).result()
            torch.set_num_threads(default)
        thread = _INFERENCE_THREAD  # this request's thread, even if a shutdown clears the global meanwhile
    try:
        return thread.submit(function, *args).result()
    except (RuntimeError, CancelledError) as error:
        if thread is _INFERENCE_THREAD:  # not a shutdown: the function itself raised
            raise
        raise InferenceStopped("the app is shutting down: classify again once it is back") from error


def stop_inference_thread() -> None:
    """At shutdown: the inference thread takes no more work, a request waiting for it is cancelled, and the
    thread ends after the image under way (a few milliseconds). A later request starts a fresh thread."""
    global _INFERENCE_THREAD
    with _INFERENCE_LOCK:
        thread, _INFERENCE_THREAD = _INFERENCE_THREAD, None
    if thread is not None:
        thread.shutdown(wait=False, cancel_futures=True)


def class_probabilities(
    models: dict[str, torch.nn.Module], pixels: np.ndarray, dataset: str,
    prior_counts: Sequence[int] | None = None, tau: float = 1.0, flip: bool = False,
) -> dict[str, torch.Tensor]:
    """Each model's softmax over all classes for one 32x32 image; with `prior_counts`, after the post-hoc
    prior correction (`prior_adjusted_logits`); with `flip`, from the mean logits of the image and its mirror
    image, as the engine scores a run trained with flip test-time augmentation."""
    return run_single_threaded(_class_probabilities, models, pixels, dataset, prior_counts, tau, flip)


@torch.inference_mode()
def _class_probabilities(
    models: dict[str, torch.nn.Module], pixels: np.ndarray, dataset: str, prior_counts: Sequence[int] | None, tau: float,
    flip: bool,
) -> dict[str, torch.Tensor]:
    batch = to_model_input(torch.from_numpy(pixels)[None], *dataset_spec(dataset).normalisation)
    result = {}
    for loss, model in models.items():
        logits = test_logits(model, batch, flip)[0]
        if prior_counts is not None:
            logits = prior_adjusted_logits(logits, prior_counts, tau)
        result[loss] = torch.softmax(logits, dim=0)
    return result


def top_k(probabilities: torch.Tensor, class_names: Sequence[str], k: int = TOP_K) -> list[tuple[str, float]]:
    values, indices = probabilities.topk(min(k, len(class_names)))
    return [(class_names[index], float(value)) for value, index in zip(values.tolist(), indices.tolist())]


def top_k_probabilities(
    models: dict[str, torch.nn.Module], pixels: np.ndarray, dataset: str, class_names: Sequence[str], k: int = TOP_K,
    prior_counts: Sequence[int] | None = None, flip: bool = False,
) -> dict[str, list[tuple[str, float]]]:
    """Each model's k most probable classes for one 32x32 image, highest first."""
    probabilities = class_probabilities(models, pixels, dataset, prior_counts, flip=flip)
    return {loss: top_k(values, class_names, k) for loss, values in probabilities.items()}


class ModelCache:
    """Loaded models of recently used runs, keyed by run directory and the weights' modification time."""

    def __init__(self, size: int = MODEL_CACHE_SIZE) -> None:
        self.size = size
        self._models: OrderedDict[tuple[str, float], dict[str, torch.nn.Module]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, record: RunRecord) -> dict[str, torch.nn.Module]:
        stamp = max((path.stat().st_mtime for path in record.run_dir.glob("*.safetensors")), default=0.0)
        key = (str(record.run_dir.resolve()), stamp)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        models = load_models(record)  # outside the lock: loading must not block other runs' lookups
        with self._lock:
            self._models[key] = models
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return models


def classify_prepared(
    prepared: PreparedImage, record: RunRecord, cache: ModelCache, k: int = TOP_K, correct_prior: bool = False,
) -> dict[str, list[tuple[str, float]]]:
    """Top-k classes of every model of `record` for a prepared image; `correct_prior` divides out the run's
    training class prior (post-hoc logit adjustment, τ = 1)."""
    models = cache.get(record)
    class_names = record.class_names or tuple(str(index) for index in range(record.config.num_classes))
    prior = None
    if correct_prior:
        if len(record.class_counts) != len(class_names):
            raise ValueError("this run did not record its training class counts, so its prior cannot be corrected")
        prior = record.class_counts
    return top_k_probabilities(models, prepared.pixels, record.config.dataset, class_names, k, prior,
                               flip=record.config.test_time_flip)


def classify_upload(
    source: str | os.PathLike | bytes, record: RunRecord, cache: ModelCache, k: int = TOP_K, correct_prior: bool = False,
) -> tuple[PreparedImage, dict[str, list[tuple[str, float]]]]:
    """Decode, prepare and classify one upload with every model of `record`."""
    prepared = prepare_image(open_upload(source))
    return prepared, classify_prepared(prepared, record, cache, k, correct_prior)
