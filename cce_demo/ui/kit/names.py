"""How losses are named and coloured in every view. One colour per loss, the same in every chart, card and
prediction (CE blue, CCE red); the CE part of a loss is drawn dashed in its loss's colour."""
from __future__ import annotations

from ...losses import DISPLAY_NAMES

LOSS_COLOURS = {
    "ce": "#1f77b4", "cce": "#d62728", "cce_reference": "#ff7f0e", "focal": "#2ca02c", "logit_adjusted": "#9467bd",
    "ldam": "#8c6d31", "ldam_drw": "#843c39", "ce_drw": "#6b6ecf",
}
# Short names for narrow places (table columns, chart legends on phones).
SHORT_NAMES = {"ce": "CE", "cce": "CCE", "cce_reference": "CCE ref.", "focal": "Focal", "logit_adjusted": "LA-CE",
               "ldam": "LDAM", "ldam_drw": "LDAM-DRW", "ce_drw": "CE-DRW"}
# Colours that tell runs apart when several are overlaid (Runs tab); none is a loss colour.
RUN_COLOURS = ("#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#393b79")
FALLBACK_COLOUR = "#444444"


def display_name(loss: str) -> str:
    return DISPLAY_NAMES.get(loss, loss)


def short_name(loss: str) -> str:
    return SHORT_NAMES.get(loss, loss)


def colour(loss: str) -> str:
    return LOSS_COLOURS.get(loss, FALLBACK_COLOUR)
