"""The disagreement lists: exactly McNemar's discordant images, grouped head → tail, then by confidence gap
(oracle: a hand-made set of six images)."""
import pytest
import torch

from cce_demo.metrics import mcnemar
from cce_demo.per_image_predictions import PredictionsError, PerImagePredictions, disagreement, from_tensors, to_tensors

LABELS = torch.tensor([0, 1, 1, 2, 0, 2])
A = PerImagePredictions(torch.tensor([0, 1, 0, 2, 0, 1]), torch.tensor([0.9, 0.8, 0.6, 0.7, 0.5, 0.4]))
B = PerImagePredictions(torch.tensor([1, 1, 1, 0, 0, 2]), torch.tensor([0.3, 0.9, 0.55, 0.6, 0.5, 0.95]))
COUNTS = (5, 50, 20)  # class 1 is the head, then 2, then 0


def test_only_one_right_lists_match_mcnemar_and_run_head_to_tail():
    only_a, only_b = disagreement(LABELS, A, B, COUNTS)
    test = mcnemar(A.predicted == LABELS, B.predicted == LABELS)
    assert (len(only_a), len(only_b)) == (test.only_a_correct, test.only_b_correct) == (2, 2)
    assert [image.index for image in only_a] == [3, 0]  # class 2 (more images) before class 0
    assert [image.index for image in only_b] == [2, 5]  # class 1 before class 2
    assert only_a[1].confidence_gap == pytest.approx(0.6)
    only_a, only_b = disagreement(LABELS, A, B, COUNTS, only_class=2)
    assert [image.index for image in only_a] == [3] and [image.index for image in only_b] == [5]


def test_the_file_form_round_trips_and_refuses_what_does_not_fit():
    tensors, metadata = to_tensors(LABELS, {"ce": A, "cce": B}, seed=0, num_classes=3)
    labels, answers = from_tensors(tensors, metadata)
    assert torch.equal(labels, LABELS) and torch.equal(answers["cce"].predicted, B.predicted)
    with pytest.raises(PredictionsError, match="classes must lie in 0..2"):
        from_tensors({**tensors, "ce.predicted": torch.tensor([0, 1, 0, 2, 0, 3], dtype=torch.int16)}, metadata)
    with pytest.raises(PredictionsError, match="probabilities in"):
        from_tensors({**tensors, "ce.confidence": torch.full((6,), 1.5)}, metadata)
    with pytest.raises(PredictionsError, match="format"):
        from_tensors(tensors, {**metadata, "predictions_format": "9"})
