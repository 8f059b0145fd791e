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
from .admission import Admission, SlidingWindow
from .catalog import RunCatalog
from .identity import VisitorSigner, public_mode
from .layout import Layout
from .ownership import JobOwners

IMPORTS_PER_HOUR = 5  # run uploads per visitor address on a Space (each may add up to 64 MB to the disk)


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
    storage_note: str = ""  # where runs are kept and whether they survive a restart (app.py's RunsLocation)
    # Public mode (a Space, SPACE_ID set): owner checks on Stop and Delete, per-visitor rate limits and quotas.
    # Locally the owner of the machine may do everything.
    public: bool = field(default_factory=public_mode)
    signer: VisitorSigner = field(default_factory=VisitorSigner)  # its secret exists in this process only
    admission: Admission | None = None  # per-visitor limits; None: built from `public`
    import_quota: SlidingWindow = field(default_factory=lambda: SlidingWindow(IMPORTS_PER_HOUR, 3600.0))

    def __post_init__(self) -> None:
        if self.admission is None:
            object.__setattr__(self, "admission", Admission(enabled=self.public))


@dataclass(frozen=True)
class UiContext:
    app: AppContext
    ui: Layout


# What a handler returns: component -> new value or `gr.update(...)`/component instance. Components left out
# keep what they show.
Update = dict[Any, Any]
