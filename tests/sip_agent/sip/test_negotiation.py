"""Per-call LargeSC bookkeeping: both ends of an exchange played out in one process, without pjsua2."""

from __future__ import annotations

import pytest

from largesc_codec.wire.offer_answer import LargeScParams
from sip_agent.sip.negotiation import LargeScNegotiation

from .test_sdp_munge import BARESIP_ANSWER, PJSUA_OFFER

pytestmark = pytest.mark.sip


def ports(*values: int):  # type: ignore[no-untyped-def]
    """An allocator handing out ``values`` in turn (and counting how often it was asked)."""
    it = iter(values)
    calls: list[str] = []

    def allocate(host: str) -> int:
        calls.append(host)
        return next(it)

    allocate.calls = calls  # type: ignore[attr-defined]
    return allocate


def test_offer_then_answer_settles_both_sides() -> None:
    alloc_a, alloc_b = ports(40000), ports(42000)
    a = LargeScNegotiation("127.0.0.1", LargeScParams(maxbps=1100), alloc_a)
    b = LargeScNegotiation("127.0.0.1", LargeScParams(maxcodebooks=4), alloc_b)
    offer, note = a.rewrite(PJSUA_OFFER, "")
    assert offer is not None and note is None and not a.settled
    answer, note = b.rewrite(PJSUA_OFFER.replace("4000", "5000").replace("4002", "5002"), offer)
    assert answer is not None and note is None and b.settled
    a.peer_answered(answer)
    assert a.settled
    assert a.link is not None and b.link is not None and a.remote is not None and b.remote is not None
    assert (a.remote.port, b.remote.port) == (42000, 40000)
    assert a.link.payload_type == b.link.payload_type
    assert a.link.send == b.link.receive and b.link.send == a.link.receive  # each sends within what the other declared
    assert (a.link.send.maxcodebooks, a.link.send.maxbps) == (4, 1100)  # the answer never raises the offer
    assert (b.link.send.maxcodebooks, b.link.send.maxbps) == (8, 1100)


def test_the_port_is_taken_once_per_call() -> None:
    alloc = ports(40000, 40002)
    a = LargeScNegotiation("127.0.0.1", LargeScParams(), alloc)
    first, _ = a.rewrite(PJSUA_OFFER, "")
    again, _ = a.rewrite(PJSUA_OFFER, "")  # pjsua2's re-offer (codec lock, session refresh)
    assert first == again and alloc.calls == ["127.0.0.1"]  # type: ignore[attr-defined]


def test_a_rejecting_peer_leaves_the_call_on_the_fallback() -> None:
    a = LargeScNegotiation("127.0.0.1", LargeScParams(), ports(40000))
    a.rewrite(PJSUA_OFFER, "")
    a.peer_answered(BARESIP_ANSWER)
    assert not a.settled and a.link is None


def test_nothing_to_do_without_largesc_or_a_second_line() -> None:
    b = LargeScNegotiation("127.0.0.1", LargeScParams(), ports(42000))
    assert b.rewrite(PJSUA_OFFER, PJSUA_OFFER) == (None, None)  # an offer without LargeSC: pjsua2 answers alone
    one_line = PJSUA_OFFER[: PJSUA_OFFER.index("m=audio 4002")]
    assert b.rewrite(one_line, "") == (None, None)  # pjsua2 provisioned a single medium
    text, note = b.rewrite("", "")
    assert text is None and note is not None and "1024 bytes" in note


def test_another_version_is_declined_with_a_note() -> None:
    a = LargeScNegotiation("127.0.0.1", LargeScParams(), ports(40000))
    offer, _ = a.rewrite(PJSUA_OFFER, "")
    assert offer is not None
    b = LargeScNegotiation("127.0.0.1", LargeScParams(), ports(42000))
    text, note = b.rewrite(PJSUA_OFFER, offer.replace("version=1", "version=2"))
    assert text is None and note is not None and "version 2" in note and not b.settled


def test_an_answer_to_an_offer_beyond_the_codec_says_what_it_clamped() -> None:
    a = LargeScNegotiation("127.0.0.1", LargeScParams(), ports(40000))
    b = LargeScNegotiation("127.0.0.1", LargeScParams(), ports(42000))
    offer, _ = a.rewrite(PJSUA_OFFER, "")
    assert offer is not None and "maxbps=2062.5" in offer
    offer = offer.replace("maxbps=2062.5", "maxbps=1e308")
    answer, note = b.rewrite(PJSUA_OFFER.replace("4000", "5000").replace("4002", "5002"), offer)
    assert answer is not None and b.link is not None
    assert note is not None and "maxbps=1e+308 -> 70400" in note
    assert b.link.send.maxbps == 70400 and "maxbps=2062.5" in answer  # our answer keeps our own wish
