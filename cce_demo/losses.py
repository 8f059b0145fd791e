"""Classification losses compared by the demo — CE, the two forms of Complement Cross Entropy, focal,
logit-adjusted CE (Balanced Softmax at tau = 1) and LDAM — as pure functions, thin `nn.Module` wrappers and a
registry by name, plus deferred re-weighting (DRW), which applies to any of them ("ce_drw", "ldam_drw", ...).

Every module can report its plain cross-entropy part (`loss.parts(logits, targets)`), so the training curves
of different losses can share one axis, and its per-sample values (`loss.per_sample`), which is what class
weights need.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Epsilons of the seed code (complement-cross-entropy README), kept bit-for-bit in `cce_reference`.
SEED_DENOMINATOR_EPSILON = 1e-7  # added to (1 - p_g) before dividing
SEED_LOG_EPSILON = 1e-10  # added to Px before the log
FOCAL_EPSILON = 1e-12  # floor of 1 - p_g in the focal term

# LDAM (Cao et al. 2019): the largest class margin and the logit scale of their code (LDAMLoss(max_m=0.5, s=30)).
LDAM_MAX_MARGIN = 0.5
LDAM_SCALE = 30.0
# Deferred re-weighting: the effective-number beta of Cao et al.'s DRW (Cui et al. 2019's class-balanced weights).
DRW_BETA = 0.9999
DRW_SUFFIX = "_drw"  # "ce_drw" = CE with deferred re-weighting; "_" because run ids allow no "+"
# Losses trained with a scaled cosine classifier in place of the last linear layer, as Cao et al. train LDAM
# (their `NormedLinear`, use_norm=True for LDAM only); see `cce_demo/heads.py`.
COSINE_CLASSIFIER_LOSSES = frozenset({"ldam"})


class LossParts(NamedTuple):
    total: torch.Tensor  # the scalar that is minimised
    cross_entropy: torch.Tensor  # its plain CE part (equal to total for CE), for shared-axis curves


# ---------------------------------------------------------------- pure functions


def complement_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample complement entropy C_i = -sum_{j != g} q_ij log q_ij, q_ij = p_ij / (1 - p_ig) (COT, Chen et
    al. 2019). Computed in log space in fp32: q over the wrong classes is exactly the softmax of the logits
    with the true class removed, so no division by 1 - p_g ever happens and margins of 1000 stay finite."""
    logits32 = logits.float()
    true_class = F.one_hot(targets, logits32.shape[1]).bool()
    log_q = torch.log_softmax(logits32.masked_fill(true_class, float("-inf")), dim=1)
    # At the true class q = 0 and log q = -inf; 0 * log 0 := 0. masked_fill (not multiply) keeps the gradient
    # free of 0 * inf.
    plogp = torch.exp(log_q) * log_q.masked_fill(true_class, 0.0)
    return -plogp.sum(dim=1)


def cce_paper(logits: torch.Tensor, targets: torch.Tensor, gamma: float = -1.0) -> LossParts:
    """Paper form (Kim et al. 2021, eq. 4 with the COT term of eq. 2): CE + gamma / (K - 1) * mean_i C_i.
    With gamma < 0, minimising it raises C: the wrong-class probabilities are flattened."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits32 = logits.float()
        cross_entropy = F.cross_entropy(logits32, targets)
        num_classes = logits32.shape[1]
        total = cross_entropy + (gamma / (num_classes - 1)) * complement_entropy(logits32, targets).mean()
    return LossParts(total, cross_entropy)


def cce_reference(logits: torch.Tensor, targets: torch.Tensor, balancing_factor: float = 1.0) -> LossParts:
    """Exactly what the seed code's `CCE.forward` computes: CE - balancing_factor * S with
    S = sum_{i, j != g} Px log(Px + 1e-10) / (N * K), Px = p / ((1 - p_g) + 1e-7). Since S = -C / K this is
    CE + C / K: it lowers C (sharpens), the opposite direction of the paper's text, and divides by K.
    Same operations in the same order as the seed; the zero-hot mask is built on the logits' device."""
    batch_size = len(targets)
    cross_entropy = F.nll_loss(F.log_softmax(logits, dim=1), targets)
    probabilities = F.softmax(logits, dim=1)
    true_probability = probabilities.gather(dim=1, index=torch.unsqueeze(targets, 1))
    true_complement = (1 - true_probability) + SEED_DENOMINATOR_EPSILON
    normalised = probabilities / true_complement.view(len(probabilities), 1)
    normalised_log = torch.log(normalised + SEED_LOG_EPSILON)
    zero_hot = torch.ones(batch_size, probabilities.shape[1], dtype=torch.float32, device=logits.device).scatter_(
        1, targets.view(batch_size, 1), 0
    )
    output = normalised * normalised_log * zero_hot
    entropy_term = torch.sum(output) / (float(batch_size) * float(probabilities.shape[1]))
    return LossParts(cross_entropy - balancing_factor * entropy_term, cross_entropy)


def focal(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> LossParts:
    """Focal loss (Lin et al. 2017): mean_i -(1 - p_ig)^gamma log p_ig."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        log_p = torch.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
        # 1 - p as -expm1(log p) keeps precision near p = 1; the clamp keeps (1 - p)^gamma differentiable at
        # p = 1 for gamma < 1, where its derivative would be infinite.
        complement = (-torch.expm1(log_p)).clamp_min(FOCAL_EPSILON)
        total = (-complement.pow(gamma) * log_p).mean()
        cross_entropy = -log_p.mean()
    return LossParts(total, cross_entropy)


def log_prior(
    class_counts: Sequence[float], dtype: torch.dtype = torch.float32, empty_class_count: float | None = None
) -> torch.Tensor:
    """log π, π the training class frequencies (the counts, normalised), computed in `dtype`: the one log
    prior of the logit-adjusted loss, the engine's prior-corrected scores and Classify's correction. Each
    caller keeps the precision it always had, so replays stay bit for bit. `empty_class_count` stands in for
    a class with no image, so that the correction stays finite (the engine's log(0.5 / total)); without it
    such a class gets -inf, and callers that cannot take that refuse zero counts first."""
    counts = torch.as_tensor(list(class_counts), dtype=dtype)
    if empty_class_count is not None:
        counts = counts.clamp_min(empty_class_count)
    return torch.log(counts / counts.sum())


def logit_adjusted(logits: torch.Tensor, targets: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0) -> LossParts:
    """Logit-adjusted cross entropy (Menon et al. 2021, eq. 10): CE(logits + tau * log prior). At test time the
    plain logits are used, which is what removes the head-class bias."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits32 = logits.float()
        total = F.cross_entropy(logits32 + tau * log_prior.to(logits32.dtype), targets)
        cross_entropy = F.cross_entropy(logits32, targets)
    return LossParts(total, cross_entropy)


def ldam_margins(class_counts: Sequence[int], max_margin: float = LDAM_MAX_MARGIN) -> torch.Tensor:
    """LDAM's class margins (Cao et al. 2019, eq. 12): Delta_c = C / n_c^(1/4), with C chosen so that the
    largest margin (the rarest class's) is `max_margin`. fp32, computed in fp64."""
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if (counts <= 0).any():
        raise ValueError(f"class_counts: every class needs at least one training image, got {counts.tolist()}")
    raw = counts.pow(-0.25)
    return (raw * (max_margin / raw.max())).float()


def ldam_per_sample(logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor, scale: float = LDAM_SCALE) -> LossParts:
    """Per-sample LDAM (Cao et al. 2019, eq. 13): -log softmax(z - scale * Delta_y e_y)_y. The logits z are
    those of a scaled cosine classifier, z = scale * cos(theta) (their code: cross_entropy(s * (cos - Delta_y
    e_y))), so the margin in logit units is scale * Delta_y."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits32 = logits.float()
        shift = F.one_hot(targets, logits32.shape[1]).to(logits32.dtype) * (scale * margins.to(logits32.dtype)[targets])[:, None]
        total = F.cross_entropy(logits32 - shift, targets, reduction="none")
        cross_entropy = F.cross_entropy(logits32, targets, reduction="none")
    return LossParts(total, cross_entropy)


def ldam(logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor, scale: float = LDAM_SCALE) -> LossParts:
    """LDAM, the batch mean of `ldam_per_sample`."""
    per_sample = ldam_per_sample(logits, targets, margins, scale)
    return LossParts(per_sample.total.mean(), per_sample.cross_entropy.mean())


def class_balanced_weights(class_counts: Sequence[int], beta: float = DRW_BETA) -> torch.Tensor:
    """Class-balanced weights by the effective number of samples (Cui et al. 2019, eq. 6-8), as Cao et al.'s
    DRW uses them: w_c = (1 - beta) / (1 - beta^n_c), normalised to sum to the number of classes. fp32,
    computed in fp64 (beta^n_c for beta = 0.9999 needs the precision)."""
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if (counts <= 0).any():
        raise ValueError(f"class_counts: every class needs at least one training image, got {counts.tolist()}")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta: must be >= 0 and < 1, got {beta}")
    weights = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts))
    return (weights * (len(counts) / weights.sum())).float()


def class_weighted(per_sample: LossParts, targets: torch.Tensor, class_weights: torch.Tensor) -> LossParts:
    """The class-weighted mean sum_i w_(y_i) l_i / sum_i w_(y_i) (what cross_entropy(weight=w) computes, and so
    what Cao et al.'s DRW minimises). The CE part stays the plain, unweighted mean, so curves share an axis."""
    weights = class_weights.to(per_sample.total.dtype)[targets]
    return LossParts((weights * per_sample.total).sum() / weights.sum(), per_sample.cross_entropy.mean())


def plain_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
    with torch.autocast(device_type=logits.device.type, enabled=False):
        cross_entropy = F.cross_entropy(logits.float(), targets)
    return LossParts(cross_entropy, cross_entropy)


# ---------------------------------------------------------------- modules


class PartsLoss(nn.Module):
    """Base: `forward` returns the scalar to minimise; `parts` also returns its CE part."""

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:  # pragma: no cover - abstract
        raise NotImplementedError

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:  # pragma: no cover - abstract
        """The loss and its CE part per sample (vectors); their batch means equal `parts` up to rounding.
        Used only where samples are weighted, so `parts` stays exactly the published computation."""
        raise NotImplementedError

    def for_epoch(self, epoch_index: int) -> "PartsLoss":
        """The loss to minimise in the 0-based epoch `epoch_index`: itself, except for deferred re-weighting."""
        return self

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.parts(logits, targets).total


class CrossEntropy(PartsLoss):
    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return plain_cross_entropy(logits, targets)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            cross_entropy = F.cross_entropy(logits.float(), targets, reduction="none")
        return LossParts(cross_entropy, cross_entropy)


class ComplementCrossEntropy(PartsLoss):
    def __init__(self, gamma: float = -1.0) -> None:
        super().__init__()
        self.gamma = float(gamma)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return cce_paper(logits, targets, self.gamma)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        # CE_i + gamma / (K - 1) * C_i: the batch mean of this is the paper form.
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits32 = logits.float()
            cross_entropy = F.cross_entropy(logits32, targets, reduction="none")
            total = cross_entropy + (self.gamma / (logits32.shape[1] - 1)) * complement_entropy(logits32, targets)
        return LossParts(total, cross_entropy)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


class ComplementCrossEntropyReference(PartsLoss):
    def __init__(self, balancing_factor: float = 1.0) -> None:
        super().__init__()
        self.balancing_factor = float(balancing_factor)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return cce_reference(logits, targets, self.balancing_factor)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        # The seed code's S = sum over the batch / (N * K) is the batch mean of S_i = (row sum of
        # Px log(Px + 1e-10) over the wrong classes) / K, with the seed's epsilons.
        cross_entropy = F.nll_loss(F.log_softmax(logits, dim=1), targets, reduction="none")
        probabilities = F.softmax(logits, dim=1)
        true_probability = probabilities.gather(dim=1, index=targets[:, None])
        normalised = probabilities / ((1 - true_probability) + SEED_DENOMINATOR_EPSILON)
        wrong_class = 1.0 - F.one_hot(targets, probabilities.shape[1]).to(probabilities.dtype)
        entropy_term = (normalised * torch.log(normalised + SEED_LOG_EPSILON) * wrong_class).sum(dim=1) / probabilities.shape[1]
        return LossParts(cross_entropy - self.balancing_factor * entropy_term, cross_entropy)

    def extra_repr(self) -> str:
        return f"balancing_factor={self.balancing_factor}"


class FocalLoss(PartsLoss):
    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = float(gamma)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return focal(logits, targets, self.gamma)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            log_p = torch.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
            complement = (-torch.expm1(log_p)).clamp_min(FOCAL_EPSILON)
            return LossParts(-complement.pow(self.gamma) * log_p, -log_p)


class LogitAdjustedCrossEntropy(PartsLoss):
    def __init__(self, class_counts: Sequence[int], tau: float = 1.0) -> None:
        super().__init__()
        counts = torch.as_tensor(list(class_counts), dtype=torch.float32)
        if (counts <= 0).any():
            raise ValueError(f"class_counts: every class needs at least one training image, got {counts.tolist()}")
        # A buffer, so the prior moves with .to(device) and no device argument is needed.
        self.register_buffer("log_prior", log_prior(class_counts, torch.float32), persistent=False)
        self.tau = float(tau)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return logit_adjusted(logits, targets, self.log_prior, self.tau)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits32 = logits.float()
            total = F.cross_entropy(logits32 + self.tau * self.log_prior.to(logits32.dtype), targets, reduction="none")
            return LossParts(total, F.cross_entropy(logits32, targets, reduction="none"))


class LDAMLoss(PartsLoss):
    """LDAM (Cao et al. 2019) on the logits of a scaled cosine classifier (`cce_demo/heads.py`)."""

    def __init__(self, class_counts: Sequence[int], max_margin: float = LDAM_MAX_MARGIN, scale: float = LDAM_SCALE) -> None:
        super().__init__()
        self.register_buffer("margins", ldam_margins(class_counts, max_margin), persistent=False)
        self.scale = float(scale)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return ldam(logits, targets, self.margins, self.scale)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return ldam_per_sample(logits, targets, self.margins, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class ClassWeightedLoss(PartsLoss):
    """A loss with class weights on its samples (`class_weighted`)."""

    def __init__(self, base: PartsLoss, class_weights: torch.Tensor) -> None:
        super().__init__()
        self.base = base
        self.register_buffer("class_weights", class_weights.float(), persistent=False)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return class_weighted(self.base.per_sample(logits, targets), targets, self.class_weights)


class DeferredReweighting(PartsLoss):
    """DRW (Cao et al. 2019, sec. 3.3): the base loss unweighted until `start_epoch` (0-based), then weighted
    by the class-balanced weights of `class_balanced_weights`. Before the start it *is* the base loss, bit for
    bit."""

    def __init__(self, base: PartsLoss, class_counts: Sequence[int], beta: float = DRW_BETA, start_epoch: int = 0) -> None:
        super().__init__()
        self.base = base
        self.weighted = ClassWeightedLoss(base, class_balanced_weights(class_counts, beta))
        self.start_epoch = int(start_epoch)

    def for_epoch(self, epoch_index: int) -> PartsLoss:
        return self.weighted if epoch_index >= self.start_epoch else self.base

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return self.base.parts(logits, targets)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return self.base.per_sample(logits, targets)

    def extra_repr(self) -> str:
        return f"start_epoch={self.start_epoch}"


# ---------------------------------------------------------------- registry

# name -> (module class, the options it accepts)
LOSSES: dict[str, tuple[type[PartsLoss], tuple[str, ...]]] = {
    "ce": (CrossEntropy, ()),
    "cce": (ComplementCrossEntropy, ("gamma",)),
    "cce_reference": (ComplementCrossEntropyReference, ("balancing_factor",)),
    "focal": (FocalLoss, ("gamma",)),
    "logit_adjusted": (LogitAdjustedCrossEntropy, ("class_counts", "tau")),
    "ldam": (LDAMLoss, ("class_counts",)),
}
# Losses that need the training class counts.
NEEDS_CLASS_COUNTS = frozenset({"logit_adjusted", "ldam"})

DISPLAY_NAMES = {
    "ce": "CE",
    "cce": "CCE (paper form)",
    "cce_reference": "CCE (reference code)",
    "focal": "Focal",
    "logit_adjusted": "Logit-adjusted CE",
    "ldam": "LDAM",
}
# Every loss with deferred re-weighting too: "CE-DRW", "LDAM-DRW" (the field's names), "CCE-DRW (paper form)".
for _name, _label in list(DISPLAY_NAMES.items()):
    _head, _bracket, _rest = _label.partition(" (")
    DISPLAY_NAMES[_name + DRW_SUFFIX] = f"{_head}-DRW{_bracket}{_rest}"
del _name, _label, _head, _bracket, _rest


def split_drw(name: str) -> tuple[str, bool]:
    """("ce", True) for "ce_drw", ("ce", False) for "ce"."""
    if name.endswith(DRW_SUFFIX) and name[: -len(DRW_SUFFIX)] in LOSSES:
        return name[: -len(DRW_SUFFIX)], True
    return name, False


def all_loss_names() -> tuple[str, ...]:
    """Every trainable loss name: the registry's, then each with deferred re-weighting."""
    return (*LOSSES, *(name + DRW_SUFFIX for name in LOSSES))


def uses_cosine_classifier(name: str) -> bool:
    return split_drw(name)[0] in COSINE_CLASSIFIER_LOSSES


def get_loss(name: str, num_classes: int, **options: object) -> PartsLoss:
    """The loss registered as `name`, or with the "_drw" suffix that loss under deferred re-weighting (options
    `class_counts`, `drw_beta`, `drw_start_epoch`). Options that loss does not use (e.g. `class_counts` for
    CE) are ignored, so callers can pass one common set; an unknown name lists the valid ones."""
    base_name, reweighted = split_drw(name)
    if base_name not in LOSSES:
        raise ValueError(f"loss: unknown loss {name!r}; valid losses: {', '.join(all_loss_names())}")
    if num_classes < 2:
        raise ValueError(f"num_classes: at least 2 classes are needed, got {num_classes}")
    module_class, accepted = LOSSES[base_name]
    if (base_name in NEEDS_CLASS_COUNTS or reweighted) and options.get("class_counts") is None:
        raise ValueError(f"class_counts: {name} needs the training class counts")
    base = module_class(**{key: value for key, value in options.items() if key in accepted})
    if not reweighted:
        return base
    return DeferredReweighting(
        base, options["class_counts"], float(options.get("drw_beta", DRW_BETA)), int(options.get("drw_start_epoch", 0))
    )


def max_complement_entropy(num_classes: int) -> float:
    """Upper bound of C: the entropy of a uniform distribution over the K - 1 wrong classes."""
    return math.log(num_classes - 1)
