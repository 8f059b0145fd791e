"""What handlers work over: the app's services (`AppContext`) and the page's components (`UiContext`).

Every handler is a module-level function whose first argument is a `UiContext`; wiring.py binds it. A test
builds the same context around a temporary runs directory and calls handlers directly (tests/test_ui.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..jobs import JobManager
from ..predict import ModelCache
from .catalog import RunCatalog
from .layout import Layout
from .ownership import JobOwners


@dataclass(frozen=True)
class AppContext:
    """The services one app instance shares between all pages."""

    manager: JobManager
    catalog: RunCatalog
    model_cache: ModelCache
    examples_dir: Path | None = None
    owners: JobOwners = field(default_factory=JobOwners)
    results_dir: Path | None = None  # the result grids of the Results tab (results/<grid>/results.json)
    exports_dir: Path | None = None  # where run zips are written for download (None: a folder in the temp dir)


@dataclass(frozen=True)
class UiContext:
    app: AppContext
    ui: Layout


# What a handler returns: component -> new value or `gr.update(...)`/component instance. Components left out
# keep what they show.
Update = dict[Any, Any]
