"""The per-visitor limits as pure logic (admission.py): a fake clock, no server."""
import pytest

from cce_demo.ui.kit.admission import Admission, GroupLimit, RefusedError, SlidingWindow
from cce_demo.ui.kit.identity import VisitorSigner, address_key, address_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_sliding_window_admits_its_limit_per_key_and_forgets_after_the_window():
    clock = Clock()
    window = SlidingWindow(3, 60.0, clock)
    assert [window.allow("a") for _ in range(4)] == [True, True, True, False]
    assert window.allow("b")  # another address has its own window
    clock.now = 60.0
    assert window.allow("a")


def test_admission_refuses_by_waiting_events_then_by_rate():
    clock = Clock()
    admission = Admission(enabled=True, groups={"classify": GroupLimit(waiting=2, per_minute=3, running=1)}, max_waiting=5,
                          clock=clock)
    assert admission.refusal("a", "classify", 0, 0) is None
    assert "2 classify requests waiting" in admission.refusal("a", "classify", 2, 2)
    assert "waiting (5)" in admission.refusal("a", "load", 0, 5)  # every kind counts towards the total
    assert admission.refusal("a", "classify", 1, 1) is None and admission.refusal("a", "classify", 1, 1) is None
    assert "limit 3 a minute" in admission.refusal("a", "classify", 0, 0)
    assert admission.refusal("a", None, 0, 0) is None  # page events (load, ticks) have no group limit
    assert Admission(enabled=False).refusal("a", "classify", 99, 99) is None  # locally: no limits


def test_one_running_event_per_address_and_group():
    admission = Admission(enabled=True)
    with admission.running("a", "classify"):
        with pytest.raises(RefusedError, match="One classify request at a time"):
            with admission.running("a", "classify"):
                pass
        with admission.running("b", "classify"):  # another visitor is not held up
            pass
    with admission.running("a", "classify"):  # released when the first finished
        pass


def test_limits_are_validated():
    with pytest.raises(ValueError, match="waiting"):
        GroupLimit(waiting=0, per_minute=1, running=1)


def test_identity_helpers():
    class Request:
        class client:
            host = "203.0.113.9"

    assert address_of(Request()) == "203.0.113.9" and address_key(Request()) == "address:203.0.113.9"
    assert address_of(None) == "unknown"
    signer = VisitorSigner(b"k" * 32)
    visitor, new = signer.recognise(None)
    assert new and signer.recognise(signer.token_for(visitor)) == (visitor, False)
    assert signer.verify("v1.../..") is None and signer.verify(None) is None and signer.verify("x" * 500) is None


def test_a_proxy_the_app_does_not_trust_is_named_once_in_public_mode(monkeypatch, caplog):
    from cce_demo.ui.kit import identity

    class Headers(dict):  # starlette's Headers: one value per header line
        def getlist(self, name):
            return self.get(name, [])

    class Request:
        def __init__(self, host, *forwarded_for):
            self.client = type("Client", (), {"host": host})()
            self.headers = Headers({"x-forwarded-for": list(forwarded_for)} if forwarded_for else {})

    # Every header line counts, and ports are stripped as uvicorn strips them.
    assert identity.forwarded_for_entries(Headers({"x-forwarded-for": ["203.0.113.9:5555", "[2001:db8::1]:443, 10.1.1.1"]})) \
        == ["203.0.113.9", "2001:db8::1", "10.1.1.1"]
    assert identity.forwarded_for_entries({"x-forwarded-for": "2001:db8::2"}) == ["2001:db8::2"]
    # uvicorn reports a trusted proxy's client (an entry of the header); an ignored header leaves the
    # connection's own address, which the header does not list; an empty header proves nothing.
    assert identity.behind_an_untrusted_proxy("10.0.0.5", ["203.0.113.9"])
    assert not identity.behind_an_untrusted_proxy("203.0.113.9", ["203.0.113.9", "10.0.0.5"])
    assert not identity.behind_an_untrusted_proxy("203.0.113.9", [])
    monkeypatch.setattr(identity, "_FORWARDED_CLIENTS", {})
    monkeypatch.delenv("SPACE_ID", raising=False)
    with caplog.at_level("WARNING", logger="cce_demo"):
        assert address_of(Request("10.0.0.5", "203.0.113.9")) == "10.0.0.5"  # locally: no public limits to break
        assert address_of(Request("10.0.0.5", "198.51.100.7")) == "10.0.0.5"
        assert not caplog.records
        monkeypatch.setenv("SPACE_ID", "someone/cce-demo")
        # One client behind its own forward proxy (or forging the header) names only itself: no advice.
        for _ in range(3):
            address_of(Request("192.0.2.44", "192.0.2.45"))
        assert not caplog.records
        # A reverse proxy forwards many visitors: named once, however many follow.
        for visitor in ("203.0.113.9", "198.51.100.7", "198.51.100.8"):
            assert address_of(Request("10.0.0.5", visitor)) == "10.0.0.5"
        assert address_of(Request("203.0.113.9", "203.0.113.9:4444")) == "203.0.113.9"  # a trusted proxy's answer
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "FORWARDED_ALLOW_IPS=10.0.0.5" in warnings[0] and "If 10.0.0.5 is the reverse proxy" in warnings[0]
