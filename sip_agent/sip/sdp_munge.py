"""LargeSC beside pjsua2's own audio: pure rewrites of the SDP that pjsua2 creates.

Why: pjsua2 cannot register a codec from Python, answers an offer of only
unknown codecs with 488, and aborts on a call without audio it can handle.
So pjsua2 keeps negotiating its own audio m= line (G722/PCMU/PCMA) while
LargeSC travels in a separate, dedicated m= line whose port belongs to the
project's RTP stack (``rtp.transport``)::

    m=audio 4000 RTP/AVP 9 0 8 120      <- pjsua2's stream (fallback codecs)
    m=audio 40000 RTP/AVP 96            <- LargeSC only, our socket
    c=IN IP4 127.0.0.1
    a=rtpmap:96 LargeSC/24000/1
    a=fmtp:96 maxcodebooks=8;maxbps=2062.5;maxred=3;version=1
    a=ptime:80
    a=sendrecv

Offerer: the call is made with two audio media so that pjsua2 provisions two
m= lines (it asserts if the answer has more m= lines than it provisioned);
``offer_largesc`` rewrites the last one into the LargeSC line.

Answerer: ``find_largesc`` looks for a dedicated LargeSC line in the offer;
``answer_largesc`` rewrites the same index of pjsua2's answer into our
LargeSC line and marks every other audio line ``a=inactive``, so pjsua2's
stream carries nothing (the call stays "on hold" from pjsua2's view) and only
LargeSC packets flow. A peer without LargeSC answers the dedicated line with
port 0 (RFC 3264 rejection) and the call keeps the fallback codec.

SRTP (``sdes``): the LargeSC line carries its own proto (``RTP/AVP`` or
``RTP/SAVP``) and ``a=crypto`` lines; ``decline_largesc`` answers it with
port 0 when the security offer cannot be met.

pjsua2 assigns no stream to the LargeSC index (its media state there is
"error": unknown codec), which it tolerates. Every function here is pure
text in, text out; the parameter rules are ``largesc_codec.wire.offer_answer``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from largesc_codec.wire.offer_answer import LARGESC, LARGESC_CLOCK, LargeScParams, media_codecs
from largesc_codec.wire.sdp_params import MAX_PTIME
from rtp import sdp
from rtp.srtp import CryptoAttribute, parse_crypto

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_MAX_CRYPTO = 16  # crypto lines read per m= line (a cap on remote input)
_IGNORED = ("telephone-event", "cn")  # formats that may share a LargeSC line without making it "mixed"


@dataclass(frozen=True)
class LargeScMedia:
    """A LargeSC m= line found in an SDP: where it is and what it declares.

    ``params`` are what the SDP's author wants to receive; ``direction`` is as
    written by that author (``sendrecv`` when absent). ``crypto``: the line's
    well-formed ``a=crypto`` lines in order (malformed ones are left out: unusable anyway).
    """

    index: int
    address: str
    port: int
    payload_type: int
    params: LargeScParams
    direction: str = "sendrecv"
    proto: str = "RTP/AVP"
    crypto: tuple[CryptoAttribute, ...] = ()


def _crypto(media: sdp.Media) -> tuple[CryptoAttribute, ...]:
    found = []
    for value in media.values("crypto")[:_MAX_CRYPTO]:
        try:
            found.append(parse_crypto(value))
        except ValueError:
            continue
    return tuple(found)


def _direction(media: sdp.Media, session: sdp.SessionDescription) -> str:
    for name, _ in media.attributes:
        if name in DIRECTIONS:
            return name
    for name, _ in session.attributes:
        if name in DIRECTIONS:
            return name
    return "sendrecv"


def _address(media: sdp.Media, session: sdp.SessionDescription) -> str | None:
    conn = media.connection or session.connection
    return conn.address if conn is not None else None


def find_largesc(text: str) -> LargeScMedia | None:
    """The first active, dedicated LargeSC audio line of ``text``, or None.

    Dedicated: every codec on the line is LargeSC (telephone-event/CN
    aside). A line mixing LargeSC with PCMU etc. is left to pjsua2, which then
    uses the fallback codec. Unparseable SDP counts as "no LargeSC".
    """
    try:
        session = sdp.parse(text)
    except ValueError:
        return None
    for index, media in enumerate(session.media):
        if media.media != "audio" or media.port == 0:
            continue
        try:
            codecs = [c for c in media_codecs(media) if c.name.lower() not in _IGNORED]
        except ValueError:
            continue
        if not codecs or not all(c.is_largesc for c in codecs):
            continue
        address = _address(media, session)
        if address is None or codecs[0].params is None:
            continue
        return LargeScMedia(index, address, media.port, codecs[0].payload_type, codecs[0].params,
                            _direction(media, session), media.proto, _crypto(media))
    return None


def audio_lines(text: str) -> int:
    """How many m=audio lines ``text`` has (0 if it does not parse)."""
    try:
        return sum(1 for m in sdp.parse(text).media if m.media == "audio")
    except ValueError:
        return 0


def free_dynamic_pt(session: sdp.SessionDescription, preferred: int = 96) -> int:
    """A dynamic payload type (96..127) used by no m= line of ``session``, ``preferred`` if free."""
    used = {f for m in session.media for f in m.formats}
    candidates: list[int] = [preferred, *range(96, 128)]
    for pt in candidates:
        if str(pt) not in used:
            return pt
    raise ValueError("all dynamic payload types 96..127 are in use; cannot add LargeSC")


def largesc_media(address: str, port: int, payload_type: int, params: LargeScParams, direction: str,
                  proto: str = "RTP/AVP", crypto: tuple[CryptoAttribute, ...] = ()) -> sdp.Media:
    """The dedicated LargeSC m= line (its own c= line, so pjmedia's validator is satisfied)."""
    attrs: list[sdp.Attribute] = [
        ("rtpmap", f"{payload_type} {LARGESC}/{LARGESC_CLOCK}/1"),
        ("fmtp", f"{payload_type} {params.to_fmtp()}"),
        ("ptime", str(params.ptime)),
    ]
    if params.maxptime != MAX_PTIME:
        attrs.append(("maxptime", str(params.maxptime)))
    attrs.extend(("crypto", c.to_sdp()) for c in crypto)
    attrs.append((direction, None))
    return sdp.Media(
        "audio", port, proto, (str(payload_type),), connection=sdp.Connection("IN", "IP4", address),
        attributes=tuple(attrs),
    )


def offer_largesc(text: str, address: str, port: int, params: LargeScParams, proto: str = "RTP/AVP",
                  crypto: tuple[CryptoAttribute, ...] = ()) -> tuple[str, int, int]:
    """Rewrite the last m= line of pjsua2's offer into the LargeSC line; returns (sdp, payload type, m= index).

    ValueError when the SDP has fewer than two m= lines (the call was not
    made with two audio media) or cannot be parsed.
    """
    session = sdp.parse(text)
    if len(session.media) < 2:
        raise ValueError("pjsua2's offer has one m= line; make the call with CallSetting.audioCount = 2")
    pt = free_dynamic_pt(session.with_media(session.media[:-1]))
    media = session.media[:-1] + (largesc_media(address, port, pt, params, "sendrecv", proto, crypto),)
    return sdp.serialize(session.with_media(media)), pt, len(media) - 1


def _inactive(media: sdp.Media) -> sdp.Media:
    attrs = tuple(a for a in media.attributes if a[0] not in DIRECTIONS) + (("inactive", None),)
    return replace(media, attributes=attrs)


def answer_largesc(
    text: str, offer: LargeScMedia, address: str, port: int, ours: LargeScParams,
    crypto: CryptoAttribute | None = None,
) -> tuple[str, LargeScParams] | None:
    """Rewrite pjsua2's answer to accept the offered LargeSC line on ``address:port`` (its proto, our ``crypto``).

    Returns (answer sdp, our answered params), or None when LargeSC cannot be
    accepted (other version, or pjsua2's answer lacks that m= index): then
    the answer is left as pjsua2 wrote it (port 0 on the LargeSC line).
    """
    answered = ours.answer(offer.params)
    if answered is None:
        return None
    session = sdp.parse(text)
    if offer.index >= len(session.media):
        return None
    media = list(session.media)
    for i, m in enumerate(media):
        if i != offer.index and m.media == "audio" and m.port:
            media[i] = _inactive(m)  # pjsua2's stream idles; LargeSC carries the audio
    media[offer.index] = largesc_media(address, port, offer.payload_type, answered, _REVERSE[offer.direction],
                                       offer.proto, () if crypto is None else (crypto,))
    return sdp.serialize(session.with_media(tuple(media))), answered


def decline_largesc(text: str, offer: LargeScMedia) -> str | None:
    """pjsua2's answer with the offered LargeSC line rejected (port 0, RFC 3264 6), or None if it lacks that line.

    pjsua2's own line at that index is kept, port 0 and proto as offered, with its c= line (pjsip asserts
    "Invalid local SDP" on an m= line without one).
    """
    session = sdp.parse(text)
    if offer.index >= len(session.media):
        return None
    media = list(session.media)
    line = media[offer.index]
    connection = line.connection or session.connection or sdp.Connection("IN", "IP4", offer.address)
    media[offer.index] = replace(line, port=0, proto=offer.proto, connection=line.connection or connection)
    return sdp.serialize(session.with_media(tuple(media)))


def accepted_largesc(answer_text: str, offered_pt: int, index: int) -> LargeScMedia | None:
    """The peer's answer to our LargeSC line (same index, active, same payload type), or None."""
    found = find_largesc(answer_text)
    if found is None or found.index != index or found.payload_type != offered_pt:
        return None
    return found


def sdp_body(message: str) -> str | None:
    """The SDP body of a whole SIP message (as pjsua2's ``wholeMsg``), or None if it has none."""
    head, sep, body = message.replace("\r\n", "\n").partition("\n\n")
    if not sep or not body.strip():
        return None
    for line in head.split("\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-type", "c") and "application/sdp" in value.lower():
            return body.replace("\n", "\r\n")
    return None
