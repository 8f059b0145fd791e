"""Public mode explains itself (issue 20): on a Space (SPACE_ID set, `budget.Limits.from_environment`) the
Train & compare tab opens with a short panel of the limits that apply to the visitor, and what happens to the
runs; the refusal messages are plain text. Pure functions of the limits and the storage note."""
from __future__ import annotations

import re

from ...budget import Limits, describe_duration
from ..kit.charts import escape


def public_panel_html(limits: Limits, storage_note: str = "") -> str:
    """The panel: minutes per job, jobs per visitor, runs kept, and that storage is temporary (download what you
    want to keep). Every figure is read from `limits`; where the runs are kept and whether a restart keeps them
    is app.py's own finding (`storage_note`), else the Space's default: the container's disk, wiped on restart."""
    items = []
    if limits.max_job_minutes is not None:
        items.append(f"Jobs up to <b>{escape(describe_duration(limits.max_job_minutes * 60))}</b> each (estimated before "
                     f"they are queued; a job still running at {escape(describe_duration(limits.job_time_limit_seconds))} "
                     "is stopped and keeps what it trained).")
    if limits.max_jobs_per_client is not None:
        count = limits.max_jobs_per_client
        items.append(f"<b>{count}</b> queued or running job{'s' if count != 1 else ''} per visitor.")
    kept = []
    if limits.keep_runs is not None:
        kept.append(f"the newest <b>{limits.keep_runs}</b> runs")
    if limits.max_runs_mb is not None:
        kept.append(f"at most <b>{limits.max_runs_mb:g} MB</b> of runs")
    if kept:
        items.append(f"Only {' and '.join(kept)} are kept; older runs are removed, yours too.")
    storage = escape(storage_note) if storage_note else (
        "Storage here is <b>temporary</b>: a restart of the Space removes every run.")
    if "download" not in storage_note.lower():  # app.py's note on a Space already says it
        storage += " Download the runs you want to keep (Runs tab, <i>Download run (.zip)</i>)."
    items.append(storage)
    lis = "".join(f"<li>{item}</li>" for item in items)
    return (f'<div class="cc-card" id="public-panel" role="note"><b>This is a public demo, shared with everyone.</b>'
            f'<ul style="margin:4px 0 0 18px">{lis}</ul></div>')


def plain_text(message: str) -> str:
    """A message for a toast, which shows text as it is: `code` spans lose their backticks (quoted instead)."""
    return re.sub(r"`([^`]*)`", r"“\1”", message)
