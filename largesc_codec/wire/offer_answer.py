"""Audio codecs in SDP and the offer/answer exchange (RFC 3264) for LargeSC.

A LargeSC media format (docs/payload-format.md section 8) is
``a=rtpmap:<pt> LargeSC/24000[/1]`` on a dynamic payload type, with
``a=fmtp:<pt> maxcodebooks=..;maxbps=..;maxred=..;version=..`` and the
media-level ``a=ptime`` / ``a=maxptime`` (see ``largesc_params``). Offers list
LargeSC first, then the fallbacks PCMU, PCMA and G722 (static payload types
0, 8, 9), so a peer without LargeSC still answers with a codec it knows.

Parameters state what their sender wishes to receive, so each direction is
governed by its receiver's SDP. The answerer:

* accepts LargeSC only with the offered ``version`` (else the next common
  codec wins);
* answers ``maxcodebooks`` / ``maxbps`` no higher than offered (the minimum
  of both sides), and its own ``maxred``, ``ptime`` and ``maxptime``;
* keeps the offer's payload type numbers, orders the common codecs by its
  own preference, and rejects (port 0) every m= line but the first audio one,
  or that one too when nothing is in common.

``agreement`` reads the outcome for one side: the codec in use, the limits
for what it sends (the peer's parameters) and what it receives (its own).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from largesc_codec.wire.sdp_params import MAX_PTIME, LargeScParams
from rtp.sdp import Connection, Media, Origin, SessionDescription

LARGESC = "LargeSC"
LARGESC_CLOCK = 24_000
STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}  # G722's RTP clock is 8000 (RFC 3551)
PREFERENCE = (LARGESC, "PCMU", "PCMA", "G722")
_ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive", "sendrecv": "sendrecv"}
__all__ = ["Agreement", "Codec", "LargeScParams", "agreement", "default_codecs", "make_answer", "make_offer",
           "media_codecs", "negotiated"]


@dataclass(frozen=True)
class Codec:
    """One media format: encoding name, RTP clock, payload type; LargeSC carries its params."""

    name: str
    clock_rate: int
    payload_type: int
    channels: int = 1
    params: LargeScParams | None = None

    def same_format(self, other: "Codec") -> bool:
        return (self.name.lower(), self.clock_rate, self.channels) == (other.name.lower(), other.clock_rate, other.channels)

    @property
    def is_largesc(self) -> bool:
        """LargeSC/24000/1 exactly: another clock or channel count is another format, not ours (payload-format 8)."""
        return self.name.lower() == LARGESC.lower() and self.clock_rate == LARGESC_CLOCK and self.channels == 1


def default_codecs(params: LargeScParams | None = None, payload_type: int = 96) -> list[Codec]:
    """LargeSC (dynamic PT) first, then PCMU, PCMA, G722."""
    if not 96 <= payload_type <= 127:
        raise ValueError(f"LargeSC needs a dynamic payload type 96..127, got {payload_type}")
    out = [Codec(LARGESC, LARGESC_CLOCK, payload_type, 1, params or LargeScParams())]
    return out + [Codec(name, clock, pt) for pt, (name, clock) in STATIC.items()]


def media_codecs(media: Media) -> list[Codec]:
    """The formats of an m= line resolved through rtpmap/fmtp or the static table, in order.

    Formats neither mapped nor static are skipped. A malformed rtpmap or
    LargeSC fmtp raises ValueError.
    """
    rtpmap: dict[str, tuple[str, int, int]] = {}
    for value in media.values("rtpmap"):
        pt, _, enc = value.partition(" ")
        parts = enc.strip().split("/")
        if len(parts) not in (2, 3) or not parts[1].isdigit() or (len(parts) == 3 and not parts[2].isdigit()):
            raise ValueError(f"a=rtpmap:{value} is not '<pt> <name>/<clock>[/<channels>]'")
        rtpmap[pt] = (parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 1)
    fmtp = {v.partition(" ")[0]: v.partition(" ")[2] for v in media.values("fmtp")}
    ptime = next(iter(media.values("ptime")), None)
    maxptime = next(iter(media.values("maxptime")), None)
    out: list[Codec] = []
    for fmt in media.formats:
        if fmt in rtpmap:
            name, clock, channels = rtpmap[fmt]
        elif fmt.isdigit() and int(fmt) in STATIC:
            (name, clock), channels = STATIC[int(fmt)], 1
        else:
            continue
        if not fmt.isdigit() or int(fmt) > 127:
            raise ValueError(f"RTP format {fmt!r} is not a payload type 0..127")
        codec = Codec(name, clock, int(fmt), channels)
        if codec.is_largesc:
            codec = replace(codec, params=LargeScParams.from_sdp(fmtp.get(fmt, ""), ptime, maxptime))
        out.append(codec)
    return out


def _audio_media(codecs: Sequence[Codec], port: int, direction: str | None, rtcp_mux: bool) -> Media:
    attrs: list[tuple[str, str | None]] = []
    for c in codecs:
        channels = f"/{c.channels}" if c.channels != 1 or c.is_largesc else ""
        attrs.append(("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}{channels}"))
        if c.params is not None:
            attrs.append(("fmtp", f"{c.payload_type} {c.params.to_fmtp()}"))
    largesc = next((c.params for c in codecs if c.params is not None), None)
    if largesc is not None:  # ptime / maxptime are media-level: LargeSC's wishes, if offered
        attrs.append(("ptime", str(largesc.ptime)))
        if largesc.maxptime != MAX_PTIME:
            attrs.append(("maxptime", str(largesc.maxptime)))
    if rtcp_mux:
        attrs.append(("rtcp-mux", None))
    if direction:
        attrs.append((direction, None))
    return Media("audio", port, "RTP/AVP", tuple(str(c.payload_type) for c in codecs), attributes=tuple(attrs))


def make_offer(
    codecs: Sequence[Codec], address: str, port: int, session_id: int = 0, rtcp_mux: bool = False
) -> SessionDescription:
    """An audio offer listing ``codecs`` in order (use ``default_codecs()``)."""
    if not codecs:
        raise ValueError("an offer needs at least one codec")
    return SessionDescription(
        origin=Origin("-", session_id, session_id, "IN", "IP4", address),
        connection=Connection("IN", "IP4", address),
        media=(_audio_media(codecs, port, "sendrecv", rtcp_mux),),
    )


def make_answer(
    offer: SessionDescription,
    codecs: Sequence[Codec],
    address: str,
    port: int,
    session_id: int = 0,
    rtcp_mux: bool = True,
) -> SessionDescription:
    """Answer ``offer`` with what we support (``codecs`` in our preference order)."""
    answered: list[Media] = []
    done = False
    for m in offer.media:
        accepted: list[Codec] = []
        if m.media == "audio" and m.port and not done:
            done = True
            offered = media_codecs(m)
            for mine in codecs:
                for theirs in offered:
                    if mine.same_format(theirs) and all(not a.same_format(theirs) for a in accepted):
                        params = mine.params.answer(theirs.params) if mine.params and theirs.params else None
                        if theirs.is_largesc and params is None:
                            continue
                        accepted.append(replace(theirs, params=params))
        if not accepted:
            answered.append(Media(m.media, 0, m.proto, m.formats))
            continue
        direction = next((_ANSWER_DIRECTION[n] for n, _ in m.attributes if n in _ANSWER_DIRECTION), None)
        answered.append(_audio_media(accepted, port, direction, rtcp_mux and m.has("rtcp-mux")))
    return SessionDescription(
        origin=Origin("-", session_id, session_id, "IN", "IP4", address),
        connection=Connection("IN", "IP4", address),
        media=tuple(answered),
    )


def negotiated(sd: SessionDescription) -> Codec:
    """The codec in use after the exchange: first known format of the first active audio m= line."""
    for m in sd.media:
        if m.media == "audio" and m.port:
            codecs = media_codecs(m)
            if codecs:
                return codecs[0]
    raise ValueError("no active audio m= line with a known codec")


@dataclass(frozen=True)
class Agreement:
    """The outcome of offer/answer for one side.

    ``send`` holds the peer's LargeSC parameters (limits on what we send:
    codebooks, bit/s, redundancy distance, ``send.frames_per_packet``);
    ``receive`` our own. Both are None when the codec is not LargeSC.
    """

    codec: Codec
    send: LargeScParams | None
    receive: LargeScParams | None


def agreement(local: SessionDescription, remote: SessionDescription, we_offered: bool) -> Agreement:
    """Read the agreed codec (first of the answer) and both directions' LargeSC parameters."""
    codec = negotiated(remote if we_offered else local)

    def params(sd: SessionDescription) -> LargeScParams | None:
        for m in sd.media:
            if m.media == "audio" and m.port:
                return next((c.params for c in media_codecs(m) if c.payload_type == codec.payload_type), None)
        return None

    return Agreement(codec, params(remote), params(local))
