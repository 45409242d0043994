"""SDP syntax, LargeSC rtpmap/fmtp and offer/answer rules, malformed SDP."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from largesc_codec.wire.offer_answer import (
    Codec,
    LargeScParams,
    agreement,
    default_codecs,
    make_answer,
    make_offer,
    media_codecs,
    negotiated,
)
from rtp import sdp

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
    params = LargeScParams(maxcodebooks=12, maxbps=1650, ptime=160, maxptime=480)
    offer = make_offer(default_codecs(params, 111), "127.0.0.1", 5004)
    text = sdp.serialize(offer)
    assert "m=audio 5004 RTP/AVP 111 0 8 9\r\n" in text
    assert "a=rtpmap:111 LargeSC/24000/1\r\n" in text
    assert "a=fmtp:111 maxcodebooks=12;maxbps=1650;maxred=3;version=1\r\n" in text
    assert "a=ptime:160\r\n" in text and "a=maxptime:480\r\n" in text
    codecs = media_codecs(sdp.parse(text).media[0])
    assert codecs[0] == Codec("LargeSC", 24000, 111, 1, params)
    assert [c.name for c in codecs[1:]] == ["PCMU", "PCMA", "G722"]


SPEC_OFFER = """v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/AVP 96 0
a=rtpmap:96 LargeSC/24000
a=fmtp:96 maxcodebooks=8;maxbps=2062.5;maxred=3;version=1
a=rtpmap:0 PCMU/8000
a=ptime:80
"""

SPEC_ANSWER = """v=0
o=bob 2808844564 2808844564 IN IP4 198.51.100.7
s=-
c=IN IP4 198.51.100.7
t=0 0
m=audio 51372 RTP/AVP 96
a=rtpmap:96 LargeSC/24000
a=fmtp:96 maxcodebooks=4;maxbps=1100;maxred=5;version=1
a=ptime:80
"""


def test_payload_format_spec_examples() -> None:
    """docs/payload-format.md 8.4: Alice sends Bob <= 4 codebooks, 1100 bit/s, distance 5; Bob sends Alice the defaults."""
    offer, answer = sdp.parse(SPEC_OFFER), sdp.parse(SPEC_ANSWER)
    alice = agreement(offer, answer, we_offered=True)
    bob = agreement(answer, offer, we_offered=False)
    assert alice.codec.name == bob.codec.name == "LargeSC" and alice.codec.payload_type == 96
    assert alice.send == LargeScParams(maxcodebooks=4, maxbps=1100, maxred=5) == bob.receive
    assert bob.send == LargeScParams() == alice.receive
    # Bob's own answer to Alice's offer, wishing 4 codebooks / 1100 bit/s / distance 5, is the spec's answer
    mine = default_codecs(LargeScParams(maxcodebooks=4, maxbps=1100, maxred=5))
    ours = make_answer(offer, mine, "198.51.100.7", 51372)
    assert media_codecs(ours.media[0])[0].params == LargeScParams(maxcodebooks=4, maxbps=1100, maxred=5)
    high_delay = SPEC_OFFER.replace("maxcodebooks=8;maxbps=2062.5;maxred=3;version=1", "maxbps=1100").replace(
        "a=ptime:80", "a=ptime:160\na=maxptime:480"
    )
    params = media_codecs(sdp.parse(high_delay).media[0])[0].params
    assert params == LargeScParams(maxbps=1100, ptime=160, maxptime=480) and params.frames_per_packet == 2


def test_answer_never_raises_above_the_offer_and_keeps_own_wishes() -> None:
    offer = make_offer(default_codecs(LargeScParams(maxcodebooks=16, maxbps=2000, ptime=80, maxred=5)), "10.0.0.1", 5004)
    mine = default_codecs(LargeScParams(maxcodebooks=32, maxbps=1100, ptime=240, maxred=2), 120)
    answer = sdp.parse(sdp.serialize(make_answer(offer, mine, "10.0.0.2", 6000)))
    chosen = negotiated(answer)
    assert chosen.payload_type == 96  # the offer's payload type number is kept
    assert chosen.params == LargeScParams(maxcodebooks=16, maxbps=1100, ptime=240, maxred=2)
    assert answer.media[0].port == 6000 and answer.media[0].has("sendrecv")
    offerer = agreement(offer, answer, we_offered=True)
    assert offerer.send is not None and offerer.send.frames_per_packet == 3  # the answerer wants 240 ms
    answerer = agreement(answer, offer, we_offered=False)
    assert answerer.send is not None and answerer.send.frames_per_packet == 1


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
        ("maxcodebooks=0", "maxcodebooks 0"),
        ("maxcodebooks=eight", "maxcodebooks='eight'"),
        ("maxred=2.5", "maxred=2.5 must be an integer"),
        ("maxbps=100", "maxbps 100.0 is outside 300.0..70400"),
        ("version", "not key=value"),
    ],
)
def test_bad_largesc_fmtp(fmtp: str, message: str) -> None:
    text = sdp.serialize(make_offer(default_codecs(), "10.0.0.1", 5004)).replace(
        "a=fmtp:96 maxcodebooks=8;maxbps=2062.5;maxred=3;version=1", f"a=fmtp:96 {fmtp}"
    )
    with pytest.raises(ValueError, match=message):
        media_codecs(sdp.parse(text).media[0])


def test_fmtp_defaults_unknown_parameters_and_ptime_rounding() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 97\r\n"
        "a=rtpmap:97 largesc/24000\r\na=fmtp:97 future=1;ptime=999\r\na=ptime:100\r\n"
    )
    codec = media_codecs(sdp.parse(text).media[0])[0]
    assert codec.is_largesc and codec.params == LargeScParams()  # 100 ms rounds down to 80
    assert media_codecs(sdp.parse(text.replace("ptime:100", "ptime:5000")).media[0])[0].params.ptime == 1280  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="a=ptime='abc'"):  # names the attribute
        media_codecs(sdp.parse(text.replace("ptime:100", "ptime:abc")).media[0])
    with pytest.raises(ValueError, match="rtpmap"):
        media_codecs(sdp.parse(text.replace("largesc/24000", "largesc")).media[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PJSIP_LIKE.split("\r\n")[3:] + SPEC_OFFER.split("\n")[5:] + [
    "a=fmtp:96 maxcodebooks=inf", "a=ptime:nan", "a=rtpmap:96 LargeSC/x", "m=audio", "c=IN", "a=maxptime:-1",
    "b=AS:x", "a=fmtp:96 maxred=1e400", "m=audio 1/0 RTP/AVP 96", "zz", "a=rtpmap:96 LargeSC/24000/1/2",
]), max_size=12), st.text(max_size=20))
def test_sdp_fuzz_only_raises_value_error(lines: list[str], junk: str) -> None:
    text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n" + "\r\n".join(lines + [junk]) + "\r\n"
    try:
        for m in sdp.parse(text).media:
            media_codecs(m)
    except ValueError:
        pass


def _largesc_line(rtpmap: str, fmtp: str = "") -> sdp.Media:
    text = (f"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 97\r\na=rtpmap:97 {rtpmap}\r\n"
            + (f"a=fmtp:97 {fmtp}\r\n" if fmtp else ""))
    return sdp.parse(text).media[0]


@pytest.mark.parametrize("rtpmap", ["LargeSC/0/1", "LargeSC/8000", "LargeSC/24000/2", "LargeSC/48000/1"])
def test_only_largesc_24000_mono_is_largesc(rtpmap: str) -> None:
    """Issue 14: ``LargeSC/0/1`` was taken as LargeSC/24000; another clock or channel count is not our format."""
    assert not any(c.is_largesc for c in media_codecs(_largesc_line(rtpmap)))
    assert media_codecs(_largesc_line("LargeSC/24000/1"))[0].is_largesc


def test_fmtp_values_beyond_the_codec_are_clamped_and_say_so() -> None:
    """Issue 14: ``maxbps=1e308`` was accepted as is."""
    params = media_codecs(_largesc_line("LargeSC/24000", "maxbps=1e308;maxcodebooks=99;maxred=1000"))[0].params
    assert params is not None
    assert (params.maxbps, params.maxcodebooks, params.maxred) == (70400.0, 32, 255)
    assert params.clamped == ("maxcodebooks=99 -> 32", "maxbps=1e+308 -> 70400", "maxred=1000 -> 255")
    assert LargeScParams().answer(params) == LargeScParams()  # the answer never rises above our own wishes
