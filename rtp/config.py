"""Settings of an ``RtpSession`` and the datagrams it hands to a transport."""

from __future__ import annotations

from dataclasses import dataclass

from rtp.interval import RTCP_MIN_INTERVAL_S
from rtp.stats import MIN_SEQUENTIAL


@dataclass(frozen=True)
class SessionConfig:
    """Static settings of a session. ``ntp_offset_ms`` = Unix time (ms) at ``now_ms == 0``.

    ``ssrc``, initial sequence number and timestamp are drawn from ``seed``
    when not given (RFC 3550 wants them random). ``rtcp_bw_bps`` defaults to
    5 % of ``session_bw_bps``. A source is delivered once ``min_sequential``
    packets came in sequence (RFC 3550 A.1 probation); with
    ``trust_first_source`` the session's first SSRC is delivered from its first
    packet (signalling named the peer, so holding its first packet would only
    start playout a packet late) and every later SSRC serves the probation.
    A validated new SSRC replaces the delivered one only after that one has sent
    nothing for ``source_quiet_ms`` (or said BYE).
    """

    payload_type: int = 96
    clock_rate: int = 24_000
    frame_ticks: int = 1_920
    frame_ms: float = 80.0
    frames_per_packet: int = 1
    cname: str = "largesc@127.0.0.1"
    ssrc: int | None = None
    initial_seq: int | None = None
    initial_ts: int | None = None
    session_bw_bps: float = 8_000.0
    rtcp_bw_bps: float | None = None
    rtcp_min_interval_s: float = RTCP_MIN_INTERVAL_S
    min_sequential: int = MIN_SEQUENTIAL
    trust_first_source: bool = False
    source_quiet_ms: float = 400.0  # five 80 ms packets
    seed: int | None = None
    ntp_offset_ms: float = 0.0


@dataclass(frozen=True)
class Datagram:
    """One datagram to put on the wire: RTCP (``rtcp=True``) or RTP."""

    rtcp: bool
    data: bytes
