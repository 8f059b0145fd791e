"""Expected user errors (a bad upload, an invalid setting, a full queue): one line in the server log and a
message for the person, never a traceback. Gradio prints a traceback for every `gr.Error` unless it is
raised with `print_exception=False`; `user_error` does that and logs the one line itself."""
from __future__ import annotations

import logging

import gradio as gr

log = logging.getLogger("cce_demo.ui")


def user_error(message: str, where: str = "") -> gr.Error:
    """A `gr.Error` for the person, logged as one line. Raise it: `raise user_error(str(error), "start") from None`."""
    log.warning("refused%s: %s", f" ({where})" if where else "", message)
    return gr.Error(message, print_exception=False)


def note_user_error(message: str, where: str = "") -> None:
    """Log an expected error that a handler shows in the page itself (no exception raised)."""
    log.warning("refused%s: %s", f" ({where})" if where else "", message)
