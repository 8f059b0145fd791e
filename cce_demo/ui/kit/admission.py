"""Per-visitor limits on the expensive events (/classify, /import_run, /export_run and their buttons), so that
one visitor can neither fill Gradio's event queue nor starve the training worker of CPU.

Gradio has one queue for every event of every visitor (`QUEUE_SIZE` in app.py) and only global concurrency
limits, so a single client sending many events at once could fill it: other visitors' page loads were then
refused with "Queue is full". The limits here act where an event asks to join the queue (before it takes a
place) and count per address (`identity.address_of`), which a visitor cannot multiply by opening pages:

- at most `waiting` events of a group waiting per address, and `MAX_WAITING_PER_ADDRESS` of all kinds;
- at most `per_minute` events of a group started per address in any 60 s;
- at most `running` of a group running at once per address (checked in the handler, `InFlight`).

They apply in public mode (a Space); locally the machine's owner may flood their own app. A refusal is one
log line (at most one per address and group a minute) and, for the client, a 503 answer sent after
`REFUSAL_DELAY_SECONDS`: a client that retries at once in a loop (bench/flood.py measured 380 refused joins a
second from 8 such clients, which cost the niced training job more than the work they asked for) waits
instead, at no CPU cost to the server.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import defaultdict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from .identity import address_of

log = logging.getLogger("cce_demo.ui")

WINDOW_SECONDS = 60.0
MAX_WAITING_PER_ADDRESS = 16  # a page's own events (load, ticks, clicks) never come near this
LOG_EVERY_SECONDS = 60.0
REFUSAL_DELAY_SECONDS = 1.0  # a tarpit: an asyncio sleep, so a refused client waits and the server idles


@dataclass(frozen=True)
class GroupLimit:
    waiting: int  # events of the group one address may have waiting in the queue
    per_minute: int  # events of the group one address may start in any 60 s
    running: int  # events of the group one address may have running at once

    def __post_init__(self) -> None:
        for name in ("waiting", "per_minute", "running"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a whole number >= 1, got {value!r}")


# Keyed by the events' concurrency_id (wiring.py and api.py use these two).
# A person classifies a few images a minute and moves a run or two; each accepted call still costs Gradio an
# upload, a queue place and an event stream, and the training thread runs niced, so these stay small
# (bench/flood.py: 8 flooding clients at these limits).
GROUP_LIMITS: Mapping[str, GroupLimit] = {
    "classify": GroupLimit(waiting=2, per_minute=12, running=1),
    "transfer": GroupLimit(waiting=2, per_minute=6, running=1),
}


class SlidingWindow:
    """At most `limit` events per key in any `seconds`; `allow` records the event when it is allowed."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.seconds, self._clock = limit, seconds, clock
        self._times: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            times = self._times[key]
            while times and now - times[0] >= self.seconds:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            if len(self._times) > 10_000:  # forget idle keys: bounded memory under many addresses
                for idle in [k for k, v in self._times.items() if not v or now - v[-1] >= self.seconds]:
                    del self._times[idle]
            return True


class RefusedError(RuntimeError):
    """A per-visitor limit refused this request; the message says which and when to try again."""


@dataclass
class Admission:
    """The limits of one app (shared by all its pages)."""

    enabled: bool
    groups: Mapping[str, GroupLimit] = field(default_factory=lambda: dict(GROUP_LIMITS))
    max_waiting: int = MAX_WAITING_PER_ADDRESS
    clock: Callable[[], float] = time.monotonic
    refusal_delay: float = REFUSAL_DELAY_SECONDS

    def __post_init__(self) -> None:
        self._windows = {group: SlidingWindow(limit.per_minute, WINDOW_SECONDS, self.clock) for group, limit in self.groups.items()}
        self._running: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        self._logged: dict[tuple[str, str], float] = {}

    def refusal(self, address: str, group: str | None, waiting_in_group: int, waiting_total: int) -> str | None:
        """Why this address may not queue one more event of `group` now, or None. Counts the event when it
        is admitted."""
        if not self.enabled:
            return None
        if waiting_total >= self.max_waiting:
            return self._refused(address, "all", f"Too many requests from your address are waiting ({waiting_total}); "
                                                  "wait for them to finish.")
        limit = self.groups.get(group or "")
        if limit is None:
            return None
        if waiting_in_group >= limit.waiting:
            return self._refused(address, group, f"You already have {waiting_in_group} {group} requests waiting (limit "
                                                 f"{limit.waiting} per visitor); wait for them to finish.")
        if not self._windows[group].allow(address):
            return self._refused(address, group, f"Too many {group} requests (limit {limit.per_minute} a minute per "
                                                 "visitor); try again in a minute.")
        return None

    @contextmanager
    def running(self, address: str, group: str) -> Iterator[None]:
        """Hold one of the address's `running` places of `group` while the handler works; raises RefusedError
        when they are all taken."""
        limit = self.groups.get(group)
        if not self.enabled or limit is None:
            yield
            return
        key = (address, group)
        with self._lock:
            if self._running[key] >= limit.running:
                message = self._refused(address, group, f"One {group} request at a time per visitor; wait for the "
                                                        "previous one to finish.")
                raise RefusedError(message)
            self._running[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[key] -= 1
                if self._running[key] <= 0:
                    del self._running[key]

    def _refused(self, address: str, group: str, message: str) -> str:
        """The message, logged as one line at most once a minute per address and group (a flood must not
        flood the log too)."""
        now = self.clock()
        key = (address, group)
        if now - self._logged.get(key, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
            self._logged[key] = now
            log.warning("refused (%s, %s): %s", group, address, message)
        return message


# ---------------------------------------------------------------- where events join Gradio's queue


def waiting_of(queue: Any, address: str) -> tuple[dict[str | None, int], int]:
    """The address's events waiting in a Gradio queue: per concurrency id, and in all. Reads the queue's
    event lists (Gradio has no public view of them); anything unexpected counts as nothing."""
    by_group: dict[str | None, int] = defaultdict(int)
    total = 0
    for event_queue in list(getattr(queue, "event_queue_per_concurrency_id", {}).values()):
        for event in list(getattr(event_queue, "queue", ())):
            if address_of(getattr(event, "request", None)) == address:
                by_group[getattr(event, "concurrency_id", None)] += 1
                total += 1
    return by_group, total


def guard_queue(queue: Any, admission: Admission) -> None:
    """Wrap `queue.push` (where /queue/join puts an event in) with the per-address limits. A refused event
    is answered as Gradio answers a full queue (HTTP 503 with the message), before it takes a place."""
    if getattr(queue, "_cce_guarded", False):
        return
    original = queue.push

    @functools.wraps(original)
    async def push(body: Any, request: Any, username: Any) -> Any:
        fn = getattr(getattr(queue, "blocks", None), "fns", {}).get(getattr(body, "fn_index", None))
        group = getattr(fn, "concurrency_id", None)
        address = address_of(request)
        by_group, total = waiting_of(queue, address)
        message = admission.refusal(address, group, by_group.get(group, 0), total)
        if message is not None:
            await asyncio.sleep(admission.refusal_delay)
            return False, message, "queue_full"
        return await original(body, request, username)

    queue.push = push
    queue._cce_guarded = True
