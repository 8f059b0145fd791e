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
    for name in all_loss_names():
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


# ---------------------------------------------------------------- LDAM and DRW: oracles written from the papers

from cce_demo.heads import ScaledCosineLinear, prepare_for_loss  # noqa: E402
from cce_demo.losses import (  # noqa: E402
    DRW_BETA, LDAM_SCALE, all_loss_names, class_balanced_weights, ldam_margins, split_drw,
)

LONG_TAIL_COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_ldam_margins_are_proportional_to_n_to_the_minus_quarter():
    """Cao et al. 2019, eq. 12: Delta_c = C / n_c^(1/4); the rarest class gets the largest margin, 0.5."""
    margins = ldam_margins(LONG_TAIL_COUNTS).tolist()
    smallest = min(LONG_TAIL_COUNTS)
    for count, margin in zip(LONG_TAIL_COUNTS, margins):
        assert margin == pytest.approx(0.5 * (smallest / count) ** 0.25, rel=1e-6)
    assert max(margins) == pytest.approx(0.5)


def ldam_oracle(logits, targets, counts, scale):
    """-log(e^(z_y - s Delta_y) / (e^(z_y - s Delta_y) + sum_(j != y) e^(z_j))) per sample, in float math."""
    smallest = min(counts)
    values = []
    for row, target in zip(logits.double().tolist(), targets.tolist()):
        margin = 0.5 * (smallest / counts[target]) ** 0.25
        shifted = [value - scale * margin if index == target else value for index, value in enumerate(row)]
        top = max(shifted)
        log_sum = top + math.log(sum(math.exp(value - top) for value in shifted))
        values.append(log_sum - shifted[target])
    return values


def test_ldam_matches_the_paper_formula():
    logits, targets = random_batch(10, scale=10.0)
    expected = ldam_oracle(logits, targets, LONG_TAIL_COUNTS, LDAM_SCALE)
    loss = get_loss("ldam", 10, class_counts=LONG_TAIL_COUNTS)
    assert loss.per_sample(logits, targets).total.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert float(loss(logits, targets)) == pytest.approx(sum(expected) / len(expected), rel=1e-5)


class CaoLDAMLoss(torch.nn.Module):
    """A transcription of LDAMLoss in kaidic/LDAM-DRW losses.py (CPU), for the cosine logits x."""

    def __init__(self, cls_num_list, max_m=0.5, weight=None, s=30):
        super().__init__()
        m_list = 1.0 / torch.sqrt(torch.sqrt(torch.tensor(cls_num_list, dtype=torch.float64)))
        m_list = m_list * (max_m / torch.max(m_list))
        self.m_list = m_list.float()
        self.s = s
        self.weight = weight

    def forward(self, x, target):
        index = torch.zeros_like(x, dtype=torch.bool)
        index.scatter_(1, target.data.view(-1, 1), True)
        batch_m = torch.matmul(self.m_list[None, :], index.float().transpose(0, 1)).view((-1, 1))
        output = torch.where(index, x - batch_m, x)
        return F.cross_entropy(self.s * output, target, weight=self.weight)


def cao_drw_weights(cls_num_list, beta):
    """kaidic/LDAM-DRW cifar_train.py, train_rule == 'DRW'."""
    import numpy as np

    effective_num = 1.0 - np.power(beta, cls_num_list)
    per_cls_weights = (1.0 - beta) / np.array(effective_num)
    return per_cls_weights / np.sum(per_cls_weights) * len(cls_num_list)


def test_class_balanced_weights_match_the_ldam_drw_code():
    expected = cao_drw_weights(LONG_TAIL_COUNTS, 0.9999)
    assert class_balanced_weights(LONG_TAIL_COUNTS, DRW_BETA).tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    assert class_balanced_weights([7] * 10, DRW_BETA).tolist() == pytest.approx([1.0] * 10)  # balanced: no weights


def test_ldam_drw_after_its_start_is_the_ldam_drw_code():
    cosines = torch.tanh(torch.randn(64, 10, generator=torch.Generator().manual_seed(3)))
    targets = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(4))
    weights = torch.tensor(cao_drw_weights(LONG_TAIL_COUNTS, 0.9999), dtype=torch.float32)
    loss = get_loss("ldam_drw", 10, class_counts=LONG_TAIL_COUNTS, drw_start_epoch=160)
    ours_late = loss.for_epoch(160)(LDAM_SCALE * cosines, targets)
    ours_early = loss.for_epoch(159)(LDAM_SCALE * cosines, targets)
    assert float(ours_late) == pytest.approx(float(CaoLDAMLoss(LONG_TAIL_COUNTS, weight=weights)(cosines, targets)), rel=1e-5)
    assert float(ours_early) == pytest.approx(float(CaoLDAMLoss(LONG_TAIL_COUNTS)(cosines, targets)), rel=1e-5)


@pytest.mark.parametrize("name", ["ce", "cce", "cce_reference", "focal", "logit_adjusted"])
def test_drw_of_any_loss_is_the_class_weighted_mean_of_its_per_sample_values(name):
    """Before the start epoch the DRW loss *is* the base loss (bit for bit); after it, sum w_y l / sum w_y."""
    logits, targets = random_batch(10)
    counts = LONG_TAIL_COUNTS
    base = get_loss(name, 10, class_counts=counts)
    reweighted = get_loss(name + "_drw", 10, class_counts=counts, drw_start_epoch=2)
    assert torch.equal(reweighted.for_epoch(1)(logits, targets), base(logits, targets))
    per_sample = base.per_sample(logits, targets).total.double().tolist()
    weights = cao_drw_weights(counts, 0.9999)
    expected = sum(weights[t] * value for t, value in zip(targets.tolist(), per_sample)) / sum(weights[t] for t in targets.tolist())
    parts = reweighted.for_epoch(2).parts(logits, targets)
    assert float(parts.total) == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(parts.cross_entropy, F.cross_entropy(logits, targets))  # the CE part stays unweighted


def test_ce_drw_is_weighted_cross_entropy():
    logits, targets = random_batch(10)
    weights = torch.tensor(cao_drw_weights(LONG_TAIL_COUNTS, 0.9999), dtype=torch.float32)
    loss = get_loss("ce_drw", 10, class_counts=LONG_TAIL_COUNTS, drw_start_epoch=0).for_epoch(0)
    assert torch.allclose(loss(logits, targets), F.cross_entropy(logits, targets, weight=weights))


@pytest.mark.parametrize("name", ["ce", "cce", "cce_reference", "focal", "logit_adjusted", "ldam"])
def test_per_sample_values_average_to_the_loss(name):
    logits, targets = random_batch(10)
    loss = get_loss(name, 10, class_counts=LONG_TAIL_COUNTS)
    per_sample, parts = loss.per_sample(logits, targets), loss.parts(logits, targets)
    assert torch.allclose(per_sample.total.mean(), parts.total, rtol=1e-5, atol=1e-6)
    assert torch.allclose(per_sample.cross_entropy.mean(), parts.cross_entropy, rtol=1e-5, atol=1e-6)


def test_every_loss_name_has_a_display_name_and_drw_splits():
    for name in all_loss_names():
        assert name in DISPLAY_NAMES
        get_loss(name, 10, class_counts=LONG_TAIL_COUNTS)
    assert DISPLAY_NAMES["ldam_drw"] == "LDAM-DRW" and DISPLAY_NAMES["ce_drw"] == "CE-DRW"
    assert DISPLAY_NAMES["cce_drw"] == "CCE-DRW (paper form)"
    assert split_drw("cce_reference_drw") == ("cce_reference", True) and split_drw("ce") == ("ce", False)
    with pytest.raises(ValueError, match="class_counts"):
        get_loss("ce_drw", 10)


def test_scaled_cosine_classifier_is_scale_times_cosine_and_keeps_the_parameter_names():
    from cce_demo.models import build_model

    plain = build_model("resnet8", 10, torch.Generator().manual_seed(0))
    keys = set(plain.state_dict())
    weight = plain.linear.weight.detach().clone()
    model = prepare_for_loss(plain, "ldam_drw")
    assert isinstance(model.linear, ScaledCosineLinear) and set(model.state_dict()) == keys
    assert torch.equal(model.linear.weight, weight)  # the same initial draw as the paired models
    features = torch.randn(5, weight.shape[1], generator=torch.Generator().manual_seed(1))
    expected = [[LDAM_SCALE * float(torch.dot(f, w) / (f.norm() * w.norm())) for w in weight] for f in features]
    assert model.linear(features).tolist() == [pytest.approx(row, rel=1e-5, abs=1e-5) for row in expected]
    assert prepare_for_loss(build_model("resnet8", 10), "ce_drw").linear.__class__ is torch.nn.Linear


def test_complement_gradient_does_not_vanish_as_the_true_class_wins():
    """design.md: C depends only on the wrong-class logits (q is their softmax), so the complement term's
    gradient is the same at p_g = 0.9 and 0.9995, while CE's shrinks with 1 - p_g."""
    wrong = torch.tensor([1.0, 0.5, 0.0, -0.5, 0.2, 0.0, 0.0, -1.0, 0.3])
    gradients = {}
    for true_probability in (0.9, 0.9995):
        logits = torch.cat([(math.log(true_probability / (1 - true_probability)) + torch.logsumexp(wrong, 0))[None], wrong])
        logits = logits[None].requires_grad_(True)
        ce_gradient, = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([0])), logits)
        term_gradient, = torch.autograd.grad(-complement_entropy(logits, torch.tensor([0])).mean() / 9, logits)
        gradients[true_probability] = (float(ce_gradient.norm()), term_gradient)
    assert torch.allclose(gradients[0.9][1], gradients[0.9995][1], atol=1e-6)
    assert gradients[0.9995][0] == pytest.approx(gradients[0.9][0] * 0.0005 / 0.1, rel=1e-2)
    assert float(gradients[0.9995][1].norm()) > 10 * gradients[0.9995][0]
