"""Which browser owns which job: at most one queued or running job per browser, so a double click, a second
tab or a reload can never leave a job that its browser cannot stop. The check and the submit happen under
one lock, so two clicks that arrive together still make one job."""
from __future__ import annotations

import threading
from typing import Callable


class JobOwners:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, str] = {}  # client id -> its latest job id

    def start(self, client_id: str, submit: Callable[[], str], is_active: Callable[[str], bool]) -> tuple[str, bool]:
        """The client's active job if it has one (started False), else `submit()`'s new job (started True).
        `submit` may raise; nothing is recorded then."""
        with self._lock:
            current = self._jobs.get(client_id)
            if current is not None and is_active(current):
                return current, False
            job_id = submit()
            self._jobs[client_id] = job_id
            return job_id, True

    def adopt(self, client_id: str, job_id: str) -> bool:
        """Record a job the browser remembers (after an app restart the table is empty). Refused when another
        browser owns it."""
        with self._lock:
            if any(job == job_id and client != client_id for client, job in self._jobs.items()):
                return False
            self._jobs[client_id] = job_id
            return True

    def job_of(self, client_id: str | None) -> str | None:
        if not client_id:
            return None
        with self._lock:
            return self._jobs.get(client_id)

    def owner_of(self, job_id: str) -> str | None:
        with self._lock:
            return next((client for client, job in self._jobs.items() if job == job_id), None)
