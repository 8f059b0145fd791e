"""The Results tab: one HTML block, drawn once at start-up from the shipped result grids (views.py)."""
from __future__ import annotations

import gradio as gr


def build(html: str) -> None:
    """Create the tab's only component inside the current `gr.Tab`; it has no events."""
    gr.HTML(html, elem_id="results")
