"""Classifier heads that a loss needs: LDAM is trained on a scaled cosine classifier (Cao et al. 2019; their
code's `NormedLinear`, used for LDAM only), so a model trained with `ldam` or `ldam_drw` gets one in place of
its last linear layer.

The head keeps the linear layer's parameters under the same names and shapes (`linear.weight`,
`linear.bias`), so a run's safetensors files keep the key set of the plain model; the bias stays at zero and
takes no gradient. Its initial weights are the linear layer's own initial draw, so the paired models of a seed
still start from one set of weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import LDAM_SCALE, uses_cosine_classifier

# Floor of the norms in F.normalize (its default); a zero feature vector maps to zero cosines, not NaN.
NORM_EPSILON = 1e-12


class ScaledCosineLinear(nn.Module):
    """z_j = scale * cos(angle between the feature vector x and class weight w_j)
    = scale * <x / |x|, w_j / |w_j|>. LDAM's margins are in cosine units, so the scale sets their size in
    logits (`losses.ldam_per_sample`)."""

    def __init__(self, linear: nn.Linear, scale: float = LDAM_SCALE) -> None:
        super().__init__()
        self.weight = linear.weight
        bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
        self.bias = nn.Parameter(torch.zeros_like(bias.detach()), requires_grad=False)
        self.scale = float(scale)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        cosines = F.linear(F.normalize(features, dim=1, eps=NORM_EPSILON), F.normalize(self.weight, dim=1, eps=NORM_EPSILON))
        return self.scale * cosines

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, scale={self.scale}"


def prepare_for_loss(model: nn.Module, loss_name: str) -> nn.Module:
    """The model as the loss `loss_name` trains it: with a scaled cosine classifier for LDAM, else unchanged.
    Modifies `model` in place and returns it."""
    if not uses_cosine_classifier(loss_name):
        return model
    linear = getattr(model, "linear", None)
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"{loss_name}: needs a model whose classifier is a linear layer named 'linear', got {type(linear).__name__}")
    model.linear = ScaledCosineLinear(linear)
    return model
