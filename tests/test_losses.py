import math

import pytest
import torch
import torch.nn.functional as F

from cce_demo.losses import DISPLAY_NAMES, LOSSES, complement_entropy, get_loss, max_complement_entropy


class SeedCCE(torch.nn.Module):
    """A plain transcription of the seed README's CCE (device fixed to the CPU)."""

    def __init__(self, balancing_factor=1):
        super().__init__()
        self.nll_loss = torch.nn.NLLLoss()
        self.balancing_factor = balancing_factor

    def forward(self, yHat, y):  # noqa: N803 - the seed's names
        batch_size = len(y)
        cross_entropy = self.nll_loss(F.log_softmax(yHat, dim=1), y)
        yHat = F.softmax(yHat, dim=1)
        Yg = yHat.gather(dim=1, index=torch.unsqueeze(y, 1))
        Yg_ = (1 - Yg) + 1e-7
        Px = yHat / Yg_.view(len(yHat), 1)
        Px_log = torch.log(Px + 1e-10)
        y_zerohot = torch.ones(batch_size, yHat.shape[1]).scatter_(1, y.view(batch_size, 1).data.cpu(), 0)
        output = Px * Px_log * y_zerohot.to(device="cpu")
        complement_entropy = torch.sum(output) / (float(batch_size) * float(yHat.shape[1]))
        return cross_entropy - self.balancing_factor * complement_entropy


def random_batch(num_classes, batch=64, scale=3.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(batch, num_classes, generator=generator)
    targets = torch.randint(0, num_classes, (batch,), generator=generator)
    return logits, targets


def complement_entropy_loop(logits, targets):
    probabilities = torch.softmax(logits.double(), dim=1)
    values = []
    for row, target in zip(probabilities, targets):
        rest = 1 - row[target]
        total = 0.0
        for index, p in enumerate(row):
            if index != target:
                q = p / rest
                total -= float(q * torch.log(q))
        values.append(total)
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("num_classes", [10, 100])
def test_reference_form_matches_seed_transcription(num_classes):
    logits, targets = random_batch(num_classes)
    for factor in (1.0, 0.5):
        ours = get_loss("cce_reference", num_classes, balancing_factor=factor)(logits, targets)
        seed = SeedCCE(factor)(logits, targets)
        assert torch.equal(ours, seed), (ours, seed)  # same operations in the same order: bit for bit


def test_paper_form_with_zero_gamma_is_cross_entropy():
    logits, targets = random_batch(10)
    assert torch.allclose(get_loss("cce", 10, gamma=0.0)(logits, targets), F.cross_entropy(logits, targets))


@pytest.mark.parametrize("num_classes", [3, 10, 100])
def test_complement_entropy_matches_explicit_loop(num_classes):
    logits, targets = random_batch(num_classes, batch=16)
    assert torch.allclose(complement_entropy(logits, targets).double(), complement_entropy_loop(logits, targets), atol=1e-5)
    assert complement_entropy(logits, targets).max() <= max_complement_entropy(num_classes) + 1e-5


def test_paper_form_value_is_ce_plus_scaled_complement_entropy():
    logits, targets = random_batch(10)
    expected = F.cross_entropy(logits, targets) + (-1.0 / 9) * complement_entropy_loop(logits, targets).mean()
    assert math.isclose(float(get_loss("cce", 10)(logits, targets)), float(expected), abs_tol=1e-5)


def test_reference_entropy_term_is_minus_c_over_k():
    """S = -C / K: the reference form equals CE + C / K (up to its epsilons)."""
    logits, targets = random_batch(10)
    expected = F.cross_entropy(logits, targets) + complement_entropy_loop(logits, targets).mean() / 10
    assert math.isclose(float(get_loss("cce_reference", 10)(logits, targets)), float(expected), abs_tol=1e-5)


def complement_after_one_step(loss_name, **options):
    logits, targets = random_batch(10, batch=32)
    logits.requires_grad_(True)
    before = complement_entropy(logits.detach(), targets).mean()
    parts = get_loss(loss_name, 10, **options).parts(logits, targets)
    # Step on the complement term alone: the total minus its CE part.
    (parts.total - parts.cross_entropy).backward()
    with torch.no_grad():
        after = complement_entropy(logits - 10.0 * logits.grad, targets).mean()
    return float(before), float(after)


def test_paper_form_raises_complement_entropy():
    before, after = complement_after_one_step("cce", gamma=-1.0)
    assert after > before


def test_reference_form_lowers_complement_entropy():
    before, after = complement_after_one_step("cce_reference")
    assert after < before


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("margin", [0.0, 1.0, 30.0, 100.0, 1000.0])
@pytest.mark.parametrize("name, options", [("ce", {}), ("cce", {}), ("focal", {}), ("focal", {"gamma": 0.5})])
def test_finite_value_and_gradient_at_extreme_margins(dtype, margin, name, options):
    num_classes = 10
    targets = torch.tensor([0, 3, 9, 5])
    logits = torch.zeros(4, num_classes)
    logits[torch.arange(4), targets] = margin  # the true class ahead by `margin`
    logits[1, 7] = -margin  # and one wrong class far behind
    logits = logits.to(dtype).requires_grad_(True)
    value = get_loss(name, num_classes, **options)(logits, targets)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_paper_form_under_autocast_is_fp32():
    logits, targets = random_batch(10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        parts = get_loss("cce", 10).parts(logits.bfloat16(), targets)
    assert parts.total.dtype == torch.float32


def test_every_loss_reports_its_cross_entropy_part():
    logits, targets = random_batch(10)
    ce = F.cross_entropy(logits, targets)
    for name in LOSSES:
        parts = get_loss(name, 10, class_counts=[100] * 5 + [10] * 5).parts(logits, targets)
        assert torch.allclose(parts.cross_entropy, ce), name
        assert name in DISPLAY_NAMES


def test_focal_with_zero_gamma_and_uniform_logit_adjustment_are_cross_entropy():
    logits, targets = random_batch(10)
    ce = F.cross_entropy(logits, targets)
    assert torch.allclose(get_loss("focal", 10, gamma=0.0)(logits, targets), ce)
    assert torch.allclose(get_loss("logit_adjusted", 10, class_counts=[7] * 10)(logits, targets), ce)


def test_logit_adjustment_favours_rare_classes_in_training():
    counts = [1000] + [10] * 9
    logits = torch.zeros(1, 10)
    # With equal logits, the adjusted loss for a rare target is higher than for the head target.
    rare = get_loss("logit_adjusted", 10, class_counts=counts)(logits, torch.tensor([5]))
    head = get_loss("logit_adjusted", 10, class_counts=counts)(logits, torch.tensor([0]))
    assert rare > head


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="valid losses: ce, cce"):
        get_loss("hinge", 10)
    with pytest.raises(ValueError, match="class_counts"):
        get_loss("logit_adjusted", 10)
