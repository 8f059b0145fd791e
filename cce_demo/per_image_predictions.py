"""The per-image answers of a run's final evaluation: for every test image, each model's predicted class and
its confidence. McNemar's test counts the images only one model of a pair got right; the disagreement gallery
shows exactly those images. Stored beside the weights as one small safetensors file per seed
(`predictions-seed<N>.safetensors`, run_directory.py), so a finished, shipped or imported run can show them
without the test set's labels being recomputed.

Pure: the record, its flat file form, and the discordant sets of a pair.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

import torch

PREDICTIONS_FORMAT = "1"
LABELS_KEY = "labels"


class PredictionsError(ValueError):
    """A predictions file that does not hold what it should; the message says what."""


@dataclass(frozen=True)
class PerImagePredictions:
    """One model's answer for every image of the split it scored, in the split's order: the predicted class and
    its softmax probability (of the logits the evaluation scored: with flip TTA, the mean of the image's and its
    mirror's)."""

    predicted: torch.Tensor  # int64, (N,)
    confidence: torch.Tensor  # float32, (N,), in [0, 1]

    def to_cpu(self) -> "PerImagePredictions":
        return PerImagePredictions(self.predicted.detach().cpu(), self.confidence.detach().cpu())


def to_tensors(labels: torch.Tensor, predictions: Mapping[str, PerImagePredictions], seed: int,
               num_classes: int) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a predictions file: classes as int16, confidences as float32 (a 10,000-image
    test set and two models: about 140 kB)."""
    tensors = {LABELS_KEY: labels.to(torch.int16).contiguous()}
    for loss, answer in predictions.items():
        tensors[f"{loss}.predicted"] = answer.predicted.to(torch.int16).contiguous()
        tensors[f"{loss}.confidence"] = answer.confidence.float().contiguous()
    metadata = {"predictions_format": PREDICTIONS_FORMAT, "seed": str(seed), "losses": json.dumps(list(predictions)),
                "num_classes": str(num_classes),
                "what": "the final evaluation on the whole test split, in its order; confidence is the softmax "
                        "probability of the predicted class"}
    return tensors, metadata


def from_tensors(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> tuple[torch.Tensor, dict[str, PerImagePredictions]]:
    """(labels, loss -> answers), checked: equal lengths, classes within range, confidences in [0, 1]."""
    if metadata.get("predictions_format") != PREDICTIONS_FORMAT:
        raise PredictionsError(f"not a predictions file of format {PREDICTIONS_FORMAT} (found {metadata.get('predictions_format')!r})")
    try:
        losses, num_classes = json.loads(metadata["losses"]), int(metadata["num_classes"])
        labels = tensors[LABELS_KEY].long()
        answers = {loss: PerImagePredictions(tensors[f"{loss}.predicted"].long(), tensors[f"{loss}.confidence"].float())
                   for loss in losses}
    except (KeyError, ValueError, TypeError) as error:
        raise PredictionsError(f"a malformed predictions file ({type(error).__name__}: {error})") from None
    for name, values in (("labels", labels), *((f"{loss}.predicted", answer.predicted) for loss, answer in answers.items())):
        if values.ndim != 1 or len(values) != len(labels):
            raise PredictionsError(f"{name}: expected {len(labels)} values, got shape {tuple(values.shape)}")
        if len(values) and (int(values.min()) < 0 or int(values.max()) >= num_classes):
            raise PredictionsError(f"{name}: classes must lie in 0..{num_classes - 1}")
    for loss, answer in answers.items():
        confidence = answer.confidence
        if confidence.shape != labels.shape or not bool(((confidence >= 0) & (confidence <= 1)).all()):
            raise PredictionsError(f"{loss}.confidence: expected {len(labels)} probabilities in [0, 1]")
    return labels, answers


@dataclass(frozen=True)
class Discordant:
    """The test images that exactly one model of a pair classified correctly: McNemar's discordant pairs."""

    only_a: torch.Tensor  # image indices, A right and B wrong
    only_b: torch.Tensor  # image indices, B right and A wrong


def discordant(labels: torch.Tensor, a: PerImagePredictions, b: PerImagePredictions) -> Discordant:
    right_a, right_b = a.predicted == labels, b.predicted == labels
    return Discordant(torch.nonzero(right_a & ~right_b).flatten(), torch.nonzero(~right_a & right_b).flatten())


@dataclass(frozen=True)
class GalleryImage:
    """One test image only one model of the pair got right, with both models' answers."""

    index: int  # in the test split's order
    label: int
    predicted_a: int
    confidence_a: float
    predicted_b: int
    confidence_b: float

    @property
    def confidence_gap(self) -> float:
        """How much surer the right model was of its (right) answer than the wrong one of its own."""
        return abs(self.confidence_a - self.confidence_b)


def disagreement(labels: torch.Tensor, a: PerImagePredictions, b: PerImagePredictions, class_counts: tuple[int, ...],
                 only_class: int | None = None) -> tuple[list[GalleryImage], list[GalleryImage]]:
    """The images only A got right and those only B got right, grouped by true class from the most to the fewest
    training images (head → tail), within a class by the confidence gap (largest first). Without `only_class`
    the lengths are McNemar's discordant counts exactly."""
    order = {klass: rank for rank, klass in enumerate(sorted(range(len(class_counts)), key=lambda k: (-class_counts[k], k)))}
    pair = discordant(labels, a, b)

    def listed(indices: torch.Tensor) -> list[GalleryImage]:
        images = [GalleryImage(int(index), int(labels[index]), int(a.predicted[index]), float(a.confidence[index]),
                               int(b.predicted[index]), float(b.confidence[index])) for index in indices.tolist()]
        if only_class is not None:
            images = [image for image in images if image.label == only_class]
        return sorted(images, key=lambda image: (order[image.label], -image.confidence_gap, image.index))

    return listed(pair.only_a), listed(pair.only_b)
