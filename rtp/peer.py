"""Which source addresses a session takes media from (sans-IO: addresses in, verdicts out).

Signalling names the peer: its RTP address, and its RTCP address (RTP port + 1
unless the SDP said otherwise, the same address with rtcp-mux). A datagram
from anywhere else is refused before it is parsed, so a stranger can neither
replace the call's audio nor steer the sender through forged RTCP.

A peer behind a NAT sends from an address its SDP does not name. For it,
``latch=True`` (symmetric RTP, RFC 4961 / "latching"): the first RTP datagram
and the first RTCP datagram of the call fix the peer's addresses, once, and
the session answers there. Latching is opt-in because whoever sends first
wins it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

Address = tuple[str, int]


class Verdict(enum.Enum):
    ADMIT = "admit"
    REFUSED_SOURCE = "refused source"  # not the negotiated (or latched) peer


@dataclass
class PeerFilter:
    """The peer's addresses as negotiated; ``admit`` decides per datagram and latches when allowed."""

    rtp: Address | None
    rtcp: Address | None
    latch: bool = False
    _rtp_latched: bool = False
    _rtcp_latched: bool = False

    def admit(self, source: Address, rtcp: bool) -> Verdict:
        """The verdict on one datagram from ``source`` (``rtcp``: it came to the RTCP port or is RTCP)."""
        if rtcp:
            if self.latch and not self._rtcp_latched:
                self.rtcp, self._rtcp_latched = source, True
            return Verdict.ADMIT if source == self.rtcp else Verdict.REFUSED_SOURCE
        if self.latch and not self._rtp_latched:
            self.rtp, self._rtp_latched = source, True
        return Verdict.ADMIT if source == self.rtp else Verdict.REFUSED_SOURCE
