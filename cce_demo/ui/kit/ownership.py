"""Which visitor owns which job or run (visitors: `identity.Visitor`, issued and held by the server).

A visitor has at most one queued or running job, so a double click, a second tab or a reload can never leave
a job that its browser cannot stop; the check and the submit happen under one lock, so two clicks that
arrive together still make one job. Every job a visitor started and every run it imported is recorded, so
Stop and Delete can be refused to everyone else. The record lives in memory, like the secret that signs
visitor ids: after a restart nobody owns the old runs (retention removes them in time).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

MAX_OWNED = 10_000  # runs remembered; the oldest are forgotten first (bounded memory however long the app runs)


class JobOwners:
    def __init__(self, capacity: int = MAX_OWNED) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, str] = {}  # visitor id -> its latest job id
        self._owner: OrderedDict[str, str] = OrderedDict()  # job or run id -> visitor id
        self._capacity = capacity

    def start(self, visitor_id: str, submit: Callable[[], str], is_active: Callable[[str], bool]) -> tuple[str, bool]:
        """The visitor's active job if it has one (started False), else `submit()`'s new job (started True).
        `submit` may raise; nothing is recorded then."""
        with self._lock:
            current = self._latest.get(visitor_id)
            if current is not None and is_active(current):
                return current, False
            job_id = submit()
            self._latest[visitor_id] = job_id
            self._remember(job_id, visitor_id)
            return job_id, True

    def record(self, run_id: str, visitor_id: str) -> None:
        """A run the visitor brought in another way (an upload)."""
        with self._lock:
            self._remember(run_id, visitor_id)

    def job_of(self, visitor_id: str | None) -> str | None:
        if not visitor_id:
            return None
        with self._lock:
            return self._latest.get(visitor_id)

    def owner_of(self, run_id: str) -> str | None:
        with self._lock:
            return self._owner.get(run_id)

    def owns(self, visitor_id: str | None, run_id: str) -> bool:
        return bool(visitor_id) and self.owner_of(run_id) == visitor_id

    def _remember(self, run_id: str, visitor_id: str) -> None:
        self._owner[run_id] = visitor_id
        self._owner.move_to_end(run_id)
        while len(self._owner) > self._capacity:
            self._owner.popitem(last=False)
