"""What handlers work over: the app's services (`AppContext`) and the page's components (`UiContext`).

Every handler is a module-level function whose first argument is a `UiContext`; wiring.py binds it. A test
builds the same context around a temporary runs directory and calls handlers directly (tests/test_ui.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import functools
import inspect
import typing
from typing import Any, Callable

import gradio as gr

from ..jobs import JobManager
from ..predict import ModelCache
from .catalog import RunCatalog
from .kit.admission import Admission, SlidingWindow
from .kit.identity import VisitorSigner, public_mode
from .kit.ownership import JobOwners

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
    # The page's components, a `layout.Layout`. Not imported here: the tabs' handlers need this context, and the
    # layout is built from the tabs' own layouts, so the context stands below both.
    ui: Any


# Event options: "private" keeps an event out of the named API (api.py holds the public endpoints), "quiet"
# also hides Gradio's progress overlay (the views draw their own).
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
QUIET: dict[str, Any] = {**PRIVATE, "show_progress": "hidden"}

# What a handler returns: component -> new value or `gr.update(...)`/component instance. Components left out
# keep what they show.
Update = dict[Any, Any]


def bind(ctx: UiContext, handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler` with its context filled in, as Gradio needs it: the remaining signature and type hints (so a
    `gr.Request` parameter is still recognised), and an empty dict of updates turned into `gr.skip()`."""
    signature = inspect.signature(handler)
    parameters = list(signature.parameters.values())[1:]
    names = {parameter.name for parameter in parameters}
    try:
        hints = typing.get_type_hints(handler)
    except (NameError, TypeError):
        hints = {}

    @functools.wraps(handler, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
    def run(*args: Any, **kwargs: Any) -> Any:
        updates = handler(ctx, *args, **kwargs)
        return gr.skip() if isinstance(updates, dict) and not updates else updates

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {name: hint for name, hint in hints.items() if name in names}
    return run
