"""The SDP rewrites that put LargeSC beside pjsua2's own audio line (pure text, no pjsua2).

The inputs are SDP bodies as pjsua2 2.15 wrote them on the wire (captured
with ``--sip-log``), so the tests exercise the shapes the agent really meets.
"""

from __future__ import annotations

import pytest

from largesc_codec.wire.offer_answer import LargeScParams, media_codecs
from rtp import sdp
from sip_agent.sip import sdp_munge

pytestmark = pytest.mark.sip

# pjsua2's offer for a call made with two audio media (CallSetting.audioCount = 2).
PJSUA_OFFER = (
    "v=0\r\no=- 4004546523 4004546523 IN IP4 127.0.0.1\r\ns=pjmedia\r\nb=AS:151\r\nt=0 0\r\na=X-nat:0\r\n"
    "m=audio 4000 RTP/AVP 0 8 9 120\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\na=rtcp:4001 IN IP4 127.0.0.1\r\n"
    "a=sendrecv\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=ssrc:1854745079 cname:53da10be084614b5\r\n"
    "m=audio 4002 RTP/AVP 0 8 9 120\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\na=rtcp:4003 IN IP4 127.0.0.1\r\n"
    "a=sendrecv\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=ssrc:633738500 cname:53da10be084614b5\r\n"
)
# baresip 1.0's answer to such an offer: it rejects the LargeSC line with port 0.
BARESIP_ANSWER = (
    "v=0\r\no=- 253679205 1175474239 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:baresip 1.0.0\r\nm=audio 30064 RTP/AVP 0 8 120\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-15\r\na=sendrecv\r\na=ptime:20\r\nm=audio 0 RTP/AVP 0\r\n"
)


def offer() -> tuple[str, int]:
    text, pt, index = sdp_munge.offer_largesc(PJSUA_OFFER, "127.0.0.1", 40000, LargeScParams(maxcodebooks=6, maxbps=1100))
    assert index == 1
    return text, pt


def test_offer_replaces_the_last_line_and_keeps_pjsuas_line() -> None:
    text, pt = offer()
    session = sdp.parse(text)
    assert len(session.media) == 2
    assert session.media[0] == sdp.parse(PJSUA_OFFER).media[0]  # pjsua2's own line untouched
    largesc = session.media[1]
    assert (largesc.port, largesc.formats) == (40000, (str(pt),))
    assert largesc.connection is not None and largesc.connection.address == "127.0.0.1"  # pjmedia asserts without c=
    codecs = media_codecs(largesc)
    assert [c.name for c in codecs] == ["LargeSC"] and codecs[0].params == LargeScParams(maxcodebooks=6, maxbps=1100)
    assert largesc.has("sendrecv")


def test_offer_payload_type_avoids_the_ones_in_use() -> None:
    busy = PJSUA_OFFER.replace("RTP/AVP 0 8 9 120\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\na=rtcp:4001",
                               "RTP/AVP 96 97 0\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\na=rtcp:4001", 1)
    _, pt, _ = sdp_munge.offer_largesc(busy, "127.0.0.1", 40000, LargeScParams())
    assert pt == 98


def test_offer_needs_two_lines() -> None:
    one_line = PJSUA_OFFER[: PJSUA_OFFER.index("m=audio 4002")]
    with pytest.raises(ValueError, match="audioCount = 2"):
        sdp_munge.offer_largesc(one_line, "127.0.0.1", 40000, LargeScParams())


def test_find_largesc_only_on_a_dedicated_active_line() -> None:
    text, pt = offer()
    found = sdp_munge.find_largesc(text)
    assert found is not None
    assert (found.index, found.port, found.payload_type, found.address) == (1, 40000, pt, "127.0.0.1")
    mixed = text.replace(f"m=audio 40000 RTP/AVP {pt}", f"m=audio 40000 RTP/AVP {pt} 0")
    assert sdp_munge.find_largesc(mixed) is None  # shares a line with PCMU: pjsua2's business
    assert sdp_munge.find_largesc(text.replace("m=audio 40000", "m=audio 0")) is None
    assert sdp_munge.find_largesc(PJSUA_OFFER) is None
    assert sdp_munge.find_largesc("not sdp at all") is None


def test_answer_accepts_largesc_and_idles_the_fallback_line() -> None:
    text, pt = offer()
    offered = sdp_munge.find_largesc(text)
    assert offered is not None
    ours = LargeScParams(maxcodebooks=8, maxbps=2062.5, maxred=5)
    done = sdp_munge.answer_largesc(PJSUA_OFFER.replace("4000", "5000").replace("4002", "5002"),
                                    offered, "127.0.0.1", 42000, ours)
    assert done is not None
    answer, answered = done
    assert answered == LargeScParams(maxcodebooks=6, maxbps=1100, maxred=5)  # never above the offer; own maxred
    session = sdp.parse(answer)
    assert session.media[0].has("inactive") and not session.media[0].has("sendrecv")
    assert sdp_munge.accepted_largesc(answer, pt, 1) == sdp_munge.LargeScMedia(1, "127.0.0.1", 42000, pt, answered)
    assert sdp_munge.accepted_largesc(answer, pt + 1, 1) is None
    assert sdp_munge.accepted_largesc(answer, pt, 0) is None


def test_answer_accepts_a_largesc_line_listed_first() -> None:
    # a peer that puts its dedicated LargeSC line before its standard one (our own offers list it
    # second: baresip and sipp answer the first audio line only, see docs/sip.md)
    text, pt = offer()
    session = sdp.parse(text)
    first = sdp.serialize(session.with_media((session.media[1], session.media[0])))
    offered = sdp_munge.find_largesc(first)
    assert offered is not None and (offered.index, offered.port, offered.payload_type) == (0, 40000, pt)
    done = sdp_munge.answer_largesc(PJSUA_OFFER, offered, "127.0.0.1", 42000, LargeScParams())
    assert done is not None
    answer = sdp.parse(done[0])
    assert answer.media[1].has("inactive") and answer.media[0].port == 42000
    assert sdp_munge.accepted_largesc(done[0], pt, 0) is not None


def test_answer_reverses_the_direction() -> None:
    text, _ = offer()
    offered = sdp_munge.find_largesc(text.replace("a=sendrecv\r\n", "a=sendonly\r\n"))
    assert offered is not None and offered.direction == "sendonly"
    done = sdp_munge.answer_largesc(PJSUA_OFFER, offered, "127.0.0.1", 42000, LargeScParams())
    assert done is not None and sdp.parse(done[0]).media[1].has("recvonly")


def test_answer_refuses_another_version() -> None:
    text, _ = offer()
    offered = sdp_munge.find_largesc(text.replace("version=1", "version=2"))
    assert offered is not None
    assert sdp_munge.answer_largesc(PJSUA_OFFER, offered, "127.0.0.1", 42000, LargeScParams()) is None


def test_a_rejected_line_is_no_acceptance() -> None:
    _, pt = offer()
    assert sdp_munge.accepted_largesc(BARESIP_ANSWER, pt, 1) is None


def test_sdp_body_of_a_sip_message() -> None:
    msg = "SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nc: application/sdp\r\nContent-Length: 9\r\n\r\n" + BARESIP_ANSWER
    assert sdp_munge.sdp_body(msg) == BARESIP_ANSWER
    assert sdp_munge.sdp_body("SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n") is None
    assert sdp_munge.sdp_body("SIP/2.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello") is None


def test_audio_lines() -> None:
    assert sdp_munge.audio_lines(PJSUA_OFFER) == 2
    assert sdp_munge.audio_lines("garbage") == 0
