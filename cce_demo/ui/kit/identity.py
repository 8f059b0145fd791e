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


def address_of(request: Any) -> str:
    """The caller's address as uvicorn reports it (see the module docstring); "unknown" without a request."""
    client = getattr(request, "client", None) if request is not None else None
    host = getattr(client, "host", None)
    if not (isinstance(host, str) and host):
        return UNKNOWN_ADDRESS
    if public_mode() and host not in _PROXIES_WARNED_ABOUT:
        headers = getattr(request, "headers", None) or {}
        if behind_an_untrusted_proxy(host, headers.get("x-forwarded-for")):
            _PROXIES_WARNED_ABOUT.add(host)
            logger.warning(
                "requests arrive through a proxy at %s that FORWARDED_ALLOW_IPS does not trust: every visitor counts "
                "as that one address, so all share one job slot, one set of rate limits and one owner for Stop and "
                "Delete through the API; set FORWARDED_ALLOW_IPS=%s (the proxy's address) so that visitors are told apart",
                host, host)
    return host


_PROXIES_WARNED_ABOUT: set[str] = set()  # one warning per proxy address and process


def behind_an_untrusted_proxy(host: str, forwarded_for: str | None) -> bool:
    """Whether a request came through a proxy whose X-Forwarded-For uvicorn ignored. A trusted proxy's header
    names the client, and uvicorn reports one of its entries as the address; an ignored header leaves the
    proxy's own address, which the header (the hops before the proxy) does not list."""
    if not forwarded_for:
        return False
    return host not in {entry.strip() for entry in forwarded_for.split(",")}


def address_key(request: Any) -> str:
    """The job manager's client id for a caller: one per address, so the per-visitor job cap counts addresses."""
    return ADDRESS_PREFIX + address_of(request)


def public_mode(environ: Mapping[str, str] = os.environ) -> bool:
    """On a Hugging Face Space (SPACE_ID set) the app is public: owner checks and rate limits apply. Locally the
    owner of the machine may do everything."""
    return bool(environ.get("SPACE_ID"))
