"""NTP timestamps for RTCP (RFC 3550 4 and 6.4.1): SR times, LSR/DLSR and round-trip time.

A 64-bit NTP time is 32.32 fixed-point seconds since 1900. RTCP's LSR and
DLSR use its middle 32 bits (16.16 seconds), a wrapping clock: the RTT a
media sender computes from a report block is ``A - LSR - DLSR`` with A its
own compact NTP time when the report arrived, all modulo 2**32.
"""

from __future__ import annotations

from rtp.seqnum import wrap_diff

NTP_UNIX_OFFSET_S = 2_208_988_800


def ntp_from_unix_ms(unix_ms: float) -> int:
    """64-bit NTP timestamp (32.32 seconds since 1900) for a Unix time in milliseconds."""
    value = round((unix_ms / 1000.0 + NTP_UNIX_OFFSET_S) * (1 << 32))
    return value % (1 << 64)


def ntp_compact(ntp: int) -> int:
    """Middle 32 bits of a 64-bit NTP time (16.16 seconds): the LSR / DLSR clock."""
    return (ntp >> 16) & 0xFFFFFFFF


def rtt_ms(arrival_compact: int, lsr: int, dlsr: int) -> float | None:
    """Round-trip time from a report block (RFC 3550 6.4.1); None when no SR was reported.

    All three values are 16.16 fixed-point seconds on a wrapping 32-bit clock;
    a small negative result (clock granularity) is returned as 0.
    """
    if lsr == 0:
        return None
    rtt = wrap_diff(0, (arrival_compact - lsr - dlsr) % (1 << 32), 32)
    return max(0.0, rtt * 1000.0 / 65536.0)
