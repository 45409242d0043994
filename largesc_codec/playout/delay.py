"""The adaptive target delay of the jitter buffer (NetEQ-style delay estimation).

Theory of operation of ``DelayEstimator`` (after WebRTC NetEQ's DelayManager):

* Every accepted packet gives a *transit* time: arrival time minus the nominal
  send time of its first frame (``frame_index * 80 ms``). Sender and receiver
  clocks are unrelated, so only differences matter. The *base* is the smallest
  transit among the last ``history_packets`` packets (the fastest recent
  packet); a packet's *relative delay* is its transit minus the base (>= 0).
  Counting packets rather than milliseconds keeps the base through an outage;
  clock drift moves it slowly as old packets leave the window.
* Samples go into a histogram (``bucket_ms`` wide buckets) with exponential
  forgetting: each sample scales the past by ``forget`` and adds weight
  ``1 - forget`` to its bucket. While few samples have been seen the new
  weight is ``1/n`` instead (a plain average), so the start-up prior (all weight
  at ``initial_delay_ms``) is forgotten after a few dozen samples. The buffer
  adds one sample per FRAME, when its first copy arrives: a frame whose primary
  was lost but whose copy rides d packets later counts d * 80 ms later. So the
  quantile reads "95 % of frames known in time": when losses are frequent
  enough, the target grows until in-band redundancy arrives before the
  deadline; rare losses are concealed instead of paid for with latency.
* The target delay is the ``quantile`` (95 %) of that histogram, taken at the
  upper edge of its bucket, clamped to ``[min_delay_ms, max_delay_ms]``. It is
  not rounded to whole frames: the playout point moves in 80 ms steps anyway
  and settles within ``[target, target + 80)`` (see buffer.py), so rounding up
  would only add latency.
* The *current* delay of the playout point is ``now - cursor * 80 - base``: how
  long after the fastest possible arrival of frame ``cursor`` it is played.
* ``deviation`` tells how far a new packet's transit is from the base, before
  it is counted; the buffer uses it to spot timestamp jumps and path changes.
  Packets that deviate by more than the buffer's jump threshold never reach
  the histogram (they are restarts or stray packets, not jitter).
"""

from __future__ import annotations

import math
from collections import deque

from largesc_codec.types import FRAME_MS


def _check_ms(name: str, value: float, low: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite number >= {low:g}, got {value!r}")


class DelayEstimator:
    """Relative-delay histogram with forgetting -> target playout delay (ms).

    Args:
        min_delay_ms, max_delay_ms: bounds of the target delay.
        quantile: the share of packets that should arrive in time (0.5..0.999).
        forget: per-packet forgetting factor of the histogram (0 < forget < 1).
        bucket_ms: histogram resolution.
        history_packets: how many recent packets define the base (fastest transit).
        initial_delay_ms: the prior target before packets have been measured.
    """

    def __init__(
        self,
        min_delay_ms: float = 0.0,
        max_delay_ms: float = 400.0,
        quantile: float = 0.95,
        forget: float = 0.95,
        bucket_ms: float = 10.0,
        history_packets: int = 32,
        initial_delay_ms: float = 0.0,
    ) -> None:
        _check_ms("min_delay_ms", min_delay_ms)
        _check_ms("max_delay_ms", max_delay_ms, min_delay_ms)
        _check_ms("initial_delay_ms", initial_delay_ms)
        _check_ms("bucket_ms", bucket_ms, 1.0)
        if not 0.5 <= quantile <= 0.999:
            raise ValueError(f"quantile must be in 0.5..0.999, got {quantile!r}")
        if not 0.0 < forget < 1.0:
            raise ValueError(f"forget must be in (0, 1), got {forget!r}")
        if isinstance(history_packets, bool) or not isinstance(history_packets, int) or history_packets < 1:
            raise ValueError(f"history_packets must be an int >= 1, got {history_packets!r}")
        self.min_delay_ms = float(min_delay_ms)
        self.max_delay_ms = float(max_delay_ms)
        self.quantile = quantile
        self.forget = forget
        self.bucket_ms = float(bucket_ms)
        # One bucket past max_delay collects everything slower.
        self._weights = [0.0] * (int(math.ceil(self.max_delay_ms / self.bucket_ms)) + 1)
        self._weights[self._bucket(initial_delay_ms)] = 1.0
        self._count = 1  # the prior counts as one packet
        self._transits: deque[float] = deque(maxlen=history_packets)

    def _bucket(self, delay_ms: float) -> int:
        return min(len(self._weights) - 1, max(0, int(delay_ms // self.bucket_ms)))

    @property
    def base_ms(self) -> float | None:
        """Smallest transit (arrival - frame * 80) among recent packets; None before any."""
        return min(self._transits) if self._transits else None

    def reset_base(self) -> None:
        """Forget the transit history (a new stream or path); keep the jitter histogram."""
        self._transits.clear()

    def deviation(self, arrival_ms: float, frame_index: int) -> float:
        """Transit of a would-be packet minus the current base (0 when there is no base)."""
        base = self.base_ms
        return 0.0 if base is None else arrival_ms - frame_index * FRAME_MS - base

    def update_base(self, arrival_ms: float, frame_index: int) -> None:
        """Count the transit of a packet whose first primary frame is ``frame_index``."""
        self._transits.append(arrival_ms - frame_index * FRAME_MS)

    def add_sample(self, arrival_ms: float, frame_index: int) -> float:
        """Add the relative delay (ms, >= 0) of a frame's first copy to the histogram; returns it."""
        base = self.base_ms
        rel = 0.0 if base is None else max(0.0, arrival_ms - frame_index * FRAME_MS - base)
        self._count += 1
        w = max(1.0 - self.forget, 1.0 / self._count)
        self._weights = [x * (1.0 - w) for x in self._weights]
        self._weights[self._bucket(rel)] += w
        return rel

    def update(self, arrival_ms: float, frame_index: int) -> float:
        """``update_base`` then ``add_sample`` for a one-frame packet; returns its relative delay."""
        self.update_base(arrival_ms, frame_index)
        return self.add_sample(arrival_ms, frame_index)

    def jitter_ms(self) -> float:
        """The ``quantile`` of relative delays (upper bucket edge), unclamped."""
        total = sum(self._weights)
        acc = 0.0
        for b, x in enumerate(self._weights):
            acc += x
            if acc >= self.quantile * total - 1e-12:
                return (b + 1) * self.bucket_ms
        return len(self._weights) * self.bucket_ms

    def target_ms(self) -> float:
        """Target playout delay: the jitter quantile clamped to [min_delay_ms, max_delay_ms]."""
        return min(self.max_delay_ms, max(self.min_delay_ms, self.jitter_ms()))

    def current_ms(self, now_ms: float, cursor: int) -> float:
        """Delay of playing frame ``cursor`` at ``now_ms`` over the base (0 with no base)."""
        return self.deviation(now_ms, cursor)
