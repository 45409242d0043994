"""Turn a lab call's captured RTP into the report's figures (pure: no I/O, no clock).

Theory of operation
-------------------
For one direction (forward = caller->callee) :func:`direction_report` picks the
media stream the sender put on its interface (the negotiated payload type, else
the largest RTP stream), numbers its packets 0..n-1 by unwrapped sequence number
in send order, and hands the receiver interface's copies of them to
:func:`sip_agent.lab.probe.analyze`: loss, loss bursts (runs of consecutive
missing sequence numbers), duplicates, reordering, one-way delay (send and
receive kernel timestamps share the host clock) and RFC 3550 jitter. Next to
that it puts what the direction's netem spec should produce for that many
packets (:func:`configured`, the chain's stationary loss and mean burst with
z-sigma bounds from :mod:`sip_agent.lab.markov`), the payload and wire bit
rates, and a check of the receiving agent's counters against this ground truth
(:func:`agreement`): the receiver's RFC 3550 window ends where its last RTCP
packet (sent as it stopped) puts it (:func:`_window_ends`), at a packet that
must have arrived, and spans its expected count; inside it the agent's received
and lost counts must equal the capture's. For LargeSC the receiver's frame counters
are checked too (:mod:`sip_agent.lab.frames`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict
from typing import Any, Sequence

from rtp.seqnum import TS_BITS, Unwrapper, wrap_diff
from sip_agent.lab.capture import RtcpSeen, RtpSeen
from sip_agent.lab.frames import frame_accounting
from sip_agent.lab.netem_spec import NetemSpec
from sip_agent.lab.probe import Arrival, ProbeResult, analyze

__all__ = ["Z", "configured", "within", "pick_stream", "direction_report", "agreement",
           "probe_report", "netem_counters"]

Z = 4.5  # bound half-width in standard deviations: about 1e-5 false failures per check
MIN_SEQUENTIAL = 2  # RFC 3550 A.1 probation, as rtp.stats uses it


def configured(spec: NetemSpec, packets: int, z: float = Z) -> dict[str, Any]:
    """What ``spec`` should do to ``packets`` packets: delay, jitter, loss and burst bounds."""
    out: dict[str, Any] = {"spec": str(spec), "delay_ms": spec.delay_ms,
                           "jitter_ms": spec.jitter_ms, "packets": packets}
    want = spec.expected_loss()
    if want is None or packets <= 0:
        return {**out, "loss_rate": None, "mean_burst": None}
    sd_loss, sd_burst = spec.loss_fraction_sd(packets), spec.mean_burst_sd(packets)
    assert sd_loss is not None and sd_burst is not None
    return {**out, "loss_rate": want.loss_rate, "mean_burst": want.mean_burst,
            "loss_sd": sd_loss, "mean_burst_sd": sd_burst, "z": z,
            "loss_bounds": [max(0.0, want.loss_rate - z * sd_loss), want.loss_rate + z * sd_loss],
            "mean_burst_bounds": [max(0.0, want.mean_burst - z * sd_burst),
                                  want.mean_burst + z * sd_burst]}


def within(conf: dict[str, Any], observed: ProbeResult) -> dict[str, bool | None]:
    """Whether observed loss / mean burst sit inside the configured bounds (None: no model)."""
    if conf.get("loss_bounds") is None:
        return {"loss": None, "mean_burst": None}
    lo, hi = conf["loss_bounds"]
    blo, bhi = conf["mean_burst_bounds"]
    eps = 1e-12  # a lossless model has bounds [0, 0]
    burst_ok = None if observed.bursts == 0 else blo - eps <= observed.mean_burst <= bhi + eps
    return {"loss": lo - eps <= observed.loss_fraction <= hi + eps, "mean_burst": burst_ok}


def pick_stream(packets: Sequence[RtpSeen], sender: str, payload_type: int | None
                ) -> tuple[int, int, int] | None:
    """(ssrc, payload type, destination port) of the stream ``sender`` sent most of."""
    counts = Counter((p.ssrc, p.payload_type, p.dport) for p in packets
                     if p.side == sender and p.outgoing)
    if payload_type is not None and any(k[1] == payload_type for k in counts):
        counts = Counter({k: n for k, n in counts.items() if k[1] == payload_type})
    return counts.most_common(1)[0][0] if counts else None


def _bitrates(sent: Sequence[RtpSeen], clock_rate: int | None) -> dict[str, float]:
    """Payload and wire (whole IPv4 packets) bit rates per second of media sent."""
    if len(sent) < 2:
        return {"payload_bps": 0.0, "wire_bps": 0.0, "packets_per_s": 0.0, "media_s": 0.0}
    if clock_rate:  # media time from RTP timestamps: exact, whatever the send pacing did
        span = wrap_diff(sent[0].timestamp, sent[-1].timestamp, TS_BITS) / clock_rate
    else:
        span = (sent[-1].t_ns - sent[0].t_ns) / 1e9
    media_s = span * len(sent) / (len(sent) - 1)  # plus one packet's worth at the end
    if media_s <= 0:
        return {"payload_bps": 0.0, "wire_bps": 0.0, "packets_per_s": 0.0, "media_s": 0.0}
    return {"payload_bps": 8 * sum(p.payload_bytes for p in sent) / media_s,
            "wire_bps": 8 * sum(p.ip_bytes for p in sent) / media_s,
            "packets_per_s": len(sent) / media_s, "media_s": media_s,
            "payload_bytes_mean": sum(p.payload_bytes for p in sent) / len(sent)}


def _window(arrived: Sequence[int], base: int, end: int, got: int, lost: int) -> dict[str, Any] | None:
    """The window's figures if the agent's counts fit it exactly, else None."""
    inside = [i for i in arrived if base <= i <= end]
    truth_lost = (end - base + 1) - len(set(inside))
    if end not in set(arrived) or len(inside) != got or truth_lost != lost:
        return None
    return {"window": [base, end], "captured_received": len(inside), "captured_lost": truth_lost,
            "arrived_before_window": len({i for i in arrived if i < base}),
            "arrived_after_window": len({i for i in arrived if i > end})}


def agreement(arrived: Sequence[int], media: dict[str, Any] | None,
              ends: Sequence[int] = ()) -> dict[str, Any] | None:
    """The receiving agent's RTP counters against the capture (see module docstring).

    ``arrived``: packet indices in arrival order; ``media``: the agent's MediaStats as a
    dict; ``ends``: where the agent's window may end, from its last RTCP packet
    (:func:`_window_ends`); ``anchored`` is True when the counts fit a window ending
    there. Otherwise every probation point (an arrival right after its predecessor's) is
    tried as the window's start, since the agent's port opens only when its side of the
    offer/answer completes; a fit found so is ``agrees`` but not ``anchored``.
    """
    if media is None:
        return None
    got, lost = int(media.get("packets_received", 0)), int(media.get("packets_lost", 0))
    out: dict[str, Any] = {"agent_received": got, "agent_lost": lost, "window_ends": list(ends)}
    if got + lost <= 0:
        return {**out, "window": None, "anchored": False,
                "agrees": not arrived or len(arrived) < MIN_SEQUENTIAL}
    for end in ends:
        fit = _window(arrived, end - got - lost + 1, end, got, lost)
        if fit is not None:
            return {**out, **fit, "anchored": True, "agrees": True}
    starts = [cur for prev, cur in zip(arrived, arrived[1:]) if cur == prev + 1]
    for base in dict.fromkeys(starts):  # earliest first, each once
        fit = _window(arrived, base, base + got + lost - 1, got, lost)
        if fit is not None:
            return {**out, **fit, "anchored": False, "agrees": True}
    present = set(arrived)
    return {**out, "window": None, "captured_received": len(arrived), "anchored": False,
            "captured_lost": (max(present) - min(present) + 1 - len(present)) if present else 0,
            "agrees": False}


def _window_ends(packets: Sequence[RtpSeen | RtcpSeen], receiver: str, ssrc: int,
                 first_seq: int, arrivals: Sequence[Arrival]) -> tuple[list[int], int | None]:
    """Where the receiver's statistics window can end, and its last reported cumulative loss.

    The receiver's last RTCP packet is its BYE compound when it stopped cleanly. A report
    block about ``ssrc`` in it names the highest sequence number it counted: the end. The
    session drops a source whose own RTCP BYE came first, and then the block is missing;
    the receiver still counted every packet that arrived before it stopped, so the end is
    the highest index that arrived before that last RTCP packet left (or, if the agent
    had not yet read the very last one, the highest before that).
    """
    last = None
    for p in packets:
        if isinstance(p, RtcpSeen) and p.side == receiver and p.outgoing:
            last = p
    if last is None or not arrivals:
        return [], None
    block = next(((h, c) for s, h, c in last.blocks if s == ssrc), None)
    if block is not None:
        near = max(a.seq for a in arrivals)
        return [near + wrap_diff((first_seq + near) % 65536, block[0] & 0xFFFF, 16)], block[1]
    before = [a.seq for a in arrivals if a.recv_ns < last.t_ns]
    ends = [max(before, default=-1), max(before[:-1], default=-1)]
    return [e for e in dict.fromkeys(ends) if e >= 0], None


def direction_report(packets: Sequence[RtpSeen | RtcpSeen], sender: str, receiver: str,
                     spec: NetemSpec, payload_type: int | None, clock_rate: int | None,
                     receiver_media: dict[str, Any] | None) -> dict[str, Any]:
    """Configured vs observed for one direction, bit rates and the receiver's counters."""
    rtp = [p for p in packets if isinstance(p, RtpSeen)]
    key = pick_stream(rtp, sender, payload_type)
    if key is None:
        return {"stream": None, "configured": configured(spec, 0), "observed": None,
                "within_bounds": None, "bitrate": _bitrates([], None),
                "receiver_counters": receiver_media, "agreement": None, "frames": None,
                "jitter_buffer": _jitter_buffer(receiver_media)}
    ssrc, pt, dport = key
    mine = [p for p in rtp if (p.ssrc, p.payload_type, p.dport) == key]
    sent = [p for p in mine if p.side == sender and p.outgoing]
    got = [p for p in mine if p.side == receiver and not p.outgoing]
    ext = Unwrapper(16)
    first = ext.extend(sent[0].seq)
    send_ns: dict[int, int] = {}
    stamps: dict[int, int] = {}
    for p in sent:
        index = ext.extend(p.seq) - first
        send_ns.setdefault(index, p.t_ns)  # a resend keeps the first time
        stamps.setdefault(index, p.timestamp)
    count = max(send_ns) + 1
    rx = Unwrapper(16)
    rx.extend(sent[0].seq)
    arrivals, unmatched = [], 0
    for p in got:
        index = rx.extend(p.seq) - first
        if index in send_ns:
            arrivals.append(Arrival(index, send_ns[index], p.t_ns))
        else:
            unmatched += 1  # never seen leaving the sender: not part of the measured train
    seen = analyze(count, arrivals)
    conf = configured(spec, count)
    observed = {**asdict(seen), "not_sent_by_sender": count - len(send_ns),
                "unmatched_arrivals": unmatched}
    indices = [a.seq for a in arrivals]
    ends, rtcp_lost = _window_ends(packets, receiver, ssrc, sent[0].seq, arrivals)
    agree = agreement(indices, receiver_media, ends)
    if agree is not None:
        agree["rtcp_cumulative_lost"] = rtcp_lost
    window = agree.get("window") if agree is not None else None
    frames = frame_accounting(stamps, set(indices), window, receiver_media)
    return {"stream": {"ssrc": ssrc, "payload_type": pt, "dst_port": dport},
            "configured": conf, "observed": observed, "within_bounds": within(conf, seen),
            "bitrate": _bitrates(sent, clock_rate), "receiver_counters": receiver_media,
            "agreement": agree, "frames": frames, "jitter_buffer": _jitter_buffer(receiver_media)}


def _jitter_buffer(media: dict[str, Any] | None) -> dict[str, float] | None:
    """The receiving agent's jitter-buffer figures, when its engine reports them."""
    extra = (media or {}).get("extra") or {}
    names = {"delay_ms": "jitter_buffer_ms", "target_ms": "jitter_buffer_target_ms",
             "skipped_frames": "jitter_buffer_skipped"}
    found = {k: float(extra[v]) for k, v in names.items() if v in extra}
    return found or None


def probe_report(result: ProbeResult, spec: NetemSpec, rate_pps: float) -> dict[str, Any]:
    """A dense probe train's figures with the configured bounds for its packet count."""
    conf = configured(spec, result.sent)
    return {"rate_pps": rate_pps, "configured": conf, "observed": asdict(result),
            "within_bounds": within(conf, result)}


def netem_counters(stats: str) -> dict[str, dict[str, int]]:
    """netem's own packets sent / dropped per direction from ``Lab.qdisc_stats()`` text."""
    out: dict[str, dict[str, int]] = {}
    for block in re.split(r"^\[", stats, flags=re.M):
        name = block.split("]", 1)[0]
        found = re.search(r"Sent \d+ bytes (\d+) pkt \(dropped (\d+)", block)
        if name in ("forward", "backward"):
            out[name] = ({"sent": int(found.group(1)), "dropped": int(found.group(2))} if found
                         else {"sent": 0, "dropped": 0})  # a clean direction has no qdisc
    return out
