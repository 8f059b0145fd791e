"""Who is asking: a visitor identity the server issues and signs, and the client address it is seen from.

Nothing a client sends is taken at its word. A browser is given a random visitor id together with an HMAC of
it under a secret that exists only in this process (never in `/config`, never on disk, new at every start).
The page keeps the signed token in its localStorage (`gr.BrowserState`) so that a reload proves it is the
same visitor; the server checks the token on every page load and then holds the visitor in a `gr.State`,
which lives on the server, keyed by the Gradio session. Every later event of that page (Start, Stop,
Delete…) reads the visitor from there, so a forged or replayed client id in a request changes nothing, and
a request from a session that never loaded the page has no visitor at all.

API callers have no page: they are identified by their address. So is everything that must not be
multiplied by opening more pages (the job cap, rate limits, import quotas): a visitor can mint sessions,
not addresses. The address is `request.client.host` as uvicorn reports it, which takes X-Forwarded-For only
from a connection whose own address is in FORWARDED_ALLOW_IPS (default: loopback), i.e. from the proxy in
front of the app; anyone else's X-Forwarded-For is ignored.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any, Mapping

TOKEN_VERSION = "v1"
VISITOR_ID = re.compile(r"^[0-9a-f]{32}\Z")
ADDRESS_PREFIX = "address:"  # the manager's client id for everything asked from one address
UNKNOWN_ADDRESS = "unknown"
logger = logging.getLogger("cce_demo")


@dataclass(frozen=True)
class Visitor:
    """A browser visitor as the server issued it (held in a server-side `gr.State`, never read from a request)."""

    id: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not VISITOR_ID.match(self.id):
            raise ValueError(f"visitor id: expected 32 hex digits, got {self.id!r}")


class VisitorSigner:
    """Issues visitor ids and checks the tokens that prove them. The secret is per process unless a test passes
    one; it is never sent to a client."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def _mac(self, visitor_id: str) -> str:
        return hmac.new(self._secret, f"{TOKEN_VERSION}:{visitor_id}".encode(), hashlib.sha256).hexdigest()

    def token_for(self, visitor: Visitor) -> str:
        return f"{TOKEN_VERSION}.{visitor.id}.{self._mac(visitor.id)}"

    def issue(self) -> Visitor:
        return Visitor(secrets.token_hex(16))

    def verify(self, token: Any) -> Visitor | None:
        """The visitor a token proves, or None for anything else (forged, from another process, garbage)."""
        if not isinstance(token, str) or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION or not VISITOR_ID.match(parts[1]):
            return None
        if not hmac.compare_digest(parts[2], self._mac(parts[1])):
            return None
        return Visitor(parts[1])

    def recognise(self, token: Any) -> tuple[Visitor, bool]:
        """The visitor a token proves, or a newly issued one: (visitor, whether it is new)."""
        visitor = self.verify(token)
        return (visitor, False) if visitor is not None else (self.issue(), True)


# Per proxy address, the distinct clients its X-Forwarded-For named (up to two), for `notice_untrusted_proxy`;
# bounded, so that a stream of addresses cannot grow it.
_FORWARDED_CLIENTS: dict[str, set[str]] = {}
_TRACKED_PROXIES = 64


def address_of(request: Any) -> str:
    """The caller's address as uvicorn reports it (see the module docstring); "unknown" without a request."""
    client = getattr(request, "client", None) if request is not None else None
    host = getattr(client, "host", None)
    if not (isinstance(host, str) and host):
        return UNKNOWN_ADDRESS
    if public_mode():
        notice_untrusted_proxy(host, forwarded_for_entries(getattr(request, "headers", None)))
    return host


def forwarded_for_entries(headers: Any) -> list[str]:
    """The hosts an X-Forwarded-For header names (every header line, ports stripped as uvicorn strips them)."""
    if not headers:
        return []
    getlist = getattr(headers, "getlist", None)
    values = getlist("x-forwarded-for") if callable(getlist) else [headers.get("x-forwarded-for") or ""]
    hosts = []
    for entry in ", ".join(values).split(","):
        entry = entry.strip()
        if entry.startswith("[") and "]" in entry:  # [IPv6]:port
            entry = entry[1:entry.index("]")]
        elif entry.count(":") == 1:  # IPv4:port (a bare IPv6 address has several colons)
            entry = entry.split(":")[0]
        if entry:
            hosts.append(entry)
    return hosts


def behind_an_untrusted_proxy(host: str, forwarded_hosts: list[str]) -> bool:
    """Whether a request may have come through a proxy whose X-Forwarded-For uvicorn ignored. A trusted
    proxy's header names the client, and uvicorn reports one of its entries as the address; an ignored header
    leaves the connection's own address, which the header (the hops before it) does not list."""
    return bool(forwarded_hosts) and host not in forwarded_hosts


def notice_untrusted_proxy(host: str, forwarded_hosts: list[str]) -> bool:
    """Log once when `host` looks like a reverse proxy the app does not trust: it forwarded at least two
    different clients (one client behind its own forward proxy, or a forged header, names only itself).
    Returns whether this call logged."""
    if not behind_an_untrusted_proxy(host, forwarded_hosts):
        return False
    if host not in _FORWARDED_CLIENTS and len(_FORWARDED_CLIENTS) >= _TRACKED_PROXIES:
        return False
    clients = _FORWARDED_CLIENTS.setdefault(host, set())
    if len(clients) >= 2:
        return False  # already reported
    clients.add(forwarded_hosts[0])
    if len(clients) < 2:
        return False
    logger.warning(
        "requests from %s carry X-Forwarded-For for different clients, which FORWARDED_ALLOW_IPS does not let the "
        "app believe: every visitor behind it counts as that one address (one job slot, one set of rate limits, "
        "one owner for /cancel_job). If %s is the reverse proxy in front of the app, set FORWARDED_ALLOW_IPS=%s",
        host, host, host)
    return True


def address_key(request: Any) -> str:
    """The job manager's client id for a caller: one per address, so the per-visitor job cap counts addresses."""
    return ADDRESS_PREFIX + address_of(request)


def public_mode(environ: Mapping[str, str] = os.environ) -> bool:
    """On a Hugging Face Space (SPACE_ID set) the app is public: owner checks and rate limits apply. Locally the
    owner of the machine may do everything."""
    return bool(environ.get("SPACE_ID"))
