"""The one vocabulary for where a job or run stands, shared by the engine, the job manager, run directories,
the CLI and the UI. A `StrEnum`, so a status is also its plain string in JSON and in comparisons."""
from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    # The app stopped (crash, restart) while the run was training: its directory says "running" but no
    # process owns it any more.
    INTERRUPTED = "interrupted"
    # Ran past its time budget by more than the allowed margin; keeps what it trained, like a cancel.
    TIMED_OUT = "timed out"
    # Engine-only: a loss stopped being finite. The job manager and the CLI record it as FAILED.
    DIVERGED = "diverged"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED

    @property
    def label(self) -> str:
        """How people read it ("Timed out")."""
        return self.value.capitalize()


FINISHED = frozenset({
    JobStatus.DONE, JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.INTERRUPTED, JobStatus.TIMED_OUT, JobStatus.DIVERGED,
})


def recorded_status(engine_status: JobStatus | str) -> JobStatus:
    """The status a job and its run directory record for the engine's outcome, decided here once: a diverged
    run is a failed one (its reason says that it diverged and at which step); every other status is kept."""
    status = JobStatus(engine_status)
    return JobStatus.FAILED if status == JobStatus.DIVERGED else status


# A finished run whose models were stopped before the end (some or all epochs missing).
PARTIAL = frozenset({JobStatus.CANCELLED, JobStatus.INTERRUPTED, JobStatus.TIMED_OUT})
