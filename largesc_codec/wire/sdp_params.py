"""LargeSC media type parameters in SDP (docs/payload-format.md, sections 7 and 8).

Every parameter says what its *sender* wishes to receive:
``maxcodebooks`` (1..32, default 8), ``maxbps`` (payload bit/s, every byte
of ToC, tokens and padding, >= 300: one codebook a frame; default 2062.5), ``maxred`` (redundancy distance 0..255, default 3) and
``version`` (default 1) travel in ``a=fmtp`` (unknown parameters ignored,
omitted ones take defaults); ``ptime`` (default 80) and ``maxptime``
(default 1280) are the media-level ``a=ptime`` / ``a=maxptime`` attributes,
rounded down to a multiple of 80 ms (at least 80, at most 1280).
Malformed values raise ValueError naming the parameter. Values above what
the codec can use are clamped (maxcodebooks to 32, maxbps to ``MAX_MAXBPS``:
16 blocks of 32 codebooks a packet, maxred to 255) and the clamps are listed
in ``clamped``, so an answer can say what it changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from largesc_codec.types import DEFAULT_MAX_BPS, FRAME_MS, FRAME_RATE_HZ, MAX_CODEBOOKS, TOKEN_BITS

MAX_PTIME = 16 * FRAME_MS  # a LargeSC payload holds at most 16 blocks
MIN_MAXBPS = 300.0  # one codebook a frame: 1 ToC byte + 2 bytes of token, 12.5 times a second
MAX_BLOCKS = 16  # blocks a payload holds (payload.MAX_BLOCKS)
MAX_MAXBPS = MAX_BLOCKS * MAX_CODEBOOKS * TOKEN_BITS * FRAME_RATE_HZ  # 70,400: every block full, every packet
MAX_MAXRED = 255
_FMTP_KEYS = ("maxcodebooks", "maxbps", "maxred", "version")


def round_ptime(ms: float) -> int:
    """A packet time rounded down to a multiple of 80 ms, within 80..1280 (spec 8.2)."""
    return int(min(MAX_PTIME, max(FRAME_MS, ms // FRAME_MS * FRAME_MS)))


def _number(what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"LargeSC {what}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"LargeSC {what}={text!r} is not a finite number")
    return value


@dataclass(frozen=True)
class LargeScParams:
    """What one side of a LargeSC session wishes to receive."""

    maxcodebooks: int = 8
    maxbps: float = DEFAULT_MAX_BPS
    maxred: int = 3
    version: int = 1
    ptime: int = FRAME_MS
    maxptime: int = MAX_PTIME
    clamped: tuple[str, ...] = field(default=(), compare=False)  # "maxbps=1e+308 -> 70400" (from_sdp)

    def __post_init__(self) -> None:
        if not 1 <= self.maxcodebooks <= MAX_CODEBOOKS:
            raise ValueError(f"LargeSC maxcodebooks {self.maxcodebooks} is outside 1..{MAX_CODEBOOKS}")
        if not MIN_MAXBPS <= self.maxbps <= MAX_MAXBPS:
            raise ValueError(f"LargeSC maxbps {self.maxbps} is outside {MIN_MAXBPS}..{MAX_MAXBPS:g}")
        if not 0 <= self.maxred <= 255:
            raise ValueError(f"LargeSC maxred {self.maxred} is outside 0..255")
        if self.version < 1:
            raise ValueError(f"LargeSC version {self.version} must be >= 1")
        for name in ("ptime", "maxptime"):
            value = getattr(self, name)
            if value % FRAME_MS or not FRAME_MS <= value <= MAX_PTIME:
                raise ValueError(f"LargeSC {name} {value} is not a multiple of {FRAME_MS} in {FRAME_MS}..{MAX_PTIME}")

    @property
    def frames_per_packet(self) -> int:
        """Frames per packet a sender to this side uses: its ptime, capped by its maxptime."""
        return min(self.ptime, self.maxptime) // FRAME_MS

    def to_fmtp(self) -> str:
        return f"maxcodebooks={self.maxcodebooks};maxbps={self.maxbps:g};maxred={self.maxred};version={self.version}"

    @classmethod
    def from_sdp(cls, fmtp: str, ptime: str | None = None, maxptime: str | None = None) -> "LargeScParams":
        """Parse an fmtp value (after the payload type) and the a=ptime / a=maxptime values."""
        values: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in fmtp.split(";"))):
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise ValueError(f"LargeSC fmtp item {item!r} is not key=value")
            if key in _FMTP_KEYS:
                values[key] = _number(f"fmtp parameter {key}", value.strip())
        for key in ("maxcodebooks", "maxred", "version"):
            if key in values and values[key] != int(values[key]):
                raise ValueError(f"LargeSC fmtp parameter {key}={values[key]:g} must be an integer")
        clamped = []
        for key, most in (("maxcodebooks", MAX_CODEBOOKS), ("maxbps", MAX_MAXBPS), ("maxred", MAX_MAXRED)):
            if values.get(key, 0) > most:
                clamped.append(f"{key}={values[key]:g} -> {most:g}")
                values[key] = most
        d = cls()
        times = {}
        for key, text, default in (("ptime", ptime, d.ptime), ("maxptime", maxptime, d.maxptime)):
            if text is None:
                times[key] = default
                continue
            times[key] = round_ptime(_number(f"a={key}", text))
        return cls(
            maxcodebooks=int(values.get("maxcodebooks", d.maxcodebooks)),
            maxbps=values.get("maxbps", d.maxbps),
            maxred=int(values.get("maxred", d.maxred)),
            version=int(values.get("version", d.version)),
            clamped=tuple(clamped),
            **times,
        )

    def answer(self, offered: "LargeScParams") -> "LargeScParams | None":
        """Our answer to ``offered`` (self = what we wish to receive); None if versions differ.

        The answer MUST NOT raise ``maxcodebooks`` / ``maxbps`` above the offer
        (so it takes the minimum); ``maxred``, ``ptime`` and ``maxptime`` are
        our own receive wishes and are kept as they are.
        """
        if offered.version != self.version:
            return None
        return LargeScParams(
            maxcodebooks=min(self.maxcodebooks, offered.maxcodebooks),
            maxbps=min(self.maxbps, offered.maxbps),
            maxred=self.maxred,
            version=self.version,
            ptime=self.ptime,
            maxptime=self.maxptime,
        )
