"""Frame accounting of a LargeSC receiver against the capture (pure: no I/O, no clock).

Theory of operation
-------------------
A LargeSC packet carries ``frames_per_packet`` 80 ms frames and its RTP
timestamp is the first frame's index x 1920. Over the receiving agent's RTP
statistics window (packets ``a..b``, :func:`sip_agent.lab.analysis.agreement`)
the sender's capture gives the frame span (timestamp of ``b`` minus that of
``a``, plus one packet's frames); frames the sender never sent (its codec
skipped them when it ran late: timestamp gaps with consecutive sequence
numbers) and frames whose packet netem dropped are both *missing*.

The receiver plays every frame index once, as primary (its packet arrived),
recovered or partial (redundancy in later packets), concealed or comfort
(invented), unless the jitter buffer skipped it or it was still buffered when
the call ended: at most the final buffer delay's worth of frames plus one.
So, with ``unplayed`` = that bound + skipped frames:

* every missing frame was rescued, invented or left unplayed:
  ``recovered + partial + concealed + comfort >= missing - unplayed``;
* a frame plays as primary only if its packet arrived:
  ``primary <= arrived frames`` (inside the window, plus the few that arrived
  outside it, such as the receiver's probation packets).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from rtp.seqnum import TS_BITS, wrap_diff

__all__ = ["FRAME_TICKS", "frames_per_packet", "frame_accounting"]

FRAME_TICKS = 1920  # one 80 ms frame at 24 kHz


def frames_per_packet(timestamps: Mapping[int, int]) -> int:
    """Frames a packet carries: the smallest timestamp step between consecutive packets."""
    steps = [wrap_diff(timestamps[i], timestamps[i + 1], TS_BITS) for i in timestamps
             if i + 1 in timestamps]
    positive = [s for s in steps if s > 0]
    return max(1, min(positive) // FRAME_TICKS) if positive else 1


def frame_accounting(timestamps: Mapping[int, int], arrived: set[int], window: list[int] | None,
                     media: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The checks of the module docstring (None unless the receiver counts LargeSC frames).

    ``timestamps``: RTP timestamp of every sent packet index; ``arrived``: indices that
    reached the receiver; ``window``: the agent's [first, last] packet index.
    """
    extra = (media or {}).get("extra") or {}
    if media is None or window is None or "frames_primary" not in extra:
        return None
    a, b = window
    if a not in timestamps or b not in timestamps:
        return None
    fpp = frames_per_packet(timestamps)
    span = wrap_diff(timestamps[a], timestamps[b], TS_BITS) // FRAME_TICKS + fpp
    inside = sum(1 for i in arrived if a <= i <= b) * fpp
    outside = sum(1 for i in arrived if not a <= i <= b) * fpp
    primary, partial = int(extra["frames_primary"]), int(extra.get("frames_partial", 0))
    comfort, skipped = int(extra.get("frames_comfort", 0)), int(extra.get("jitter_buffer_skipped", 0))
    recovered, concealed = int(media.get("frames_recovered", 0)), int(media.get("frames_concealed", 0))
    buffered = math.ceil(float(extra.get("jitter_buffer_ms", 0.0)) / 80.0) + 1
    handled = recovered + partial + concealed + comfort
    missing = span - inside
    unplayed = buffered + skipped
    return {"frames_per_packet": fpp, "span": span, "arrived": inside, "missing": missing,
            "not_sent_by_sender": span - (b - a + 1) * fpp, "played": primary + handled,
            "primary": primary, "recovered": recovered, "partial": partial,
            "concealed": concealed, "comfort": comfort, "unplayed_at_most": unplayed,
            "consistent": handled >= missing - unplayed and primary <= inside + outside}
