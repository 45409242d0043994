"""LargeSC: speech over lossy networks at 0.55-2 kbit/s (Mimi tokens, in-band UEP, LM concealment).

The public API for a program that embeds the codec (docs/api.md describes it,
examples/embed.py runs it)::

    import largesc_codec as lsc

    models = lsc.load_models("hub")                 # or a weights directory
    tx = lsc.LargeSCSender(models.new_mimi(), sample_rate=16000, max_bps=1100)
    rx = lsc.LargeSCReceiver(models.new_mimi(), lsc.build_concealer("lm", models.load_lm))
    tx.push(pcm)                                    # int16/float32, (n,) or (n, channels)
    for packet in tx.pull():                        # SentPacket: payload bytes for one RTP packet
        rx.push(ssrc, seq, packet.first_index * lsc.FRAME_SAMPLES, packet.payload, now_ms)
    played = rx.pull(now_ms)                        # every 80 ms: PlayedFrame, pcm float32 (1920,) 24 kHz

Names are imported on first use (module ``__getattr__``), so ``import
largesc_codec`` costs nothing and torch, moshi and PyAV load only when a model
or a file is touched. Subpackages (wire, send, playout, neural, sim, ...)
remain importable for the parts not listed here.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the exports, for type checkers)
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# module -> public names it defines. Adding an export: one name here and one in the block below
# (tests/test_api.py checks that the two agree and that every name resolves).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "largesc_codec.types": (
        "CARDINALITY", "DEFAULT_MAX_BPS", "FRAME_MS", "FRAME_RATE_HZ", "FRAME_SAMPLES", "MAX_CODEBOOKS",
        "MIN_PAYLOAD_BPS", "SAMPLE_RATE", "TOKEN_BITS", "Decision", "FrameSource", "LossReport", "ReceivedFrame",
        "RedundancySpec", "TokenFrame",
    ),
    "largesc_codec.sender": ("LargeSCSender", "SentPacket"),
    "largesc_codec.receiver": ("LargeSCReceiver", "PlayedFrame", "ReceiverStatus"),
    "largesc_codec.neural.model": ("Models", "WeightsError", "load_models"),
    "largesc_codec.neural.concealers": ("Concealer", "Concealment", "RepeatConcealer", "SilenceConcealer"),
    "largesc_codec.neural.plc": ("CONCEALERS", "PLC_CHOICES", "build_concealer"),
    "largesc_codec.neural.lm_concealer": ("LMConcealer",),
    "largesc_codec.neural.framing": ("DecodedAudio", "decode_audio", "write_wav"),
    "largesc_codec.playout.buffer": ("JitterBuffer",),
    "largesc_codec.playout.decision": ("JitterStats", "PlayoutDecision", "PlayoutKind"),
    "largesc_codec.sim.channel": ("GilbertElliott", "LossStats", "NoLoss", "UniformLoss", "parse_channel"),
    "largesc_codec.wire.sdp_params": ("LargeScParams",),
}

if TYPE_CHECKING:  # the same names for type checkers and IDEs; at run time __getattr__ imports them
    from largesc_codec.neural.concealers import Concealer, Concealment, RepeatConcealer, SilenceConcealer
    from largesc_codec.neural.framing import DecodedAudio, decode_audio, write_wav
    from largesc_codec.neural.lm_concealer import LMConcealer
    from largesc_codec.neural.model import Models, WeightsError, load_models
    from largesc_codec.neural.plc import CONCEALERS, PLC_CHOICES, build_concealer
    from largesc_codec.playout.buffer import JitterBuffer
    from largesc_codec.playout.decision import JitterStats, PlayoutDecision, PlayoutKind
    from largesc_codec.receiver import LargeSCReceiver, PlayedFrame, ReceiverStatus
    from largesc_codec.sender import LargeSCSender, SentPacket
    from largesc_codec.sim.channel import GilbertElliott, LossStats, NoLoss, UniformLoss, parse_channel
    from largesc_codec.types import (
        CARDINALITY,
        DEFAULT_MAX_BPS,
        FRAME_MS,
        FRAME_RATE_HZ,
        FRAME_SAMPLES,
        MAX_CODEBOOKS,
        MIN_PAYLOAD_BPS,
        SAMPLE_RATE,
        TOKEN_BITS,
        Decision,
        FrameSource,
        LossReport,
        ReceivedFrame,
        RedundancySpec,
        TokenFrame,
    )
    from largesc_codec.wire.sdp_params import LargeScParams

_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)  # noqa: PLE0605  (built from the table above)


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'largesc_codec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
