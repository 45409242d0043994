"""RTP ground truth for lab calls: every RTP packet seen on the lab's two host interfaces.

Theory of operation
-------------------
A :class:`Capture` opens one ``AF_PACKET`` socket per lab side, made inside that
side's namespace (:meth:`sip_agent.lab.lab.Lab.socket`) and bound to its interface
with ``ETH_P_ALL`` (outgoing frames reach only ``ETH_P_ALL`` taps, so a
protocol-specific bind would miss what the side sends). A reader thread per
side keeps each IPv4 UDP datagram that parses as RTP (version 2, not an RTCP
packet type), with the kernel's receive/transmit timestamp (``SO_TIMESTAMPNS``,
CLOCK_REALTIME, the same clock in every namespace) and whether the side sent
it. So the sender's interface shows what left before netem touched it and the
receiver's interface shows what netem let through: sequence-level loss, bursts
and one-way delay, without any help from the agents. SIP (text, first byte
``0x41``-``0x5A`` = version 1) is skipped by the version test; RTCP (PT
200-204, which an RTP reading would take for marker + 72-76) is kept as
:class:`RtcpSeen` with its report blocks: a receiver's last report names the
highest sequence number it counted, which pins its statistics window to the
capture. :func:`parse_frame` is the pure part.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtp.packet import parse as parse_rtp
from rtp.rtcp import ReceiverReport, SenderReport, parse_compound

if TYPE_CHECKING:
    from sip_agent.lab.lab import Lab

__all__ = ["RtpSeen", "RtcpSeen", "Capture", "parse_frame"]

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
# Python 3.11 lacks the constant; 35 is Linux's value on every common architecture.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True)
class RtpSeen:
    """One RTP packet on one lab interface.

    ``side``: the namespace it was seen in; ``outgoing``: that side sent it;
    ``t_ns``: kernel timestamp (CLOCK_REALTIME ns); ``ip_bytes``: the whole IPv4
    packet (what a link carries apart from its own framing); ``payload_bytes``:
    the RTP payload.
    """

    side: str
    outgoing: bool
    t_ns: int
    src: str
    dst: str
    sport: int
    dport: int
    ssrc: int
    payload_type: int
    seq: int
    timestamp: int
    ip_bytes: int
    payload_bytes: int


@dataclass(frozen=True)
class RtcpSeen:
    """One RTCP compound packet on one lab interface: its report blocks as
    (reportee SSRC, extended highest sequence number, cumulative lost)."""

    side: str
    outgoing: bool
    t_ns: int
    src: str
    dst: str
    blocks: tuple[tuple[int, int, int], ...]


def _rtcp(body: bytes, side: str, outgoing: bool, t_ns: int, ip: bytes) -> RtcpSeen | None:
    try:
        packets = parse_compound(body)
    except ValueError:
        return None
    blocks = tuple((b.ssrc, b.highest_seq, b.cumulative_lost) for p in packets
                   if isinstance(p, (SenderReport, ReceiverReport)) for b in p.reports)
    return RtcpSeen(side, outgoing, t_ns, socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]),
                    blocks)


def parse_frame(frame: bytes, side: str, outgoing: bool, t_ns: int) -> RtpSeen | RtcpSeen | None:
    """The RTP or RTCP packet in an Ethernet frame, or None if it carries neither (pure)."""
    if len(frame) < 14 + 20 + 8 + 8 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP or ihl < 20:
        return None
    if struct.unpack_from("!H", ip, 6)[0] & 0x3FFF:
        return None  # a fragment: RTP at 1-2 kbit/s never fragments, so it is not ours
    total = struct.unpack_from("!H", ip, 2)[0]
    sport, dport, udp_len = struct.unpack_from("!HHH", ip, ihl)
    body = ip[ihl + 8: ihl + udp_len]
    if len(body) < 8 or body[0] >> 6 != 2:
        return None  # not RTP/RTCP version 2 (SIP text starts with version 1)
    if 200 <= body[1] <= 204:
        return _rtcp(bytes(body), side, outgoing, t_ns, ip)
    try:
        rtp = parse_rtp(bytes(body))
    except ValueError:
        return None
    return RtpSeen(side, outgoing, t_ns, socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]),
                   sport, dport, rtp.ssrc, rtp.payload_type, rtp.sequence_number, rtp.timestamp,
                   total, len(rtp.payload))


class Capture:
    """Record RTP and RTCP on both lab interfaces from ``start()`` to ``stop()`` (see module docstring)."""

    def __init__(self, lab: "Lab") -> None:
        self._lab = lab
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._seen: list[RtpSeen | RtcpSeen] = []
        self.errors: list[str] = []

    def start(self) -> "Capture":
        """Open both sockets and start the readers; raises OSError if a socket cannot be made."""
        try:
            for side in ("caller", "callee"):
                sock = self._lab.socket(side, socket.AF_PACKET, socket.SOCK_RAW)
                self._socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
                sock.bind((self._lab.endpoint(side).ifname, ETH_P_ALL))
                sock.settimeout(0.1)
                thread = threading.Thread(target=self._read, args=(side, sock), daemon=True,
                                          name=f"lab-capture-{side}")
                self._threads.append(thread)
                thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[RtpSeen | RtcpSeen]:
        """Stop the readers, close the sockets; return everything seen (idempotent)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for sock in self._socks:
            sock.close()
        self._socks.clear()
        return self.packets()

    def packets(self) -> list[RtpSeen | RtcpSeen]:
        """A snapshot of what was seen so far, in capture order per side."""
        with self._lock:
            return list(self._seen)

    def __enter__(self) -> "Capture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read(self, side: str, sock: socket.socket) -> None:
        anc_size = socket.CMSG_SPACE(_TIMESPEC.size)
        while not self._stop.is_set():
            try:
                frame, anc, _flags, addr = sock.recvmsg(65536, anc_size)
            except socket.timeout:
                continue
            except OSError as exc:  # socket closed under us, or a real error: report, stop
                if not self._stop.is_set():
                    self.errors.append(f"{side}: {exc}")
                return
            t_ns = time.time_ns()
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
                    sec, nsec = _TIMESPEC.unpack_from(data)
                    t_ns = sec * 1_000_000_000 + nsec
            seen = parse_frame(frame, side, addr[2] == PACKET_OUTGOING, t_ns)
            if seen is not None:
                with self._lock:
                    self._seen.append(seen)
