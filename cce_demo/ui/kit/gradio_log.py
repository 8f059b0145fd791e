"""Gradio-level refusals as one log line.

When Gradio itself refuses an event (a value its component cannot preprocess, a file outside its upload
folder, a malformed request), it prints the whole traceback, once per request: a client sending garbage
could fill the log with tracebacks of Gradio's internals. Our handlers' expected refusals are already one
line (errors.py). Here Gradio's queue and route modules get a `traceback` that prints one warning line for an
exception raised inside Gradio, and the full traceback, as before, for one that passed through this app's
code (a bug of ours must stay loud).
"""
from __future__ import annotations

import logging
import sys
import traceback as real_traceback
from pathlib import Path
from typing import Any

log = logging.getLogger("cce_demo.ui")
APP_PACKAGE = str(Path(__file__).resolve().parent.parent)  # the cce_demo package


def raised_in_app(error: BaseException) -> bool:
    """Whether the exception's traceback runs through this app's code."""
    return any(frame.filename.startswith(APP_PACKAGE) for frame in real_traceback.extract_tb(error.__traceback__))


class OneLineTracebacks:
    """A stand-in for the `traceback` module inside Gradio's modules: only `print_exc` differs."""

    def print_exc(self, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if error is None or raised_in_app(error):
            real_traceback.print_exc(*args, **kwargs)
            return
        log.warning("refused (gradio): %s: %s", type(error).__name__, str(error)[:300])

    def __getattr__(self, name: str) -> Any:
        return getattr(real_traceback, name)


def install() -> None:
    """Swap the stand-in into the Gradio modules that print request tracebacks (idempotent)."""
    import gradio.queueing
    import gradio.routes

    for module in (gradio.queueing, gradio.routes):
        if not isinstance(getattr(module, "traceback", None), OneLineTracebacks):
            module.traceback = OneLineTracebacks()
