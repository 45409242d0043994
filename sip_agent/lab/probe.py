"""Measure what a lab's path does to a seeded UDP packet train: loss, bursts, delay, order.

Theory of operation
-------------------
:func:`probe` sends ``count`` UDP packets at a fixed rate from one side's
namespace to the other's (sockets made inside the namespaces, driven from this
process). Each packet carries its sequence number and the CLOCK_MONOTONIC send
time; all namespaces share the host's monotonic clock, so arrival minus send
time is the true one-way delay. The rest of the payload is seeded random bytes,
regenerated at the receiver to count corrupted packets that passed the UDP
checksum. :func:`analyze` is the pure part: it turns the arrivals into a
:class:`ProbeResult` (loss fraction, loss bursts = runs of consecutive missing
sequence numbers, duplicates, reordering = packets that arrive after a higher
sequence number, delay statistics, the RFC 3550 interarrival jitter, and the
span from the first send to the last arrival, which a ``rate`` limit stretches).
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

from sip_agent.lab.backends import Endpoint
from sip_agent.lab.netem_spec import NetemSpec

__all__ = ["Arrival", "ImpairedPath", "ProbeResult", "analyze", "probe", "check_path", "wait_drained"]



class ImpairedPath(Protocol):
    """What a probe needs of a lab (``sip_agent.lab.lab.Lab``): each side's address and sockets, the specs."""

    @property
    def forward(self) -> NetemSpec: ...

    @property
    def backward(self) -> NetemSpec: ...

    def endpoint(self, side: str) -> Endpoint: ...

    def socket(self, side: str, family: int = ..., kind: int = ...) -> socket.socket: ...


_HEADER = struct.Struct("!IQ")  # sequence number, send time (ns, CLOCK_MONOTONIC)
_END = 0xFFFFFFFF  # sequence number of the end markers sent after the train
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux's value; Python lacks the name


@dataclass(frozen=True)
class Arrival:
    """One received packet: its sequence number, send and receive times (ns), payload intact?"""

    seq: int
    sent_ns: int
    recv_ns: int
    intact: bool = True


@dataclass(frozen=True)
class ProbeResult:
    """Path statistics of one packet train (fractions 0..1, times in ms)."""

    sent: int
    received: int
    lost: int
    loss_fraction: float
    bursts: int
    mean_burst: float
    max_burst: int
    duplicates: int
    reordered: int
    corrupted: int
    delay_min_ms: float
    delay_mean_ms: float
    delay_p50_ms: float
    delay_p95_ms: float
    delay_std_ms: float
    jitter_ms: float
    span_ms: float  # first send to last arrival: a bound on throughput

    def describe(self) -> str:
        return (f"sent {self.sent}, received {self.received}, lost {self.lost} "
                f"({100 * self.loss_fraction:.2f}%) in {self.bursts} bursts (mean "
                f"{self.mean_burst:.2f}, max {self.max_burst}); duplicates {self.duplicates}, "
                f"reordered {self.reordered}, corrupted {self.corrupted}; one-way delay "
                f"min/mean/p50/p95 {self.delay_min_ms:.2f}/{self.delay_mean_ms:.2f}/"
                f"{self.delay_p50_ms:.2f}/{self.delay_p95_ms:.2f} ms, std {self.delay_std_ms:.2f}"
                f" ms, RFC 3550 jitter {self.jitter_ms:.2f} ms")


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def analyze(sent: int, arrivals: Sequence[Arrival]) -> ProbeResult:
    """Statistics of a train of ``sent`` packets (seq 0..sent-1) from arrivals in arrival order."""
    first: list[Arrival] = []
    seen: set[int] = set()
    duplicates = reordered = 0
    highest = -1
    for a in arrivals:
        if not 0 <= a.seq < sent:
            raise ValueError(f"arrival with sequence {a.seq} outside the train 0..{sent - 1}")
        if a.seq in seen:
            duplicates += 1
            continue
        seen.add(a.seq)
        first.append(a)
        if a.seq < highest:
            reordered += 1
        highest = max(highest, a.seq)
    runs: list[int] = []
    run = 0
    for seq in range(sent):
        if seq in seen:
            if run:
                runs.append(run)
            run = 0
        else:
            run += 1
    if run:
        runs.append(run)
    lost = sent - len(seen)
    delays = sorted((a.recv_ns - a.sent_ns) / 1e6 for a in first)
    mean = sum(delays) / len(delays) if delays else float("nan")
    std = (sum((d - mean) ** 2 for d in delays) / len(delays)) ** 0.5 if delays else float("nan")
    jitter = 0.0
    for prev, cur in zip(first, first[1:]):  # RFC 3550 section 6.4.1, in arrival order
        d = ((cur.recv_ns - prev.recv_ns) - (cur.sent_ns - prev.sent_ns)) / 1e6
        jitter += (abs(d) - jitter) / 16.0
    return ProbeResult(
        sent=sent, received=len(seen), lost=lost, loss_fraction=lost / sent if sent else 0.0,
        bursts=len(runs), mean_burst=lost / len(runs) if runs else 0.0,
        max_burst=max(runs, default=0), duplicates=duplicates, reordered=reordered,
        corrupted=sum(1 for a in first if not a.intact),
        delay_min_ms=delays[0] if delays else float("nan"), delay_mean_ms=mean,
        delay_p50_ms=_percentile(delays, 0.5), delay_p95_ms=_percentile(delays, 0.95),
        delay_std_ms=std, jitter_ms=jitter,
        span_ms=(max(a.recv_ns for a in first) - min(a.sent_ns for a in first)) / 1e6
        if first else float("nan"))


def _bodies(count: int, size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(max(0, size - _HEADER.size)) for _ in range(count)]


def probe(lab: ImpairedPath, count: int = 500, rate_pps: float = 50.0, *, direction: str = "forward",
          payload_bytes: int = 64, seed: int = 0, drain_s: float | None = None) -> ProbeResult:
    """Send ``count`` packets at ``rate_pps`` one way through the lab and measure the path.

    ``direction`` "forward" is caller->callee, "backward" callee->caller. After
    the train the sender sends an end marker every ~20 ms until one arrives:
    everything sent before it has then arrived or been lost, up to the spec's
    own reordering spread (twice its delay plus 4 jitters), which the receiver
    still waits out. A router stalled by host load delays the marker too, so a
    late packet is never counted lost. ``drain_s`` caps the wait for a marker
    (default 10 s plus that spread; reached only when none gets through).
    """
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be forward or backward (got {direction!r})")
    if count < 1 or rate_pps <= 0 or payload_bytes < _HEADER.size:
        raise ValueError(f"need count >= 1, rate_pps > 0, payload_bytes >= {_HEADER.size}")
    src, dst = ("caller", "callee") if direction == "forward" else ("callee", "caller")
    spec = lab.forward if direction == "forward" else lab.backward
    settle = _settle_s(spec)
    if drain_s is None:
        drain_s = 10.0 + settle
    bodies = _bodies(count, payload_bytes, seed)
    tx, rx = lab.socket(src), lab.socket(dst)
    arrivals: list[Arrival] = []
    done_sending, marker_seen = threading.Event(), threading.Event()
    with tx, rx:
        rx.bind((lab.endpoint(dst).address, 0))
        _big_receive_buffer(rx)
        rx.settimeout(0.05)
        target = rx.getsockname()

        def receive() -> None:
            deadline = float("inf")  # set once the sender is done
            seen: set[int] = set()
            while len(seen) < count and time.monotonic() < deadline:
                if deadline == float("inf") and done_sending.is_set():
                    deadline = time.monotonic() + drain_s
                try:
                    data = rx.recv(65536)
                except socket.timeout:
                    continue
                now = time.monotonic_ns()
                if len(data) < _HEADER.size:
                    continue
                seq, sent_ns = _HEADER.unpack_from(data)
                if seq == _END and not marker_seen.is_set():
                    marker_seen.set()
                    deadline = min(deadline, time.monotonic() + settle)
                elif seq < count:
                    seen.add(seq)
                    arrivals.append(Arrival(seq, sent_ns, now, data[_HEADER.size:] == bodies[seq]))

        reader = threading.Thread(target=receive, name="netem-probe-rx", daemon=True)
        reader.start()
        start = time.monotonic()
        for seq in range(count):
            wait = start + seq / rate_pps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            tx.sendto(_HEADER.pack(seq, time.monotonic_ns()) + bodies[seq], target)
        done_sending.set()
        give_up = time.monotonic() + drain_s
        while reader.is_alive() and not marker_seen.is_set() and time.monotonic() < give_up:
            tx.sendto(_HEADER.pack(_END, time.monotonic_ns()), target)
            marker_seen.wait(max(0.02, settle / 4))  # few markers on a long-delay path
        reader.join()
    return analyze(count, arrivals)


def _big_receive_buffer(sock: socket.socket, size: int = 4 << 20) -> None:
    """A receive buffer for seconds of packets: the probe's reader may stall under load too."""
    try:  # root (the lab needs it) may exceed net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _settle_s(spec: NetemSpec) -> float:
    """How far the spec itself may reorder: twice its delay plus 4 jitters, plus 50 ms."""
    return 0.05 + 2 * (spec.delay_ms + 4 * spec.jitter_ms) / 1e3


def wait_drained(lab: ImpairedPath, direction: str, timeout: float = 10.0) -> bool:
    """Wait until packets already sent one way have arrived (or been lost), like probe's end.

    Sends a marker every ~20 ms until one arrives, then waits out the spec's own
    reordering spread; a stalled router holds the marker back too. False when
    no marker got through within ``timeout`` (e.g. under 100 % loss).
    """
    src, dst = ("caller", "callee") if direction == "forward" else ("callee", "caller")
    settle = _settle_s(lab.forward if direction == "forward" else lab.backward)
    tx, rx = lab.socket(src), lab.socket(dst)
    with tx, rx:
        rx.bind((lab.endpoint(dst).address, 0))
        rx.settimeout(max(0.02, settle / 4))
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            tx.sendto(_HEADER.pack(_END, time.monotonic_ns()), rx.getsockname())
            try:
                if rx.recv(64)[:4] == _HEADER.pack(_END, 0)[:4]:
                    time.sleep(settle)
                    return True
            except socket.timeout:
                continue
    return False


def check_path(lab: ImpairedPath, path: str, timeout: float = 15.0) -> None:
    """Prove both directions carry UDP through the (still clean) path; LabError if not."""
    from sip_agent.lab.ns import LabError

    for src, dst in (("caller", "callee"), ("callee", "caller")):
        tx, rx = lab.socket(src), lab.socket(dst)
        with tx, rx:
            rx.bind((lab.endpoint(dst).address, 0))
            rx.settimeout(0.1)
            deadline = time.monotonic() + timeout
            while True:
                tx.sendto(b"lsclab-path-check", rx.getsockname())
                try:
                    if rx.recv(64) == b"lsclab-path-check":
                        break
                except socket.timeout:
                    pass
                if time.monotonic() > deadline:
                    raise LabError(f"no UDP packet got from {src} to {dst} through the "
                                   f"{path} within {timeout} s")
