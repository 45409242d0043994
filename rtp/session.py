"""One RTP session endpoint (RFC 3550), sans-IO: bytes and ``now_ms`` in, datagrams out.

Theory of operation
-------------------
Sending. After ``start(now_ms)``, every ``poll(now_ms)`` sends the packets
that are due on the frame clock: one packet every ``frames_per_packet`` x
``frame_ms`` (the ptime). For each, the session calls the media source
``source(first_frame, frames)`` and expects ONE payload covering those
``frames`` frames (``bytes``), or ``None`` for "nothing to send" (silence,
DTX: the timestamp still advances and the next packet carries the marker,
as do the first packet of the stream). The RTP timestamp of frame ``i`` is
``ts0 + i * frame_ticks``. A caller that keeps its own frame clock (a codec
that emits packets when it has them) skips the source and calls
``send_payload(payload, now_ms, frame_index, marker)`` instead. At most
``MAX_CATCH_UP`` packets go out per poll; after a longer stall the frame
clock jumps to ``now_ms`` (frame numbering stays contiguous).

Receiving. ``receive_rtp`` / ``receive_rtcp`` (or ``receive`` with
rtcp-mux) parse datagrams; malformed ones are counted in ``counters`` and
dropped. RTP packets update the source's ``SourceStats``; packets of a source
still on probation are held and released in order once it is validated;
packets of the ``active`` source go to ``on_rtp(packet, arrival_ms)``, a held
packet with its own arrival time (a jitter buffer would otherwise see the
first packet of every stream one packet interval late). This probation is the
receive path's only one (``SessionConfig.trust_first_source``: a negotiated
peer's first SSRC is delivered from its first packet). One source is active
at a time: a validated new SSRC takes over only once the active one has been
quiet for ``SessionConfig.source_quiet_ms`` (or said BYE); until then its
packets are counted (``rtp_refused_ssrc``) and dropped, so one injected
packet cannot replace the call's stream. RTCP updates LSR/DLSR state,
RTT (from blocks about us), member lists (SDES, BYE) and the peer's view of
our stream: ``peer_loss_report`` (and ``on_loss_report``), from its XR Loss
RLE block when present (fraction and mean burst), else from its RR fraction;
only reports sent by the active source count (``rtcp_refused_report`` else).
Tables keyed by remote input are capped (rtp/sources.py).

Reporting. ``RtcpScheduler`` decides when; the compound packet is SR (if we
sent RTP within the last two intervals) or RR, then SDES CNAME, then XR with
one Loss RLE block per reported source.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

from rtp import ntp, rtcp
from rtp import packet as rtp_packet
from rtp.config import Datagram, SessionConfig
from rtp.feedback import LossReport
from rtp.interval import RtcpScheduler
from rtp.packet import RtpPacket
from rtp.rtcp_xr import LossRleBlock, XrPacket
from rtp.seqnum import seq_add, ts_add
from rtp.sources import MAX_SOURCES, SourceTable
from rtp.stats import SourceStats

PayloadSource = Callable[[int, int], Optional[bytes]]
RtpSink = Callable[[RtpPacket, float], None]
MAX_CATCH_UP = 5
MAX_REPORTS = 31
__all__ = ["Datagram", "PayloadSource", "RtpSession", "RtpSink", "SessionConfig"]


@dataclass
class _Sender:
    packets: int = 0
    octets: int = 0
    last_ts: int = 0
    last_ms: float | None = None
    silent: bool = True  # next packet starts a talkspurt (marker)


class RtpSession:
    """RTP/RTCP endpoint logic for one SSRC; see the module header for the contract."""

    def __init__(
        self,
        config: SessionConfig | None = None,
        source: PayloadSource | None = None,
        on_rtp: RtpSink | None = None,
        on_loss_report: Callable[[LossReport], None] | None = None,
        on_bye: Callable[[int], None] | None = None,
    ) -> None:
        config = config or SessionConfig()
        if config.frames_per_packet < 1 or config.frame_ms <= 0:
            raise ValueError("frames_per_packet must be >= 1 and frame_ms > 0")
        self.config = config
        self.rng = random.Random(config.seed)
        self.ssrc = config.ssrc if config.ssrc is not None else self.rng.getrandbits(32)
        self._seq = config.initial_seq if config.initial_seq is not None else self.rng.getrandbits(16)
        self.ts_base = config.initial_ts if config.initial_ts is not None else self.rng.getrandbits(32)
        self.source, self.on_rtp, self.on_loss_report, self.on_bye = source, on_rtp, on_loss_report, on_bye
        rtcp_bw = config.rtcp_bw_bps if config.rtcp_bw_bps is not None else 0.05 * config.session_bw_bps
        self.scheduler = RtcpScheduler(rtcp_bw, self.rng, config.rtcp_min_interval_s)
        self.counters: Counter[str] = Counter()
        self.table = SourceTable(config, self.counters)
        self.peer_loss_report: LossReport | None = None
        self.rtt_ms: float | None = None
        self._sender = _Sender()
        self._next_frame = 0
        self._next_packet_ms: float | None = None

    @property
    def sources(self) -> dict[int, SourceStats]:
        return self.table.sources

    @property
    def cnames(self) -> dict[int, str]:
        return self.table.cnames

    @property
    def active(self) -> int | None:
        """The SSRC whose packets are delivered (None before the first)."""
        return self.table.active

    # -- clock --------------------------------------------------------------
    @property
    def ptime_ms(self) -> float:
        return self.config.frame_ms * self.config.frames_per_packet

    def _ntp(self, now_ms: float) -> int:
        return ntp.ntp_from_unix_ms(now_ms + self.config.ntp_offset_ms)

    def start(self, now_ms: float) -> None:
        """Start the frame clock (first packet due now) and the RTCP timer."""
        self._next_packet_ms = now_ms
        self.scheduler.start(now_ms, self._members(), 0, self.source is not None)

    def next_deadline_ms(self) -> float:
        """When ``poll`` has work next (packet due or RTCP timer)."""
        due = self.scheduler.next_ms
        if self.source is not None and self._next_packet_ms is not None:
            due = min(due, self._next_packet_ms)
        return due

    def poll(self, now_ms: float) -> list[Datagram]:
        """Datagrams due at ``now_ms``: paced RTP from the source, then RTCP if the timer says so."""
        out: list[Datagram] = []
        if self.source is not None and self._next_packet_ms is not None:
            sent = 0
            while self._next_packet_ms <= now_ms and sent < MAX_CATCH_UP:
                payload = self.source(self._next_frame, self.config.frames_per_packet)
                if payload is None:
                    self._sender.silent = True
                else:
                    out.append(self.send_payload(payload, now_ms, self._next_frame))
                self._next_frame += self.config.frames_per_packet
                self._next_packet_ms += self.ptime_ms
                sent += 1
            if self._next_packet_ms <= now_ms:  # stalled: resynchronise the frame clock
                self.counters["pacing_resync"] += 1
                self._next_packet_ms = now_ms + self.ptime_ms
        members, senders, we_sent = self._members(), self._senders(now_ms), self._we_sent(now_ms)
        if self.scheduler.due(now_ms, members, senders, we_sent):
            data = rtcp.serialize_compound(self._report_packets(now_ms))
            self.scheduler.sent(now_ms, len(data), members, senders, we_sent)
            self.counters["rtcp_sent"] += 1
            out.append(Datagram(True, data))
        return out

    # -- sending ------------------------------------------------------------
    def send_payload(self, payload: bytes, now_ms: float, frame_index: int, marker: bool | None = None) -> Datagram:
        """Build the RTP packet of ``payload`` whose first frame is ``frame_index``.

        ``marker=None`` sets it on the first packet and after a silent gap.
        """
        s = self._sender
        ts = ts_add(self.ts_base, frame_index * self.config.frame_ticks)
        pkt = RtpPacket(
            payload_type=self.config.payload_type,
            sequence_number=self._seq,
            timestamp=ts,
            ssrc=self.ssrc,
            payload=payload,
            marker=s.silent if marker is None else marker,
        )
        self._seq = seq_add(self._seq, 1)
        s.packets += 1
        s.octets += len(payload)
        s.last_ts, s.last_ms, s.silent = ts, now_ms, False
        self.counters["rtp_sent"] += 1
        return Datagram(False, rtp_packet.serialize(pkt))

    def bye(self, now_ms: float, reason: str = "") -> Datagram:
        """Final compound packet (report, SDES, BYE); the caller sends it and stops."""
        packets = self._report_packets(now_ms) + [rtcp.Bye((self.ssrc,), reason)]
        self.counters["rtcp_sent"] += 1
        return Datagram(True, rtcp.serialize_compound(packets))

    def _report_packets(self, now_ms: float) -> list[rtcp.RtcpPacket]:
        valid = [s for s in self.sources.values() if s.valid][:MAX_REPORTS]
        reports = [s.make_report(now_ms) for s in valid]
        blocks = tuple(r.block for r in reports)
        first: rtcp.RtcpPacket
        s = self._sender
        if self._we_sent(now_ms) and s.last_ms is not None:
            rtp_ts = ts_add(s.last_ts, round((now_ms - s.last_ms) * self.config.clock_rate / 1000.0))
            first = rtcp.SenderReport(self.ssrc, self._ntp(now_ms), rtp_ts, s.packets % (1 << 32), s.octets % (1 << 32), blocks)
        else:
            first = rtcp.ReceiverReport(self.ssrc, blocks)
        out: list[rtcp.RtcpPacket] = [first, rtcp.Sdes((rtcp.SdesChunk(self.ssrc, ((rtcp.SDES_CNAME, self.config.cname),)),))]
        rle = tuple(r.rle for r in reports if r.rle is not None)
        if rle:
            out.append(XrPacket(self.ssrc, rle))
        return out

    # -- membership (RFC 3550 6.3) -------------------------------------------
    def _members(self) -> int:
        return 1 + len(self.sources)

    def _senders(self, now_ms: float) -> int:
        # active senders, ourselves included (RFC 3550 6.3: sent RTP within the last two intervals)
        horizon = 2 * self.scheduler.last_interval_ms
        remote = sum(1 for s in self.sources.values() if s.last_rtp_ms is not None and now_ms - s.last_rtp_ms <= horizon)
        return remote + (1 if self._we_sent(now_ms) else 0)

    def _we_sent(self, now_ms: float) -> bool:
        last = self._sender.last_ms
        return last is not None and now_ms - last <= 2 * self.scheduler.last_interval_ms

    # -- receiving ----------------------------------------------------------
    def receive(self, data: bytes, now_ms: float) -> None:
        """rtcp-mux (RFC 5761): RTCP packet types 192..223 in the second byte, else RTP."""
        if len(data) >= 2 and 192 <= data[1] <= 223:
            self.receive_rtcp(data, now_ms)
        else:
            self.receive_rtp(data, now_ms)

    def receive_rtp(self, data: bytes, now_ms: float) -> None:
        """Account and deliver one RTP datagram; malformed ones are counted and dropped."""
        try:
            pkt = rtp_packet.parse(data)
        except ValueError:
            self.counters["rtp_malformed"] += 1
            return
        if pkt.ssrc == self.ssrc:
            self.counters["rtp_own_ssrc"] += 1  # our own packets looped back, or an SSRC collision
            return
        released = self.table.admit(pkt, now_ms)
        error: Exception | None = None
        for p, arrived in released:
            try:
                self._deliver(p, arrived)
            except Exception as exc:  # deliver the rest, then let the caller see the first error
                error = error or exc
        if error is not None:
            raise error

    def _deliver(self, pkt: RtpPacket, now_ms: float) -> None:
        if self.on_rtp is not None:
            self.on_rtp(pkt, now_ms)

    def receive_rtcp(self, data: bytes, now_ms: float) -> None:
        """Process one compound RTCP datagram; malformed ones are counted and dropped."""
        try:
            packets = rtcp.parse_compound(data)
        except ValueError:
            self.counters["rtcp_malformed"] += 1
            return
        self.counters["rtcp_received"] += 1
        fraction: float | None = None
        burst: LossReport | None = None
        for p in packets:
            if isinstance(p, (rtcp.SenderReport, rtcp.ReceiverReport, XrPacket)) and not self.table.reporter(p.ssrc):
                self.counters["rtcp_refused_report"] += 1
                continue
            if isinstance(p, (rtcp.SenderReport, rtcp.ReceiverReport)):
                if isinstance(p, rtcp.SenderReport) and p.ssrc != self.ssrc:
                    stats = self.table.stats(p.ssrc)
                    if stats is not None:
                        stats.on_sender_report(p.ntp, now_ms)
                for block in p.reports:
                    if block.ssrc == self.ssrc:
                        fraction = block.fraction_lost / 256.0
                        rtt = ntp.rtt_ms(ntp.ntp_compact(self._ntp(now_ms)), block.lsr, block.dlsr)
                        if rtt is not None:
                            self.rtt_ms = rtt
            elif isinstance(p, rtcp.Sdes):
                for chunk in p.chunks:
                    for kind, text in chunk.items:
                        if kind == rtcp.SDES_CNAME:
                            self.table.note_cname(chunk.ssrc, text)
            elif isinstance(p, rtcp.Bye):
                self._on_bye(p, now_ms)
            elif isinstance(p, XrPacket):
                for xb in p.blocks:
                    if isinstance(xb, LossRleBlock) and xb.ssrc == self.ssrc:
                        burst = xb.report() or burst
        report = burst
        if report is None and fraction is not None:
            previous = self.peer_loss_report.mean_burst if self.peer_loss_report else 1.0
            report = LossReport(fraction_lost=fraction, mean_burst=previous)
        if report is not None:
            self.peer_loss_report = report
            if self.on_loss_report is not None:
                self.on_loss_report(report)

    def _on_bye(self, bye: rtcp.Bye, now_ms: float) -> None:
        for ssrc in bye.ssrcs:
            if self.table.bye(ssrc):
                self.counters["bye_received"] += 1
                self.scheduler.members_left(now_ms, self._members())
                if self.on_bye is not None:
                    self.on_bye(ssrc)
