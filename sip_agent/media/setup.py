"""What the codec-backed engine needs before a call: options, send limits from SDP, cached models.

* ``CodecOptions``: the user's choices (``--weights``, ``--plc``, ``--max-bps``,
  ``--adapter``), checked once up front (``check``) so a bad option fails
  before any call.
* ``SendPlan.from_link``: what we may send, from the offer/answer outcome
  (``LargeScLink.send`` holds the peer's parameters): bit-rate budget = the
  smaller of ``--max-bps`` and the peer's ``maxbps``; codebooks = the peer's
  ``maxcodebooks`` (capped by the model); redundancy distance = the peer's
  ``maxred`` (capped at the controller's 8); frames per packet from the peer's
  ptime. The controller's own checks reject limits that cannot carry speech,
  with the numbers in the message.
* ``MODELS``: one cache per process. Loading Mimi and the LM takes seconds
  (minutes for the real LM), so the command line ``preload``s them before it
  listens or dials, and every call reuses them: each call gets its own Mimi
  copies (``Models.new_mimi``) and borrows an LM that no other call holds
  (``take_lm`` / ``give_back_lm``; an LM comes back only after its concealer
  left streaming mode). Copies share the weights (``shared_weights_copy``):
  each call adds only its streaming state, not another model. With
  ``batch_streams`` the calls share one ``batch.MimiBatch`` instead (``batch``):
  two Mimi copies in all, a row per call.

torch and moshi are imported only inside functions (through
``largesc_codec``), so importing this module is cheap.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from largesc_codec.neural import concealers, plc
from largesc_codec.types import (DEFAULT_MAX_BPS, FRAME_SAMPLES, MIMI_PRECISIONS, MIN_PAYLOAD_BPS,
                                 MIN_SPEECH_CODEBOOKS)
from sip_agent.media.types import LargeScLink

if TYPE_CHECKING:  # all import torch: only inside functions
    from largesc_codec.neural.model import Models
    from largesc_codec.sender import LargeSCSender
    from sip_agent.media.batch import MimiBatch


@dataclass(frozen=True)
class CodecOptions:
    """How the engine runs the codec (the ``largesc call/answer`` codec options)."""

    weights: str = "hub"
    plc: str = "lm"
    max_bps: float | None = None  # our own cap on what we send (None: the peer's maxbps)
    adapter: str | None = None
    batch_streams: int = 0  # > 0: all calls' Mimi steps batched on one thread, rows for this many calls
    mimi_precision: str = "fp32"  # MIMI_PRECISIONS: the fast path's arithmetic (fp32 = tokens exact)

    def check(self) -> None:
        """ValueError naming the option and the fix when the options cannot work together."""
        plc.check_concealer(self.plc, adapter=self.adapter is not None)
        if self.max_bps is not None and not (math.isfinite(self.max_bps) and self.max_bps >= MIN_PAYLOAD_BPS):
            raise ValueError(f"--max-bps {self.max_bps:g}: a LargeSC payload needs at least {MIN_PAYLOAD_BPS:g} bit/s "
                             f"(one codebook a frame; speech gets {MIN_SPEECH_CODEBOOKS} codebooks from 700); give "
                             f"--max-bps between {MIN_PAYLOAD_BPS:g} and {DEFAULT_MAX_BPS:g}")
        if self.mimi_precision not in MIMI_PRECISIONS:
            raise ValueError(f"--mimi-precision {self.mimi_precision!r}: give one of {', '.join(MIMI_PRECISIONS)}")
        if self.batch_streams < 0:
            raise ValueError(f"batch_streams must be 0 (no batch) or a number of calls, got {self.batch_streams}")

    @property
    def uses_lm(self) -> bool:
        """Whether the ``--plc`` concealer needs an LM (borrowed from ``MODELS`` per call)."""
        return plc.uses_lm(self.plc)


@dataclass(frozen=True)
class SendPlan:
    """Limits of our sender in one call (see module docstring)."""

    max_bps: float
    codebooks: int
    redundancy: int
    frames_per_packet: int

    @classmethod
    def from_link(cls, link: LargeScLink, options: CodecOptions, total_codebooks: int) -> "SendPlan":
        from largesc_codec.send.controller import MAX_REDUNDANCY_DISTANCE, AdaptiveController

        peer = link.send
        budget = min(peer.maxbps, options.max_bps if options.max_bps is not None else math.inf)
        plan = cls(budget, min(peer.maxcodebooks, total_codebooks), min(peer.maxred, MAX_REDUNDANCY_DISTANCE),
                   peer.frames_per_packet)
        try:
            AdaptiveController(max_bps=plan.max_bps, max_codebooks=plan.codebooks,
                               max_redundancy_distance=plan.redundancy)
        except ValueError as exc:
            raise ValueError(
                f"cannot send LargeSC within what the peer accepts (maxbps={peer.maxbps:g}, "
                f"maxcodebooks={peer.maxcodebooks}; our --max-bps {options.max_bps}): {exc}. A payload needs "
                f"at least {MIN_PAYLOAD_BPS:g} bit/s (speech {MIN_SPEECH_CODEBOOKS} codebooks from 700); the peer "
                "must accept that much") from exc
        return plan

    def build_sender(self, mimi: Any, sample_rate: int, channels: int, encoder: Any = None) -> LargeSCSender:
        """A LargeSCSender within this plan, fed PCM at ``sample_rate`` / ``channels``.

        ``encoder``: a batch row's (``batch.BatchEncoder``, ``self.codebooks`` a frame) instead of ``mimi``'s.
        """
        from largesc_codec.send.controller import AdaptiveController
        from largesc_codec.sender import LargeSCSender

        # The packetizer needs a distance >= 1 even when the peer forbids redundancy (maxred=0);
        # the controller then never asks for a copy.
        sender = LargeSCSender(mimi, sample_rate=sample_rate, channels=channels, max_bps=self.max_bps,
                               max_codebooks=self.codebooks, frames_per_packet=self.frames_per_packet,
                               max_redundancy_distance=max(1, self.redundancy), encoder=encoder)
        if self.redundancy == 0:
            sender.controller = AdaptiveController(max_bps=self.max_bps, max_codebooks=self.codebooks,
                                                   max_redundancy_distance=0)
        return sender


class ModelCache:
    """Models per weights source, and idle LMs per (weights, adapter), for the whole process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, Models] = {}
        self._idle_lms: dict[tuple[str, str | None], list[Any]] = {}
        self._prototypes: dict[tuple[str, str | None], Any] = {}  # loaded once, never streamed: copied per call
        self._batches: dict[tuple[str, int, str], MimiBatch] = {}

    def models(self, weights: str) -> Models:
        """``largesc_codec.neural.model.Models`` for ``weights`` (loaded on first use; WeightsError if it cannot)."""
        with self._lock:  # one loader at a time: a second caller waits and then shares
            if weights not in self._models:
                from largesc_codec.neural.model import load_models

                self._models[weights] = load_models(weights)
            return self._models[weights]

    def take_lm(self, weights: str, adapter: str | None) -> Any:
        """An LM no one else uses: an idle one, else a copy sharing the weights of one loaded once."""
        from largesc_codec.neural.model import shared_weights_copy

        key = (weights, adapter)
        with self._lock:
            idle = self._idle_lms.get(key)
            if idle:
                return idle.pop()
            prototype = self._prototypes.get(key)
        if prototype is None:  # first LM of these weights: from disk (slow), kept unused as the template
            prototype = self.models(weights).load_lm()
            if adapter:
                from largesc_codec.train.finetune import load_adapter

                prototype = load_adapter(prototype, adapter)
            with self._lock:
                prototype = self._prototypes.setdefault(key, prototype)
        return shared_weights_copy(prototype)

    def batch(self, weights: str, streams: int, precision: str = "fp32") -> MimiBatch:
        """The process's ``batch.MimiBatch`` of ``streams`` rows for ``weights`` (made on first use)."""
        key = (weights, streams, precision)
        with self._lock:
            found = self._batches.get(key)
        if found is None:
            from sip_agent.media.batch import MimiBatch

            models = self.models(weights)
            made = MimiBatch(models.new_mimi(), models.new_mimi(), streams, precision)
            with self._lock:
                found = self._batches.setdefault(key, made)
        return found

    def give_back_lm(self, weights: str, adapter: str | None, lm: Any) -> None:
        """Return an LM whose concealer has left streaming mode, for the next call."""
        with self._lock:
            self._idle_lms.setdefault((weights, adapter), []).append(lm)


MODELS = ModelCache()


def preload(options: CodecOptions) -> Models:
    """Load (and cache) what a call with ``options`` needs and warm it up; returns the Models.

    Slow (seconds; minutes for the real LM): do it before calls. The warm-up
    runs one encode, one decode and, with ``--plc lm``, a few concealer steps,
    so first-use costs are paid before a call, not in its first seconds.
    """
    realtime_torch()
    import numpy as np

    from largesc_codec.neural.decoder import MimiDecoder
    from largesc_codec.neural.encoder import MimiEncoder

    models = MODELS.models(options.weights)
    if options.batch_streams:
        MODELS.batch(options.weights, options.batch_streams, options.mimi_precision)  # its rows warm themselves
    codebooks = min(8, int(models.mimi.total_codebooks))
    silence = np.zeros(FRAME_SAMPLES, np.float32)
    precision = options.mimi_precision
    tokens = tuple(int(t) for t in MimiEncoder(models.new_mimi(), codebooks, precision=precision).encode(silence))
    decoder = MimiDecoder(models.new_mimi(), precision=precision)
    decoder.decode(tokens)
    decoder.decode(tokens[:1])
    if options.uses_lm:
        concealer, release = build_concealer(options, MODELS.take_lm(options.weights, options.adapter))
        concealer.observe(0, tokens)
        concealer.prepare()
        concealer.conceal(1, (), codebooks)
        concealer.prepare()
        release()
    return models


def realtime_torch() -> None:
    """Run moshi's layers uncompiled, for the whole process.

    moshi wraps some layers in a lazy ``torch.compile`` that compiles on first
    use and again whenever a new tensor shape comes by (the LM's depformer has
    another width than its transformer): seconds of CPU at unpredictable
    moments, which stall a call's 80 ms clock. On CPU the compiled layers were
    not measurably faster here. ``NO_TORCH_COMPILE`` covers moshi modules
    imported later; moshi's own switch (the flag its ``no_compile()`` sets)
    covers those already imported.
    """
    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    from moshi.utils import compile as moshi_compile

    moshi_compile._compile_disabled = True


def build_concealer(options: CodecOptions, lm: Any) -> tuple[concealers.Concealer, Callable[[], None]]:
    """The receiver's concealer and a function that releases it (the LM goes back to the cache).

    ``lm``: one taken from ``MODELS`` (adapter applied) when ``options.uses_lm``, else None.
    """
    concealer = plc.build_concealer(options.plc, None if lm is None else (lambda: lm))

    def release() -> None:
        # Leave streaming mode first: an LM still streaming cannot serve the next call.
        concealer.close()
        if lm is not None:
            MODELS.give_back_lm(options.weights, options.adapter, lm)

    return concealer, release
