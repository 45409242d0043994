"""Two sites across the netem lab: baresip + gateway in the caller namespace, baresip + gateway in the callee's.

Only the trunk between the gateways crosses the impaired router (each phone
talks to its gateway inside its own namespace), so Gilbert-Elliott loss hits
the LargeSC legs only. The lab's capture on both sides is the ground truth the
gateways' own counters are held against.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Iterable

import pytest

from sip_agent.lab.capture import Capture, RtpSeen
from sip_agent.lab.probe import wait_drained
from tests.sip_agent.gateway.sites import STANDARD, Sites

pytestmark = [pytest.mark.sip, pytest.mark.timeout(240)]
BURSTY = "loss gemodel 8% 40%"  # Gilbert: ~17 % loss in bursts of 2.5 packets on average


def _trunk(call: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    incoming, outgoing = call["legs"]
    return (outgoing, incoming) if call["direction"] == "to-trunk" else (incoming, outgoing)


def _extended(seqs: Iterable[int]) -> list[int]:
    """16-bit sequence numbers in arrival order, unwrapped (a random start may wrap within the call)."""
    out: list[int] = []
    for seq in seqs:
        out.append(seq if not out else out[-1] + (seq - out[-1] + 32768) % 65536 - 32768)
    return out


def test_gateway_pair_across_netem_loss_on_the_trunk_only(lab: Any, tmp_path: Path, test_weights: Path) -> None:
    lab.set_profile("clean", forward=BURSTY, backward=BURSTY)
    caller, callee = lab.caller, lab.callee
    sites = Sites.make(tmp_path, (caller.address, callee.address),
                       (partial(lab.popen, "caller"), partial(lab.popen, "callee")))
    try:
        sites.start_gateways("--weights", str(test_weights), "--plc", "repeat", "--calls", "1", "--timeout", "90")
        capture = Capture(lab).start()
        try:
            sites.phone_b.start(30.0)
            sites.phone_a.start(14.0, dial=f"sip:bs@{caller.address}:{sites.gw_a.port}")
            rc_a, rep_a = sites.gw_a.finish(90)
            rc_b, rep_b = sites.gw_b.finish(30)
            for name in ("forward", "backward"):
                wait_drained(lab, name)
        finally:
            packets = capture.stop()
    finally:
        sites.stop()
    assert rc_a == 0 and rc_b == 0, (sites.gw_a.text()[-2000:], sites.gw_b.text()[-2000:])
    rtp = [p for p in packets if isinstance(p, RtpSeen)]
    for rep, side, peer in ((rep_a, "caller", "callee"), (rep_b, "callee", "caller")):
        call = rep["calls"][0]
        trunk, local = _trunk(call)
        assert call["caller_status"] == 200 and trunk["codec"] == "LargeSC/24000" and local["codec"] in STANDARD
        # Ground truth: the trunk packets the peer gateway put on its wire vs those that reached this side.
        sent = [p for p in rtp if p.side == peer and p.outgoing]
        arrived = [p for p in rtp if p.side == side and not p.outgoing]
        assert sent and len(arrived) < len(sent), (len(sent), len(arrived))  # loss happened on the trunk
        # Packet by packet: what the receiver counted arrived, and every packet that arrived while its
        # RTP session ran was counted. Only the stream's edges may fall outside: packets before its socket
        # opened, or after it hung up while the peer, its BYE lost on the trunk, kept sending.
        extended = _extended(p.seq for p in arrived)
        by_seq16 = {ext % 65536: ext for ext in extended}  # unique: a call is far shorter than 65,536 packets
        counted = {by_seq16[int(seq)] for seq in trunk["payload_crc32"]["received"] if int(seq) in by_seq16}
        assert len(counted) == len(trunk["payload_crc32"]["received"]) == trunk["packets_received"], trunk
        window = [ext for ext in extended if min(counted) <= ext <= max(counted)]
        assert set(window) == counted and len(extended) - len(window) <= 15, (len(extended), len(window), trunk)
        # RFC 3550 counts losses up to the highest sequence number received (a lost tail is invisible to it).
        rfc3550_lost = max(counted) - min(counted) + 1 - len(counted)
        assert abs(trunk["packets_lost"] - rfc3550_lost) <= 2, (trunk, rfc3550_lost, len(sent), len(arrived))
        frames = trunk["frames"]
        peer_trunk = _trunk((rep_b if rep is rep_a else rep_a)["calls"][0])[0]  # the sender of what we heard
        assert frames["recovered"] + frames["partial"] > 0, (frames, peer_trunk)  # redundancy rescued lost frames
        assert local["packets_lost"] == 0, local  # the phone leg never crossed the router
        # Everything that crossed the router was trunk RTP between the two gateways (no phone media).
        assert {(p.src, p.dst) for p in sent} == {(lab.endpoint(peer).address, lab.endpoint(side).address)}
