"""Gradio's queue spoken directly, as a hostile client would: join an event by its function index with any
session hash, headers and data, and read its result from the event stream. No gradio_client, no page."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

API = "gradio_api"


@dataclass(frozen=True)
class Answer:
    joined: bool  # the queue accepted the event
    status_code: int  # of the join
    success: bool  # the event completed without an error
    output: Any  # its outputs (data), or the refusal / error text

    @property
    def text(self) -> str:
        return self.output if isinstance(self.output, str) else json.dumps(self.output)


def fn_index(demo: Any, name: str) -> int:
    """The index of the (first) event whose handler is named `name` (wiring.bind keeps handler names)."""
    return next(index for index, fn in demo.fns.items() if getattr(fn, "name", None) == name)


def new_session() -> str:
    return uuid.uuid4().hex[:11]


def call(url: str, index: int, data: list[Any], session_hash: str | None = None, headers: dict[str, str] | None = None,
         timeout: float = 120.0) -> Answer:
    """Join event `index` with `data` in `session_hash`'s session and wait for its completion."""
    session_hash = session_hash or new_session()
    with httpx.Client(base_url=url, headers=headers or {}, timeout=timeout) as client:
        joined = client.post(f"{API}/queue/join", json={"data": data, "fn_index": index, "session_hash": session_hash,
                                                       "event_data": None, "trigger_id": None})
        if joined.status_code != 200:
            detail = joined.json().get("detail", joined.text) if "json" in joined.headers.get("content-type", "") else joined.text
            return Answer(False, joined.status_code, False, detail)
        event_id = joined.json()["event_id"]
        with client.stream("GET", f"{API}/queue/data", params={"session_hash": session_hash}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") not in (None, event_id) or message.get("msg") != "process_completed":
                    continue
                body = message.get("output") or {}
                if message.get("success"):
                    return Answer(True, 200, True, body.get("data"))
                return Answer(True, 200, False, body.get("error") or json.dumps(body))
    return Answer(True, 200, False, "the event stream ended without a result")
