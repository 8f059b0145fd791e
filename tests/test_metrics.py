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
    assert summary.interval == pytest.approx((-0.03 - 4.302653 * standard_error, -0.03 + 4.302653 * standard_error))
    assert metrics.t_critical_95(500) == 1.979931 and metrics.t_critical_95(22) == 2.085964


def test_many_medium_few_by_training_count():
    from cce_demo.metrics import count_groups

    # CIFAR-100-LT ratio 100 ends at 5 images; the thresholds are > 100, 20-100, < 20.
    assert count_groups([500, 101, 100, 20, 19, 5]) == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    assert count_groups([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])["few"] == []


# ---------------------------------------------------------------- t-test p-values and Holm (issue 19)

from cce_demo.metrics import clip_interval, holm, paired_t_p_value, regularised_incomplete_beta  # noqa: E402


def t_two_sided_p_by_integration(t, df, steps=20000):
    """2 * P(T > |t|) by Simpson's rule on the Student-t density, substituting u = atan(x) to reach infinity."""
    constant = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    low, high = math.atan(abs(t)), math.pi / 2

    def integrand(u):
        x = math.tan(u)
        if u >= high:  # the limit x -> infinity: density * sec^2 ~ x^(1 - df), a constant only for df = 1
            return constant * df if df == 1 else 0.0
        return constant * (1 + x * x / df) ** (-(df + 1) / 2) / math.cos(u) ** 2

    width = (high - low) / steps
    total = integrand(low) + integrand(high)
    total += sum((4 if index % 2 else 2) * integrand(low + index * width) for index in range(1, steps))
    return 2 * total * width / 3


@pytest.mark.parametrize("values", [[0.01, 0.02, 0.015], [-0.02, 0.01, 0.005], [0.1, -0.3], [0.01, 0.012, 0.008, 0.02, 0.0]])
def test_paired_t_p_value_against_the_density(values):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    expected = t_two_sided_p_by_integration(mean / (sd / math.sqrt(n)), n - 1)
    assert paired_t_p_value(values) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert paired_t_p_value([0.5]) is None


def test_incomplete_beta_known_values():
    assert regularised_incomplete_beta(0.5, 2.0, 2.0) == pytest.approx(0.5)
    assert regularised_incomplete_beta(0.3, 1.0, 1.0) == pytest.approx(0.3)  # uniform
    assert regularised_incomplete_beta(0.2, 2.0, 1.0) == pytest.approx(0.04)  # x^2


def test_holm_step_down_by_hand():
    # m = 4: 0.01 * 4 = 0.04, 0.02 * 3 = 0.06, 0.03 * 2 = 0.06 (monotone), 0.5 * 1 = 0.5
    result = holm({"a": 0.02, "b": 0.01, "c": 0.5, "d": 0.03})
    assert [round(result[k]["adjusted_p"], 10) for k in "bacd"] == [0.04, 0.06, 0.5, 0.06]
    assert [result[k]["survives"] for k in "bacd"] == [True, False, False, False]


def test_clip_interval():
    assert clip_interval(-0.1, 0.3, (0.0, 1.0)) == (0.0, 0.3, True)
    assert clip_interval(0.1, 0.3, (0.0, 1.0)) == (0.1, 0.3, False)
