"""Receiver statistics for one remote source (RFC 3550 Appendix A), sans-IO.

Theory of operation
-------------------
``update(seq, timestamp, now_ms)`` is called for every RTP packet of the
source and says whether the packet is valid:

* A.1 sequence tracking: a new source is on probation until
  ``min_sequential`` packets arrive in sequence; after that a jump of less
  than ``max_dropout`` ahead is accepted (counting a wrap into ``cycles``),
  a packet up to ``max_misorder`` behind is a duplicate or late packet, and
  anything else is a "bad" jump, accepted only when the next packet follows
  it in sequence (the sender restarted), which re-initialises the state.
* A.3 loss: expected = extended max - base + 1; cumulative lost = expected -
  received (24-bit signed, clamped); fraction lost over the interval between
  two ``make_report`` calls, in 1/256.
* A.8 jitter: with transit = arrival (RTP units) - timestamp,
  ``J += (|D| - J) / 16`` for the transit difference D of successive packets.
* Bursts: every valid packet sets its flag in a map over extended sequence
  numbers since the last report; ``make_report`` closes the map at the
  highest sequence number, so packets reordered across that edge count as
  lost there. The map is both the XR Loss RLE block and a local LossReport.

All wrap arithmetic goes through ``seqnum``. No clock is read: arrival times
come in as ``now_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtp.feedback import LossReport
from rtp.ntp import ntp_compact
from rtp.rtcp import ReportBlock
from rtp.rtcp_xr import LossRleBlock, burst_report
from rtp.seqnum import SEQ_MOD, seq_add, seq_diff, seq_forward, ts_diff

MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
MAX_MAP = 16384  # packets of loss map kept between reports (about 22 min at 12.5 packets/s)


@dataclass(frozen=True)
class SourceReport:
    """What one ``make_report`` produced: the RR block, the XR Loss RLE block and the local loss view."""

    block: ReportBlock
    rle: LossRleBlock | None
    loss: LossReport | None


class SourceStats:
    """Sequence, loss, jitter and burst statistics of one SSRC we receive from."""

    def __init__(
        self,
        ssrc: int,
        clock_rate: int,
        min_sequential: int = MIN_SEQUENTIAL,
        max_dropout: int = MAX_DROPOUT,
        max_misorder: int = MAX_MISORDER,
    ) -> None:
        if clock_rate <= 0 or min_sequential < 0:
            raise ValueError("clock_rate must be > 0 and min_sequential >= 0")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.min_sequential = min_sequential
        self.max_dropout = max_dropout
        self.max_misorder = max_misorder
        self.probation = min_sequential
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = SEQ_MOD + 1
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0
        self.last_rtp_ms: float | None = None
        self._started = False
        self._transit: tuple[float, int] | None = None  # (arrival in RTP units, timestamp) of the last packet
        self._map_begin = 0
        self._map = bytearray()
        self._lsr = 0
        self._sr_arrival_ms = 0.0

    @property
    def valid(self) -> bool:
        """True once the source has passed probation."""
        return self._started and self.probation == 0

    @property
    def extended_max(self) -> int:
        """Highest extended sequence number (cycles + max_seq)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.valid else 0

    @property
    def cumulative_lost(self) -> int:
        """expected - received, clamped to the 24-bit signed range of a report block."""
        return max(-(1 << 23), min((1 << 23) - 1, self.expected - self.received))

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0
        self._map_begin = seq
        self._map = bytearray()
        self._transit = None

    def _update_seq(self, seq: int) -> bool:
        if not self._started:  # A.1: first packet seen
            self._started = True
            self._init_seq(seq)
            self.max_seq = seq_add(seq, -1)
            self.probation = self.min_sequential
            if self.probation == 0:
                self._init_seq(seq)
                self.received += 1
                return True
        udelta = seq_forward(self.max_seq, seq)
        if self.probation:
            if seq == seq_add(self.max_seq, 1):
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = max(self.min_sequential - 1, 0)
                self.max_seq = seq
            return False
        if udelta < self.max_dropout:
            if seq < self.max_seq:  # in order, with permissible gap, wrapped
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - self.max_misorder:
            if seq == self.bad_seq:  # two sequential packets after a big jump: the sender restarted
                self._init_seq(seq)
            else:
                self.bad_seq = seq_add(seq, 1)
                return False
        # else: duplicate or reordered packet, counted as received
        self.received += 1
        return True

    def update(self, seq: int, timestamp: int, now_ms: float) -> bool:
        """Account one arriving RTP packet; False while on probation or after a bad jump."""
        if not self._update_seq(seq):
            return False
        self.last_rtp_ms = now_ms
        ext = self.extended_max + seq_diff(self.max_seq, seq)
        offset = ext - self._map_begin
        if offset >= 0:
            if offset >= MAX_MAP:  # nobody reported for a long time: forget the oldest part
                drop = offset - MAX_MAP + 1
                del self._map[:drop]
                self._map_begin += drop
                offset -= drop
            if offset >= len(self._map):
                self._map.extend(bytes(offset + 1 - len(self._map)))
            self._map[offset] = 1
        arrival = now_ms * self.clock_rate / 1000.0
        if self._transit is not None:
            prev_arrival, prev_ts = self._transit
            d = (arrival - prev_arrival) - ts_diff(prev_ts, timestamp)
            self.jitter += (abs(d) - self.jitter) / 16.0
        self._transit = (arrival, timestamp)
        return True

    def on_sender_report(self, ntp: int, now_ms: float) -> None:
        """Remember an SR from this source for the next block's LSR/DLSR."""
        self._lsr = ntp_compact(ntp)
        self._sr_arrival_ms = now_ms

    def make_report(self, now_ms: float) -> SourceReport:
        """Close the reporting interval: RR block (A.3 fraction), XR Loss RLE and local LossReport."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        dlsr = 0
        if self._lsr:
            dlsr = max(0, min(0xFFFFFFFF, round((now_ms - self._sr_arrival_ms) * 65.536)))
        block = ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(255, fraction),
            cumulative_lost=self.cumulative_lost,
            highest_seq=self.extended_max % (1 << 32),
            jitter=min(0xFFFFFFFF, int(self.jitter)),
            lsr=self._lsr,
            dlsr=dlsr,
        )
        end = self.extended_max + 1
        covered = max(0, min(end - self._map_begin, 0xFFFF))
        flags = tuple(bool(b) for b in self._map[:covered])
        flags += (False,) * (covered - len(flags))
        rle = LossRleBlock.of(self.ssrc, seq_add(self._map_begin, 0), flags) if covered else None
        del self._map[:covered]
        self._map_begin += covered
        return SourceReport(block, rle, burst_report(flags))
