"""Audio codecs in SDP and the offer/answer exchange (RFC 3264) for LargeSC.

A LargeSC media format is ``a=rtpmap:<pt> LargeSC/24000/1`` on a dynamic
payload type with ``a=fmtp:<pt> maxcodebooks=..;maxbps=..;ptime=..;maxred=..;version=..``.
Offers list LargeSC first, then the fallbacks PCMU, PCMA and G722 (static
payload types 0, 8, 9), so a peer without LargeSC still finds a codec.

Answer rules for LargeSC parameters (each side states what it can receive):

* ``version`` must be equal, else LargeSC is not accepted (the next common
  codec wins);
* ``maxcodebooks``, ``maxbps`` and ``maxred`` take the minimum of both sides;
* ``ptime`` (milliseconds, a multiple of the 80 ms frame, 80..1280) takes the
  larger of both sides: a low-rate stream is header-bound, so neither side
  wants packets shorter than it asked for. A media-level ``a=ptime`` without
  an fmtp ptime is rounded up to a multiple of 80 ms; we write none, so
  fallback codecs keep their own packet time.

The answer keeps the offer's payload type numbers, orders the common codecs
by the answerer's preference, and rejects (port 0) every m= line but the
first audio one, or that one too when nothing is in common.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from .sdp import Connection, Media, Origin, SessionDescription

LARGESC = "LargeSC"
LARGESC_CLOCK = 24_000
FRAME_MS = 80
MAX_PTIME = 16 * FRAME_MS  # a LargeSC payload holds at most 16 blocks
STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}  # G722's RTP clock is 8000 (RFC 3551)
PREFERENCE = (LARGESC, "PCMU", "PCMA", "G722")
_ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive", "sendrecv": "sendrecv"}


def _number(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"LargeSC fmtp parameter {key}={text!r} is not a number") from None


@dataclass(frozen=True)
class LargeScParams:
    """LargeSC fmtp parameters (defaults: 8 codebooks, 2062.5 bit/s = 15 tokens a frame, 80 ms, distance 3, version 1)."""

    maxcodebooks: int = 8
    maxbps: float = 2062.5
    ptime: int = FRAME_MS
    maxred: int = 3
    version: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.maxcodebooks <= 32:
            raise ValueError(f"LargeSC maxcodebooks {self.maxcodebooks} is outside 1..32")
        if not self.maxbps > 0:
            raise ValueError(f"LargeSC maxbps {self.maxbps} must be > 0")
        if self.ptime % FRAME_MS or not FRAME_MS <= self.ptime <= MAX_PTIME:
            raise ValueError(f"LargeSC ptime {self.ptime} is not a multiple of {FRAME_MS} in {FRAME_MS}..{MAX_PTIME}")
        if not 0 <= self.maxred <= 255:
            raise ValueError(f"LargeSC maxred {self.maxred} is outside 0..255")
        if self.version < 1:
            raise ValueError(f"LargeSC version {self.version} must be >= 1")

    @property
    def frames_per_packet(self) -> int:
        return self.ptime // FRAME_MS

    def to_fmtp(self) -> str:
        return (
            f"maxcodebooks={self.maxcodebooks};maxbps={self.maxbps:g};ptime={self.ptime};"
            f"maxred={self.maxred};version={self.version}"
        )

    @classmethod
    def from_fmtp(cls, text: str, ptime_hint: int | None = None) -> "LargeScParams":
        """Parse fmtp parameters; unknown ones are ignored, missing ones take defaults."""
        values: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in text.split(";"))):
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise ValueError(f"LargeSC fmtp item {item!r} is not key=value")
            if key in ("maxcodebooks", "maxbps", "ptime", "maxred", "version"):
                values[key] = _number(key, value.strip())
        for key in ("maxcodebooks", "ptime", "maxred", "version"):
            if key in values and values[key] != int(values[key]):
                raise ValueError(f"LargeSC fmtp parameter {key}={values[key]:g} must be an integer")
        if "ptime" not in values and ptime_hint is not None:
            values["ptime"] = min(MAX_PTIME, max(FRAME_MS, -(-ptime_hint // FRAME_MS) * FRAME_MS))
        d = cls()
        return cls(
            maxcodebooks=int(values.get("maxcodebooks", d.maxcodebooks)),
            maxbps=values.get("maxbps", d.maxbps),
            ptime=int(values.get("ptime", d.ptime)),
            maxred=int(values.get("maxred", d.maxred)),
            version=int(values.get("version", d.version)),
        )

    def answer(self, offered: "LargeScParams") -> "LargeScParams | None":
        """Our answer to ``offered`` (self = what we can receive); None if versions differ."""
        if offered.version != self.version:
            return None
        return LargeScParams(
            maxcodebooks=min(self.maxcodebooks, offered.maxcodebooks),
            maxbps=min(self.maxbps, offered.maxbps),
            ptime=max(self.ptime, offered.ptime),
            maxred=min(self.maxred, offered.maxred),
            version=self.version,
        )


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
        return self.name.lower() == LARGESC.lower()


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
    ptimes = media.values("ptime")
    ptime_hint = int(ptimes[0]) if ptimes and ptimes[0].isdigit() else None
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
            codec = replace(codec, params=LargeScParams.from_fmtp(fmtp.get(fmt, ""), ptime_hint))
        out.append(codec)
    return out


def _audio_media(codecs: Sequence[Codec], port: int, direction: str | None, rtcp_mux: bool) -> Media:
    attrs: list[tuple[str, str | None]] = []
    for c in codecs:
        channels = f"/{c.channels}" if c.channels != 1 or c.is_largesc else ""
        attrs.append(("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}{channels}"))
        if c.params is not None:
            attrs.append(("fmtp", f"{c.payload_type} {c.params.to_fmtp()}"))
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
