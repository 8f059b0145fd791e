import itertools
import math

import pytest
import torch

from cce_demo import metrics


def test_confusion_matrix_and_recalls_against_a_loop():
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 5, (200,), generator=generator)
    predictions = torch.randint(0, 5, (200,), generator=generator)
    confusion = metrics.confusion_matrix(targets, predictions, 5)
    expected = torch.zeros(5, 5, dtype=torch.int64)
    for t, p in zip(targets, predictions):
        expected[t, p] += 1
    assert torch.equal(confusion, expected)
    recall = metrics.per_class_recall(confusion)
    for index in range(5):
        mask = targets == index
        assert float(recall[index]) == pytest.approx(float((predictions[mask] == index).double().mean()))
    assert metrics.balanced_accuracy(confusion) == pytest.approx(float(recall.mean()))
    assert metrics.accuracy(confusion) == pytest.approx(float((targets == predictions).double().mean()))


def test_balanced_accuracy_ignores_classes_absent_from_the_test_set():
    confusion = metrics.confusion_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), 3)
    assert math.isnan(float(metrics.per_class_recall(confusion)[2]))
    assert metrics.balanced_accuracy(confusion) == pytest.approx(0.75)


def test_groups_for_cifar10_long_tail():
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert metrics.class_groups(counts) == {"head": [0, 1, 2], "medium": [3, 4, 5, 6], "tail": [7, 8, 9]}
    # Groups follow training counts, not class index.
    assert metrics.class_groups(list(reversed(counts)))["head"] == [7, 8, 9]
    # Equal counts share a group: the step profile has a frequent half and a rare half, no medium.
    assert metrics.class_groups([5000] * 5 + [50] * 5) == {"head": [0, 1, 2, 3, 4], "medium": [], "tail": [5, 6, 7, 8, 9]}
    recall = [1.0] * 3 + [0.5] * 4 + [0.0] * 3
    assert metrics.group_recall(recall, counts) == {"head": 1.0, "medium": 0.5, "tail": 0.0}


def brute_force_two_sided(b, c):
    n = b + c
    observed = math.comb(n, b) / 2**n
    # Sum the probabilities of outcomes at least as extreme (no more likely) than the observed one.
    return min(1.0, sum(math.comb(n, k) / 2**n for k in range(n + 1) if math.comb(n, k) / 2**n <= observed * (1 + 1e-12)))


@pytest.mark.parametrize("b, c", list(itertools.product([0, 1, 3, 10], [0, 2, 7, 25])))
def test_exact_mcnemar_against_brute_force(b, c):
    assert metrics.binomial_two_sided_p(b, b + c) == pytest.approx(brute_force_two_sided(b, c), rel=1e-9)


def test_mcnemar_counts_discordant_pairs():
    a = torch.tensor([True, True, False, False, True])
    b = torch.tensor([True, False, True, False, False])
    result = metrics.mcnemar(a, b)
    assert (result.only_a_correct, result.only_b_correct, result.discordant) == (2, 1, 3)
    assert metrics.mcnemar(a, a).p_value == 1.0
    assert metrics.binomial_two_sided_p(0, 10) == pytest.approx(2 / 1024)


def test_mcnemar_is_exact_for_large_tests():
    # 10,000 discordant pairs split 4,800 / 5,200: floats would underflow in 2**-10000.
    p = metrics.binomial_two_sided_p(4800, 10000)
    assert 0 < p < 1e-4


def test_per_class_mcnemar():
    targets = torch.tensor([0, 0, 0, 1, 1, 1])
    a = torch.tensor([0, 0, 0, 0, 0, 0])
    b = torch.tensor([1, 1, 1, 1, 1, 1])
    per_class = metrics.mcnemar_per_class(targets, a, b, 2)
    assert (per_class[0].only_a_correct, per_class[0].only_b_correct) == (3, 0)
    assert (per_class[1].only_a_correct, per_class[1].only_b_correct) == (0, 3)


def test_seed_summary_interval():
    single = metrics.summarise_differences([-0.03])
    assert single.mean == -0.03 and single.interval is None
    summary = metrics.summarise_differences([-0.02, -0.04, -0.03])
    standard_error = math.sqrt(0.0001 / 3)
    assert summary.mean == pytest.approx(-0.03)
    assert summary.interval == pytest.approx((-0.03 - 4.303 * standard_error, -0.03 + 4.303 * standard_error))
    assert metrics.t_critical_95(500) == 1.980 and metrics.t_critical_95(22) == 2.086


def test_many_medium_few_by_training_count():
    from cce_demo.metrics import count_groups

    # CIFAR-100-LT ratio 100 ends at 5 images; the thresholds are > 100, 20-100, < 20.
    assert count_groups([500, 101, 100, 20, 19, 5]) == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    assert count_groups([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])["few"] == []
