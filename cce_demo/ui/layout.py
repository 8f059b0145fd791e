"""The page: the header, one tab after another (each tab's package builds its own components), and the state a
page keeps (which run it shows, what was drawn, the browser's memory, the visitor, the timer), returned as one
typed `Layout`. No behaviour here: each tab's handlers fill its components and its `connect` wires them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .about import layout as about
from .classify import layout as classify
from .classify.layout import ClassifyLayout
from .compare import layout as compare
from .compare.layout import CompareLayout
from .kit.theme import HEADER, RUNS_STYLE, STYLE, VERDICT_STYLE
from .results import layout as results
from .results.views import results_tab_html
from .runs import layout as runs
from .runs.layout import RunsLayout

REFRESH_SECONDS = 1.0
# BrowserState's own "secret" is sent to every browser in /config, so it protects nothing and is not relied
# on: what the browser keeps is a visitor token the server signs and checks (identity.py) and a job id that
# only chooses what to show.
BROWSER_STORAGE_KEY = "cce_demo_browser"
BROWSER_SECRET = "cce_demo_browser_memory"


@dataclass(frozen=True)
class Layout:
    tabs: gr.Tabs
    compare: CompareLayout
    classify: ClassifyLayout
    runs: RunsLayout
    # The page's state
    view: gr.State  # ViewRef | None
    drawn: gr.State  # Drawn
    memory: gr.BrowserState  # BrowserMemory as JSON
    visitor: gr.State  # identity.Visitor | None: set by the server on load, never by a request
    timer: gr.Timer

    @property
    def view_switch(self) -> list[gr.components.Component]:
        """What switching the compare view to another run updates (`compare.view.show`)."""
        return [self.view, self.drawn, self.memory, self.visitor, *self.compare.view_outputs, self.compare.start,
                self.compare.stop]

    @property
    def runs_outputs(self) -> list[gr.components.Component]:
        """The runs list and both run pickers (`runs.listing.on_refresh_runs`)."""
        return [self.runs.runs_frame, self.runs.run_choice, self.runs.runs_problems, self.classify.classify_run]


def build_layout(examples_dir: Path | None = None, results_dir: Path | None = None, storage_note: str = "") -> Layout:
    """Create the components inside the current `gr.Blocks` context. `storage_note` says where runs are kept
    and whether they survive a restart (shown on the Runs tab)."""
    gr.HTML(STYLE + VERDICT_STYLE + RUNS_STYLE + HEADER)
    # "wrap": at 390 px Gradio's default moved three of the five tabs into a "…" menu; wrapped, all stay in view.
    with gr.Tabs(overflow_behavior="wrap", elem_id="tabs") as tabs:
        with gr.Tab("Train & compare", id="compare"):
            compare_layout = compare.build()
        with gr.Tab("Classify", id="classify"):
            classify_layout = classify.build(examples_dir)
        with gr.Tab("Runs", id="runs"):
            runs_layout = runs.build(storage_note)
        with gr.Tab("Results", id="results"):
            results.build(results_tab_html(results_dir))
        with gr.Tab("About", id="about"):
            about.build()
    view = gr.State(None)
    drawn = gr.State(None)
    memory = gr.BrowserState(None, storage_key=BROWSER_STORAGE_KEY, secret=BROWSER_SECRET)
    visitor = gr.State(None)
    timer = gr.Timer(REFRESH_SECONDS)
    return Layout(tabs, compare_layout, classify_layout, runs_layout, view, drawn, memory, visitor, timer)
