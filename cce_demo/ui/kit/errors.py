"""Expected user errors (a bad upload, an invalid setting, a full queue): one line in the server log and a
message for the person, never a traceback. Gradio prints a traceback for every `gr.Error` unless it is
raised with `print_exception=False`; `user_error` does that and logs the one line itself.

Messages never show the server's own paths: a lower layer's message ("/srv/app/runs/x: run.json is
unreadable") names the run directory by its last component only (`without_paths`).
"""
from __future__ import annotations

import logging
import re

import gradio as gr

log = logging.getLogger("cce_demo.ui")

# An absolute path: a "/" that does not follow a word character, a dot, a colon or another "/" (so "and/or",
# "1/2" and URLs stay), then path components. Only its last component is kept.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~])/(?:[^\s/'\"(),;:]+/)*([^\s/'\"(),;:]+)/?")


def without_paths(message: str) -> str:
    """`message` with every absolute path cut to its last component ("/srv/app/runs/abc" -> "abc")."""
    return ABSOLUTE_PATH.sub(lambda match: match.group(1), str(message))


def user_error(message: str, where: str = "") -> gr.Error:
    """A `gr.Error` for the person, logged as one line. Raise it: `raise user_error(str(error), "start") from None`."""
    message = without_paths(message)
    log.warning("refused%s: %s", f" ({where})" if where else "", message)
    return gr.Error(message, print_exception=False)


def note_user_error(message: str, where: str = "") -> str:
    """Log an expected error that a handler shows in the page itself (no exception raised); returns the
    message as it may be shown."""
    message = without_paths(message)
    log.warning("refused%s: %s", f" ({where})" if where else "", message)
    return message
