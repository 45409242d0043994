"""Turn a lab call's captured RTP into the report's figures (pure: no I/O, no clock).

Theory of operation
-------------------
For one direction (forward = caller->callee) :func:`direction_report` picks the
media stream the sender put on its interface (the negotiated payload type, else
the largest RTP stream), numbers its packets 0..n-1 by unwrapped sequence number
in send order, and hands the receiver interface's copies of them to
:func:`sip_agent.netem_probe.analyze`: loss, loss bursts (runs of consecutive
missing sequence numbers), duplicates, reordering, one-way delay (send and
receive kernel timestamps share the host clock) and RFC 3550 jitter. Next to
that it puts what the direction's netem spec should produce for that many
packets (:func:`configured`, the chain's stationary loss and mean burst with
z-sigma bounds from :mod:`sip_agent.netem_markov`), the payload and wire bit
rates, and a check of the receiving agent's counters against this ground truth
(:func:`agreement`): the receiver's RFC 3550 window starts where its probation
ended (the second of two in-sequence arrivals) and ends at its highest sequence
number, which must be a packet that arrived; inside it the agent's received and
lost counts must equal the capture's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any, Sequence

from rtp.seqnum import TS_BITS, Unwrapper, wrap_diff
from sip_agent.lab_capture import RtpSeen
from sip_agent.netem_probe import Arrival, ProbeResult, analyze
from sip_agent.netem_spec import NetemSpec

__all__ = ["Z", "configured", "within", "pick_stream", "direction_report", "agreement",
           "probe_report"]

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


def agreement(arrived: Sequence[int], media: dict[str, Any] | None) -> dict[str, Any] | None:
    """The receiving agent's RTP counters against the capture (see module docstring).

    ``arrived``: packet indices in arrival order; ``media``: the agent's MediaStats as a dict.
    The agent may have missed the first arrivals (its port opens when its side of the
    offer/answer completes), so every probation point is a candidate window start:
    an arrival that directly follows its predecessor's arrival. The window's end must
    be a packet that arrived, and inside it the counts must match exactly.
    """
    if media is None:
        return None
    got, lost = int(media.get("packets_received", 0)), int(media.get("packets_lost", 0))
    out: dict[str, Any] = {"agent_received": got, "agent_lost": lost}
    if got + lost <= 0:
        return {**out, "window": None, "agrees": not arrived or len(arrived) < MIN_SEQUENTIAL}
    present = set(arrived)
    starts = [cur for prev, cur in zip(arrived, arrived[1:]) if cur == prev + 1]
    for base in dict.fromkeys(starts):  # earliest first, each once
        end = base + got + lost - 1
        inside = [i for i in arrived if base <= i <= end]
        truth_lost = (end - base + 1) - len(set(inside))
        if end in present and len(inside) == got and truth_lost == lost:
            return {**out, "window": [base, end], "captured_received": len(inside),
                    "captured_lost": truth_lost, "arrived_before_window": sum(
                        1 for i in present if i < base),
                    "arrived_after_window": sum(1 for i in present if i > end), "agrees": True}
    return {**out, "window": None, "captured_received": len(arrived),
            "captured_lost": (max(present) - min(present) + 1 - len(present)) if present else 0,
            "agrees": False}


def direction_report(packets: Sequence[RtpSeen], sender: str, receiver: str, spec: NetemSpec,
                     payload_type: int | None, clock_rate: int | None,
                     receiver_media: dict[str, Any] | None) -> dict[str, Any]:
    """Configured vs observed for one direction, bit rates and the receiver's counters."""
    key = pick_stream(packets, sender, payload_type)
    if key is None:
        return {"stream": None, "configured": configured(spec, 0), "observed": None,
                "within_bounds": None, "bitrate": _bitrates([], None),
                "receiver_counters": receiver_media, "agreement": None}
    ssrc, pt, dport = key
    sent = [p for p in packets if p.side == sender and p.outgoing and (p.ssrc, p.payload_type,
                                                                       p.dport) == key]
    got = [p for p in packets if p.side == receiver and not p.outgoing and (p.ssrc, p.payload_type,
                                                                           p.dport) == key]
    ext = Unwrapper(16)
    first = ext.extend(sent[0].seq)
    send_ns: dict[int, int] = {}
    for p in sent:
        send_ns.setdefault(ext.extend(p.seq) - first, p.t_ns)  # a resend keeps the first time
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
    return {"stream": {"ssrc": ssrc, "payload_type": pt, "dst_port": dport},
            "configured": conf, "observed": observed, "within_bounds": within(conf, seen),
            "bitrate": _bitrates(sent, clock_rate), "receiver_counters": receiver_media,
            "agreement": agreement([a.seq for a in arrivals], receiver_media)}


def probe_report(result: ProbeResult, spec: NetemSpec, rate_pps: float) -> dict[str, Any]:
    """A dense probe train's figures with the configured bounds for its packet count."""
    conf = configured(spec, result.sent)
    return {"rate_pps": rate_pps, "configured": conf, "observed": asdict(result),
            "within_bounds": within(conf, result)}
