"""When to send RTCP: the RFC 3550 interval computation and its timer (A.7), sans-IO.

Theory of operation
-------------------
``rtcp_interval`` is RFC 3550 A.7's function: the deterministic interval is
the average compound size times the number of members sharing the RTCP
bandwidth (senders share 25 % of it when they are at most a quarter of the
members), never below the minimum (halved before the first report), then
randomised uniformly over [0.5, 1.5] and divided by e - 3/2 to compensate
the timer reconsideration's bias towards shorter intervals.

``RtcpScheduler`` holds tp (last send), tn (next check) and the average
compound size (including 28 bytes of UDP/IPv4 header). When the timer fires
(``due``), the interval is recomputed from the current membership (forward
reconsideration): if tp + T is already past, the caller sends (then calls
``sent``), otherwise tn moves to tp + T. ``members_left`` applies reverse
reconsideration after BYEs. Randomness comes from a caller-seeded
``random.Random``; time is passed in as milliseconds.
"""

from __future__ import annotations

import math
import random

RTCP_MIN_INTERVAL_S = 5.0
SENDER_BW_FRACTION = 0.25
RECEIVER_BW_FRACTION = 0.75
COMPENSATION = math.e - 1.5
UDP_IP_OVERHEAD = 28


def reduced_min_interval_s(session_bw_bps: float) -> float:
    """RFC 3550 6.2's reduced minimum: 360 / (session bandwidth in kbit/s) seconds."""
    if session_bw_bps <= 0:
        raise ValueError(f"session bandwidth must be > 0, got {session_bw_bps}")
    return 360.0 / (session_bw_bps / 1000.0)


def rtcp_interval(
    members: int,
    senders: int,
    rtcp_bw_bytes_s: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    rng: random.Random,
    min_interval_s: float = RTCP_MIN_INTERVAL_S,
) -> float:
    """Randomised RTCP interval in seconds (RFC 3550 A.7 ``rtcp_interval``)."""
    if rtcp_bw_bytes_s <= 0:
        raise ValueError(f"RTCP bandwidth must be > 0, got {rtcp_bw_bytes_s}")
    min_time = min_interval_s / 2 if initial else min_interval_s
    n = max(1, members)
    bw = rtcp_bw_bytes_s
    if senders <= members * SENDER_BW_FRACTION:
        if we_sent:
            bw *= SENDER_BW_FRACTION
            n = max(1, senders)
        else:
            bw *= RECEIVER_BW_FRACTION
            n = max(1, members - senders)
    t = max(avg_rtcp_size * n / bw, min_time)
    return t * (rng.random() + 0.5) / COMPENSATION


class RtcpScheduler:
    """The RTCP transmission timer of one participant (RFC 3550 A.7 OnExpire)."""

    def __init__(
        self,
        rtcp_bw_bps: float,
        rng: random.Random,
        min_interval_s: float = RTCP_MIN_INTERVAL_S,
        initial_size: int = 128,
    ) -> None:
        if rtcp_bw_bps <= 0 or min_interval_s < 0:
            raise ValueError("RTCP bandwidth must be > 0 and the minimum interval >= 0")
        self.rtcp_bw_bytes_s = rtcp_bw_bps / 8.0
        self.rng = rng
        self.min_interval_s = min_interval_s
        self.avg_rtcp_size = float(initial_size)
        self.initial = True
        self.tp = 0.0
        self.next_ms = math.inf
        self.pmembers = 1
        self.last_interval_ms = min_interval_s * 1000.0

    def _interval_ms(self, members: int, senders: int, we_sent: bool) -> float:
        t = rtcp_interval(
            members, senders, self.rtcp_bw_bytes_s, we_sent, self.avg_rtcp_size,
            self.initial, self.rng, self.min_interval_s,
        )
        self.last_interval_ms = t * 1000.0
        return self.last_interval_ms

    def start(self, now_ms: float, members: int = 1, senders: int = 0, we_sent: bool = False) -> None:
        """Schedule the first report (initial interval: half the minimum)."""
        self.tp = now_ms
        self.pmembers = members
        self.next_ms = now_ms + self._interval_ms(members, senders, we_sent)

    def due(self, now_ms: float, members: int, senders: int, we_sent: bool) -> bool:
        """Timer check: True = send a report now; False = rescheduled (or not yet expired)."""
        if now_ms < self.next_ms:
            return False
        tn = self.tp + self._interval_ms(members, senders, we_sent)
        self.pmembers = members
        if tn <= now_ms:
            return True
        self.next_ms = tn
        return False

    def sent(self, now_ms: float, size_bytes: int, members: int, senders: int, we_sent: bool) -> None:
        """A compound packet of ``size_bytes`` (without UDP/IP) left: update the average, rearm."""
        self.avg_rtcp_size += ((size_bytes + UDP_IP_OVERHEAD) - self.avg_rtcp_size) / 16.0
        self.tp = now_ms
        self.initial = False
        self.pmembers = members
        self.next_ms = now_ms + self._interval_ms(members, senders, we_sent)

    def members_left(self, now_ms: float, members: int) -> None:
        """Reverse reconsideration (RFC 3550 6.3.4) when the group shrank to ``members``."""
        if members >= self.pmembers or self.next_ms == math.inf:
            self.pmembers = max(members, 1)
            return
        ratio = members / self.pmembers
        self.next_ms = now_ms + ratio * (self.next_ms - now_ms)
        self.tp = now_ms - ratio * (now_ms - self.tp)
        self.pmembers = max(members, 1)
