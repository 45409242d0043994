"""Offer/answer on arbitrary LargeSC offers (hypothesis): only ValueError, and never beyond either side."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from largesc_codec.wire.offer_answer import LargeScParams, default_codecs, make_answer, media_codecs
from largesc_codec.wire.sdp_params import MAX_MAXBPS
from rtp import sdp

_value = st.one_of(st.integers(-5, 10**9).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text("0123456789.e+-", max_size=12))
_fmtp = st.lists(st.tuples(st.sampled_from(["maxcodebooks", "maxbps", "maxred", "version", "x"]), _value),
                 max_size=6).map(lambda items: ";".join(f"{k}={v}" for k, v in items))
_rtpmap = st.sampled_from(["LargeSC/24000", "LargeSC/24000/1", "largesc/24000/1", "LargeSC/0/1", "LargeSC/24000/2",
                           "PCMU/8000"])


@settings(max_examples=300, deadline=None)
@given(_rtpmap, _fmtp, st.integers(0, 5000).map(str))
def test_an_answer_never_exceeds_the_offer_or_our_wishes(rtpmap: str, fmtp: str, ptime: str) -> None:
    text = (f"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 97 0\r\n"
            f"a=rtpmap:97 {rtpmap}\r\na=fmtp:97 {fmtp}\r\na=ptime:{ptime}\r\n")
    ours = LargeScParams(maxcodebooks=8, maxbps=2062.5)
    try:
        offer = sdp.parse(text)
        offered = media_codecs(offer.media[0])
        answer = make_answer(offer, default_codecs(ours), "192.0.2.2", 6000)
    except ValueError:
        return
    theirs = next((c.params for c in offered if c.is_largesc), None)
    for codec in media_codecs(answer.media[0]) if answer.media[0].port else []:
        if codec.is_largesc:
            assert theirs is not None and codec.params is not None and rtpmap.split("/")[1:] in (["24000"], ["24000", "1"])
            assert codec.params.maxbps <= min(theirs.maxbps, ours.maxbps) <= MAX_MAXBPS
            assert codec.params.maxcodebooks <= min(theirs.maxcodebooks, ours.maxcodebooks)
