"""Classification losses compared by the demo — CE, the two forms of Complement Cross Entropy, focal and
logit-adjusted CE — as pure functions, thin `nn.Module` wrappers and a registry by name.

Every module can report its plain cross-entropy part (`loss.parts(logits, targets)`), so the training curves
of different losses can share one axis.
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


def logit_adjusted(logits: torch.Tensor, targets: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0) -> LossParts:
    """Logit-adjusted cross entropy (Menon et al. 2021, eq. 10): CE(logits + tau * log prior). At test time the
    plain logits are used, which is what removes the head-class bias."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits32 = logits.float()
        total = F.cross_entropy(logits32 + tau * log_prior.to(logits32.dtype), targets)
        cross_entropy = F.cross_entropy(logits32, targets)
    return LossParts(total, cross_entropy)


def plain_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
    with torch.autocast(device_type=logits.device.type, enabled=False):
        cross_entropy = F.cross_entropy(logits.float(), targets)
    return LossParts(cross_entropy, cross_entropy)


# ---------------------------------------------------------------- modules


class PartsLoss(nn.Module):
    """Base: `forward` returns the scalar to minimise; `parts` also returns its CE part."""

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.parts(logits, targets).total


class CrossEntropy(PartsLoss):
    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return plain_cross_entropy(logits, targets)


class ComplementCrossEntropy(PartsLoss):
    def __init__(self, gamma: float = -1.0) -> None:
        super().__init__()
        self.gamma = float(gamma)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return cce_paper(logits, targets, self.gamma)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


class ComplementCrossEntropyReference(PartsLoss):
    def __init__(self, balancing_factor: float = 1.0) -> None:
        super().__init__()
        self.balancing_factor = float(balancing_factor)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return cce_reference(logits, targets, self.balancing_factor)

    def extra_repr(self) -> str:
        return f"balancing_factor={self.balancing_factor}"


class FocalLoss(PartsLoss):
    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = float(gamma)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return focal(logits, targets, self.gamma)


class LogitAdjustedCrossEntropy(PartsLoss):
    def __init__(self, class_counts: Sequence[int], tau: float = 1.0) -> None:
        super().__init__()
        counts = torch.as_tensor(list(class_counts), dtype=torch.float32)
        if (counts <= 0).any():
            raise ValueError(f"class_counts: every class needs at least one training image, got {counts.tolist()}")
        # A buffer, so the prior moves with .to(device) and no device argument is needed.
        self.register_buffer("log_prior", torch.log(counts / counts.sum()), persistent=False)
        self.tau = float(tau)

    def parts(self, logits: torch.Tensor, targets: torch.Tensor) -> LossParts:
        return logit_adjusted(logits, targets, self.log_prior, self.tau)


# ---------------------------------------------------------------- registry

# name -> (module class, the options it accepts)
LOSSES: dict[str, tuple[type[PartsLoss], tuple[str, ...]]] = {
    "ce": (CrossEntropy, ()),
    "cce": (ComplementCrossEntropy, ("gamma",)),
    "cce_reference": (ComplementCrossEntropyReference, ("balancing_factor",)),
    "focal": (FocalLoss, ("gamma",)),
    "logit_adjusted": (LogitAdjustedCrossEntropy, ("class_counts", "tau")),
}

DISPLAY_NAMES = {
    "ce": "CE",
    "cce": "CCE (paper form)",
    "cce_reference": "CCE (reference code)",
    "focal": "Focal",
    "logit_adjusted": "Logit-adjusted CE",
}


def get_loss(name: str, num_classes: int, **options: object) -> PartsLoss:
    """The loss registered as `name`. Options that loss does not use (e.g. `class_counts` for CE) are ignored,
    so callers can pass one common set; an unknown name lists the valid ones."""
    if name not in LOSSES:
        raise ValueError(f"loss: unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    if num_classes < 2:
        raise ValueError(f"num_classes: at least 2 classes are needed, got {num_classes}")
    module_class, accepted = LOSSES[name]
    if name == "logit_adjusted" and options.get("class_counts") is None:
        raise ValueError("class_counts: logit_adjusted needs the training class counts (its prior)")
    return module_class(**{key: value for key, value in options.items() if key in accepted})


def max_complement_entropy(num_classes: int) -> float:
    """Upper bound of C: the entropy of a uniform distribution over the K - 1 wrong classes."""
    return math.log(num_classes - 1)
