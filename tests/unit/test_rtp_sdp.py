"""SDP syntax, LargeSC rtpmap/fmtp and offer/answer rules, malformed SDP."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rtp import sdp
from rtp.offer_answer import (
    Codec,
    LargeScParams,
    default_codecs,
    make_answer,
    make_offer,
    media_codecs,
    negotiated,
)

PJSIP_LIKE = (
    "v=0\r\n"
    "o=- 3912345678 3912345679 IN IP4 192.0.2.10\r\n"
    "s=pjmedia\r\n"
    "b=AS:84\r\n"
    "t=0 0\r\n"
    "a=X-nat:0\r\n"
    "m=audio 4000 RTP/AVP 0 8 9 101\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "b=TIAS:64000\r\n"
    "a=rtcp:4001 IN IP4 192.0.2.10\r\n"
    "a=sendrecv\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ssrc:123 cname:abc\r\n"
    "m=video 0 RTP/AVP 31\r\n"
)


def test_parse_and_round_trip_real_world_sdp() -> None:
    sd = sdp.parse(PJSIP_LIKE)
    assert sd.origin.session_id == 3912345678 and sd.name == "pjmedia"
    assert sd.bandwidths == (("AS", 84),) and sd.attributes == (("X-nat", "0"),)
    audio = sd.media[0]
    assert audio.port == 4000 and audio.formats == ("0", "8", "9", "101")
    assert audio.connection == sdp.Connection("IN", "IP4", "192.0.2.10")
    assert audio.values("rtcp") == ["4001 IN IP4 192.0.2.10"] and audio.has("sendrecv")
    assert [c.name for c in media_codecs(audio)] == ["PCMU", "PCMA", "G722", "telephone-event"]
    assert sdp.parse(sdp.serialize(sd)) == sd
    assert sdp.parse(PJSIP_LIKE.replace("\r\n", "\n")) == sd


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("o=- 1 1 IN IP4 h\r\ns=x\r\n", "v=0"),
        ("v=0\r\ns=x\r\no=- 1 1 IN IP4 h\r\n", "line 2"),
        ("v=0\r\no=- 1 1 IN IP4\r\ns=x\r\n", "line 2 'o=- 1 1 IN IP4': expected 6 fields"),
        ("v=0\r\no=- x 1 IN IP4 h\r\ns=x\r\n", "session id 'x'"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0\r\n", "line 4 't=0'"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", "port 70000"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n", "at least one format"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\nthis is not sdp\r\n", "line 5 'this is not sdp'"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\nq=1\r\n", "unknown line type 'q'"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\nb=AS\r\n", "b=<type>"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4\r\n", "line 6"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nv=0\r\n", "only once"),
    ],
)
def test_malformed_sdp_names_the_line(text: str, where: str) -> None:
    with pytest.raises(ValueError, match=where.replace("(", r"\(")) as info:
        sdp.parse(text)
    assert "SDP" in str(info.value)


def test_offer_lists_largesc_first_with_fmtp() -> None:
    offer = make_offer(default_codecs(LargeScParams(maxcodebooks=12, maxbps=1650, ptime=160), 111), "127.0.0.1", 5004)
    text = sdp.serialize(offer)
    assert "m=audio 5004 RTP/AVP 111 0 8 9\r\n" in text
    assert "a=rtpmap:111 LargeSC/24000/1\r\n" in text
    assert "a=fmtp:111 maxcodebooks=12;maxbps=1650;ptime=160;maxred=3;version=1\r\n" in text
    codecs = media_codecs(sdp.parse(text).media[0])
    assert codecs[0] == Codec("LargeSC", 24000, 111, 1, LargeScParams(12, 1650.0, 160, 3, 1))
    assert [c.name for c in codecs[1:]] == ["PCMU", "PCMA", "G722"]


def test_answer_takes_minimum_and_larger_ptime() -> None:
    offer = make_offer(default_codecs(LargeScParams(maxcodebooks=16, maxbps=2000, ptime=80, maxred=5)), "10.0.0.1", 5004)
    mine = default_codecs(LargeScParams(maxcodebooks=8, maxbps=1100, ptime=240, maxred=2), 120)
    answer = sdp.parse(sdp.serialize(make_answer(offer, mine, "10.0.0.2", 6000)))
    chosen = negotiated(answer)
    assert chosen.payload_type == 96  # the offer's payload type number is kept
    assert chosen.params == LargeScParams(maxcodebooks=8, maxbps=1100, ptime=240, maxred=2, version=1)
    assert chosen.params.frames_per_packet == 3
    assert answer.media[0].port == 6000 and answer.media[0].has("sendrecv")


def test_answer_falls_back_when_largesc_is_missing_or_incompatible() -> None:
    legacy = sdp.parse(PJSIP_LIKE)
    answer = make_answer(legacy, default_codecs(), "10.0.0.2", 6000)
    assert negotiated(answer).name == "PCMU"
    assert answer.media[1].port == 0  # video rejected
    assert answer.media[0].values("rtcp") == []
    other_version = make_offer(default_codecs(LargeScParams(version=2)), "10.0.0.1", 5004)
    assert negotiated(make_answer(other_version, default_codecs(), "10.0.0.2", 6000)).name == "PCMU"
    only_largesc = make_offer(default_codecs()[:1], "10.0.0.1", 5004)
    rejected = make_answer(only_largesc, default_codecs()[1:], "10.0.0.2", 6000)
    assert rejected.media[0].port == 0
    with pytest.raises(ValueError, match="no active audio"):
        negotiated(rejected)


def test_answer_direction_and_rtcp_mux() -> None:
    offer = make_offer(default_codecs(), "10.0.0.1", 5004, rtcp_mux=True)
    audio = offer.media[0]
    sendonly = offer.with_media((replace(audio, attributes=audio.attributes[:-1] + (("sendonly", None),)),))
    answer = make_answer(sendonly, default_codecs(), "10.0.0.2", 6000)
    assert answer.media[0].has("recvonly") and answer.media[0].has("rtcp-mux")
    assert not make_answer(offer, default_codecs(), "10.0.0.2", 6000, rtcp_mux=False).media[0].has("rtcp-mux")


@pytest.mark.parametrize(
    ("fmtp", "message"),
    [
        ("maxcodebooks=40", "maxcodebooks 40"),
        ("maxcodebooks=eight", "maxcodebooks='eight'"),
        ("ptime=100", "ptime 100"),
        ("maxred=2.5", "maxred=2.5 must be an integer"),
        ("maxbps=0", "maxbps 0"),
        ("version", "not key=value"),
    ],
)
def test_bad_largesc_fmtp(fmtp: str, message: str) -> None:
    text = sdp.serialize(make_offer(default_codecs(), "10.0.0.1", 5004)).replace(
        "a=fmtp:96 maxcodebooks=8;maxbps=2062.5;ptime=80;maxred=3;version=1", f"a=fmtp:96 {fmtp}"
    )
    with pytest.raises(ValueError, match=message):
        media_codecs(sdp.parse(text).media[0])


def test_fmtp_defaults_and_ptime_attribute_hint() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 97\r\n"
        "a=rtpmap:97 largesc/24000\r\na=ptime:100\r\n"
    )
    codec = media_codecs(sdp.parse(text).media[0])[0]
    assert codec.is_largesc and codec.params == LargeScParams(ptime=160)
    with pytest.raises(ValueError, match="rtpmap"):
        media_codecs(sdp.parse(text.replace("largesc/24000", "largesc")).media[0])
