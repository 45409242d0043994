"""Shared value types and constants of the LargeSC codec.

Everything here is pure data: no torch, no I/O. Token frames carry the leading
codebooks of one 80 ms Mimi frame; decisions are what the sender's controller
returns and the packetizer carries out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rtp.feedback import LossReport  # re-exported: the codec's feedback type is the RTP layer's
from rtp.packet import WIRE_OVERHEAD_BYTES  # re-exported: IPv4 + UDP + RTP header bytes per packet

__all__ = ["CARDINALITY", "DEFAULT_MAX_BPS", "FRAME_MS", "FRAME_RATE_HZ", "FRAME_SAMPLES", "MAX_CODEBOOKS", "MIMI_PRECISIONS",
           "MIN_PAYLOAD_BPS", "MIN_SPEECH_CODEBOOKS", "SAMPLE_RATE", "TOKEN_BITS", "WIRE_OVERHEAD_BYTES", "Decision", "FrameSource",
           "LossReport", "ReceivedFrame", "RedundancySpec", "TokenFrame"]

SAMPLE_RATE = 24_000
FRAME_SAMPLES = 1_920
FRAME_MS = 80
FRAME_RATE_HZ = 12.5
MAX_CODEBOOKS = 32
CARDINALITY = 2_048
TOKEN_BITS = 11
DEFAULT_MAX_BPS = 2_062.5
MIN_SPEECH_CODEBOOKS = 4  # the research's floor for a speech frame
# Mimi's fast-path arithmetic (largesc_codec/fast/mimi.py): fp32 exact; bf16 and fp16 faster, some tokens differ.
MIMI_PRECISIONS = ("fp32", "bf16", "fp16", "auto")
MIN_PAYLOAD_BPS = 300.0  # the least payload a sender can send: 1 ToC byte + one 11-bit token, 12.5 times a second


@dataclass(frozen=True)
class TokenFrame:
    """The leading codebooks of one Mimi frame.

    ``tokens[k]`` is the token of codebook ``k`` (0 = semantic), each in
    ``[0, CARDINALITY)``. A frame may carry fewer codebooks than the encoder
    produced (the sender chose fewer, or only redundancy arrived).
    """

    index: int
    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.tokens) <= MAX_CODEBOOKS:
            raise ValueError(
                f"a token frame holds 1..{MAX_CODEBOOKS} codebooks, got {len(self.tokens)}"
            )
        for k, t in enumerate(self.tokens):
            if not 0 <= t < CARDINALITY:
                raise ValueError(f"token {t} of codebook {k} is outside 0..{CARDINALITY - 1}")

    @property
    def codebooks(self) -> int:
        return len(self.tokens)

    def truncated(self, codebooks: int) -> "TokenFrame":
        """The same frame limited to its first ``codebooks`` codebooks."""
        return TokenFrame(self.index, self.tokens[: max(1, codebooks)])


@dataclass(frozen=True)
class RedundancySpec:
    """Repeat the first ``codebooks`` codebooks of the frame ``distance`` frames back."""

    distance: int
    codebooks: int


@dataclass(frozen=True)
class Decision:
    """What the controller decided for one frame: primary codebooks + redundancy."""

    codebooks: int
    redundancy: tuple[RedundancySpec, ...] = ()
    speech: bool = True
    reason: str = ""


class FrameSource(str, enum.Enum):
    """How the receiver obtained a frame it played.

    str-valued so that reports and JSON keep the plain names (``.value``);
    code compares members, never the strings.
    """

    PRIMARY = "primary"  # its own packet arrived: decoded as sent
    RECOVERED = "recovered"  # a redundant copy with every codebook the frame was sent with
    PARTIAL = "partial"  # a shorter copy; the concealer filled the missing codebooks
    CONCEALED = "concealed"  # nothing arrived: the concealer predicted it
    COMFORT = "comfort"  # a long outage: comfort silence

    @property
    def received(self) -> bool:
        """True when tokens of the frame itself arrived (primary, recovered or partial)."""
        return self in (FrameSource.PRIMARY, FrameSource.RECOVERED, FrameSource.PARTIAL)


@dataclass
class ReceivedFrame:
    """A frame as the receiver will play it, with how it was obtained."""

    index: int
    tokens: tuple[int, ...]
    source: FrameSource
    received_codebooks: int = 0
    notes: dict[str, float] = field(default_factory=dict)
