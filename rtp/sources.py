"""The remote sources a session hears: probation, the one active source, capped tables (sans-IO).

* Every SSRC gets ``SourceStats`` (RFC 3550 A.1 probation and statistics);
  at most ``MAX_SOURCES`` of them: a new one evicts the source heard least
  recently, never the active one.
* Packets of a source on probation are held (at most ``min_sequential`` of
  them) and released in order once it is validated.
* One source is active: its packets are delivered. A validated new SSRC takes
  over only when the active one has been quiet for ``source_quiet_ms`` or said
  BYE; until then its packets are refused (``rtp_refused_ssrc``).
* CNAMEs are kept only for sources in the table; reports about us count only
  from the active source.
"""

from __future__ import annotations

from collections import Counter

from rtp.config import SessionConfig
from rtp.packet import RtpPacket
from rtp.seqnum import seq_add
from rtp.stats import SourceStats

MAX_SOURCES = 64
Arrival = tuple[RtpPacket, float]  # packet, arrival ms


class SourceTable:
    def __init__(self, config: SessionConfig, counters: Counter[str]) -> None:
        self.config, self.counters = config, counters
        self.sources: dict[int, SourceStats] = {}
        self.cnames: dict[int, str] = {}
        self.active: int | None = None
        self._held: dict[int, list[Arrival]] = {}
        self._had_source = False  # any SSRC seen yet (trust_first_source)

    def stats(self, ssrc: int) -> SourceStats | None:
        """The source's statistics, created on first sight (None: the table is full of the active source)."""
        stats = self.sources.get(ssrc)
        if stats is None:
            if len(self.sources) >= MAX_SOURCES and not self._evict():
                self.counters["sources_refused"] += 1
                return None
            first = self.config.trust_first_source and not self._had_source
            self._had_source = True
            stats = self.sources[ssrc] = SourceStats(ssrc, self.config.clock_rate,
                                                     1 if first else self.config.min_sequential)
        return stats

    def admit(self, pkt: RtpPacket, now_ms: float) -> list[Arrival]:
        """Account one RTP packet; the packets to deliver now, in order (held ones first)."""
        stats = self.stats(pkt.ssrc)
        if stats is None:
            return []
        held = self._held.setdefault(pkt.ssrc, [])
        if not stats.update(pkt.sequence_number, pkt.timestamp, now_ms):
            if stats.valid:
                self.counters["rtp_bad_sequence"] += 1
                return []
            self.counters["rtp_received"] += 1
            if held and pkt.sequence_number != seq_add(held[-1][0].sequence_number, 1):
                held.clear()  # probation restarted
            held.append((pkt, now_ms))
            return []
        released = held + [(pkt, now_ms)]
        held.clear()
        if not self._takes_over(pkt.ssrc, now_ms):
            self.counters["rtp_refused_ssrc"] += 1
            return []
        self.counters["rtp_received"] += 1
        return released

    def reporter(self, ssrc: int) -> bool:
        """Do reports sent by ``ssrc`` count? The active source's do (anyone's before there is one)."""
        return self.active is None or ssrc == self.active

    def note_cname(self, ssrc: int, text: str) -> None:
        if ssrc in self.sources:
            self.cnames[ssrc] = text

    def bye(self, ssrc: int) -> bool:
        """Forget a source that said BYE; whether it was known."""
        if ssrc not in self.sources:
            return False
        self._forget(ssrc)
        if ssrc == self.active:
            self.active = None
        return True

    def _takes_over(self, ssrc: int, now_ms: float) -> bool:
        if ssrc == self.active:
            return True
        current = self.sources.get(self.active) if self.active is not None else None
        last = current.last_rtp_ms if current is not None else None
        if last is not None and now_ms - last < self.config.source_quiet_ms:
            return False
        if self.active is not None:
            self.counters["ssrc_changed"] += 1
        self.active = ssrc
        return True

    def _evict(self) -> bool:
        others = [s for s in self.sources.values() if s.ssrc != self.active]
        if not others:
            return False
        oldest = min(others, key=lambda s: s.last_rtp_ms if s.last_rtp_ms is not None else float("-inf"))
        self._forget(oldest.ssrc)
        self.counters["sources_evicted"] += 1
        return True

    def _forget(self, ssrc: int) -> None:
        self.sources.pop(ssrc, None)
        self._held.pop(ssrc, None)
        self.cnames.pop(ssrc, None)
