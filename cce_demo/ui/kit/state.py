"""The view state of one page, as typed frozen dataclasses.

`ViewRef` and `Drawn` live in `gr.State` (per page, server side). `BrowserMemory` is what the browser keeps
across reloads in `gr.BrowserState`, which must hold JSON: it is converted at the edge with `from_json` /
`to_json` and is a dataclass everywhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ViewKind = Literal["job", "run"]


@dataclass(frozen=True)
class ViewRef:
    """What the compare view shows: a job of this app's manager (live, may be stoppable) or a run on disk."""

    kind: ViewKind
    id: str
    title: str  # who it belongs to, as the page says it: "Your run", "Shipped run", "Run", "A job from another browser"


@dataclass(frozen=True)
class Controls:
    """Which buttons may be pressed: Start only when this browser has no active job, Stop only when it has."""

    own_active_job: str | None  # this browser's queued or running job

    @property
    def start_enabled(self) -> bool:
        return self.own_active_job is None

    @property
    def stop_enabled(self) -> bool:
        return self.own_active_job is not None


@dataclass(frozen=True)
class Drawn:
    """What the page has drawn, so a tick redraws only what changed (the epoch-level views once per epoch) and
    sends the buttons only when this browser's job starts or ends."""

    version: int = -1
    epochs: int = -1
    finished: bool = True
    controls: Controls | None = None
    status: str = ""  # the job status drawn (the verdict and buttons follow queued -> running)


@dataclass(frozen=True)
class BrowserMemory:
    """Kept in the browser's localStorage: the signed token of its visitor id (identity.py) and its latest job.
    Only a hint: the token is checked by the server on every load, and the job id only chooses what to show."""

    token: str | None = None
    job_id: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> "BrowserMemory":
        """Tolerant of anything the browser sends back (an older app stored a bare job id, or a "client_id")."""
        if isinstance(value, str):
            return cls(None, value or None)
        if not isinstance(value, dict):
            return cls()
        token, job = value.get("visitor"), value.get("job_id")
        return cls(token if isinstance(token, str) and token else None, job if isinstance(job, str) and job else None)

    def to_json(self) -> dict[str, str | None]:
        return {"visitor": self.token, "job_id": self.job_id}
