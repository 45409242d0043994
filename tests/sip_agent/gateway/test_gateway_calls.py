"""``largesc gateway`` between two baresip phones on loopback (sites.py): real SIP, real RTP, real codec.

baresip A -> gateway A -> gateway B -> baresip B and back, on the small
untrained test weights (their audio is not speech, so the checks are energy,
counts and rates, not content); with ``--engine raw`` the trunk carries test
payloads checked byte for byte.
"""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tests.sip_agent.conftest import HOST, free_port, tool
from tests.sip_agent.gateway.sites import STANDARD, Sites
from tests.sip_agent.kamailio import PASSWORD, running_kamailio

pytestmark = [pytest.mark.sip, pytest.mark.timeout(150)]


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    s = Sites.make(tmp_path)
    yield s
    s.stop()


def _rms(path: Path, skip_s: float = 1.0) -> float:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    x = x[int(skip_s * rate):]
    return float(np.sqrt(np.mean(x**2))) if x.size else 0.0


def _only(report: dict[str, Any]) -> dict[str, Any]:
    assert report["exit_code"] == 0 and len(report["calls"]) == 1, report
    return report["calls"][0]


def _legs(call: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the trunk leg, the local leg) of one gateway call."""
    incoming, outgoing = call["legs"]
    return (outgoing, incoming) if call["direction"] == "to-trunk" else (incoming, outgoing)


def _hung_up_by_peer(leg: dict[str, Any]) -> bool:
    return "the peer hung up" in leg["message"]


@pytest.mark.parametrize("caller, hangs_up", [("A", "caller"), ("B", "callee")])
def test_two_phones_talk_through_a_gateway_pair(sites: Sites, test_weights: Path, caller: str,
                                                hangs_up: str) -> None:
    sites.start_gateways("--weights", str(test_weights), "--plc", "repeat", "--calls", "1", "--timeout", "60")
    a, b = (sites.phone_a, sites.phone_b) if caller == "A" else (sites.phone_b, sites.phone_a)
    gw_caller = sites.gw_a if caller == "A" else sites.gw_b
    b.start(20.0 if hangs_up == "caller" else 9.0)  # the callee auto-answers
    a.start(9.0 if hangs_up == "caller" else 20.0, dial=f"sip:bs@{HOST}:{gw_caller.port}")
    rc_a, rep_a = sites.gw_a.finish()
    rc_b, rep_b = sites.gw_b.finish()
    sites.phone_a.wait()
    sites.phone_b.wait()
    assert rc_a == 0 and rc_b == 0, (sites.gw_a.text()[-2000:], sites.gw_b.text()[-2000:])
    for rep, outward in ((rep_a, caller == "A"), (rep_b, caller == "B")):
        call = _only(rep)
        assert call["caller_status"] == 200 and call["direction"] == ("to-trunk" if outward else "to-local"), call
        trunk, local = _legs(call)
        assert trunk["codec"] == "LargeSC/24000" and local["codec"] in STANDARD, call
        # Both directions of the trunk carried frames the receiver played as received.
        assert trunk["packets_received"] >= 40 and trunk["frames"]["primary"] >= 40, trunk
        assert trunk["packets_lost"] == 0 and trunk["payload_bps"] <= 2062.5, trunk
        assert local["packets_received"] >= 150 and local["payload_bps"] >= 48_000, local  # 64 kbit/s G.711/G.722
        assert trunk["wire_bps"] * 10 < local["wire_bps"], (trunk["wire_bps"], local["wire_bps"])
        # Hang-up: the side that quit ended its leg; the gateway ended the other one.
        first = local if (hangs_up == "caller") == outward else trunk
        other = trunk if first is local else local
        assert _hung_up_by_peer(first) and "we hung up" in other["message"], (first["message"], other["message"])
    # Audio crossed both ways: each phone decoded sound from its gateway (silence has RMS 0).
    assert _rms(sites.phone_a.heard()) > 30 and _rms(sites.phone_b.heard()) > 30


def test_raw_trunk_carries_the_test_payloads_byte_exact(sites: Sites) -> None:
    sites.start_gateways("--engine", "raw", "--calls", "1", "--timeout", "40")
    sites.phone_b.start(20.0)
    sites.phone_a.start(7.0, dial=f"sip:bs@{HOST}:{sites.gw_a.port}")
    for gw in (sites.gw_a, sites.gw_b):
        rc, rep = gw.finish()
        trunk, local = _legs(_only(rep))
        assert rc == 0 and trunk["codec"] == "LargeSC/24000" and local["codec"] in STANDARD
        assert trunk["packets_received"] >= 40 and trunk["packets_lost"] == 0, trunk
        assert trunk["extra"]["bad_payloads"] == 0, trunk  # every payload as its sender made it


def test_an_unreachable_callee_gets_its_status_back_to_the_caller(sites: Sites, test_weights: Path) -> None:
    nobody = free_port()  # gateway B's local side: nothing listens there
    # Only gateway B gives up quickly: with the same timeout on A, A's own CANCEL could come first (487).
    sites.start_gateways("--weights", str(test_weights), "--plc", "none", "--calls", "1", "--timeout", "40",
                         local_b=f"sip:{{user}}@{HOST}:{nobody}", only_b=("--answer-timeout", "4"))
    sites.phone_a.start(15.0, dial=f"sip:bs@{HOST}:{sites.gw_a.port}")
    _, rep_b = sites.gw_b.finish()
    _, rep_a = sites.gw_a.finish()
    call_b, call_a = _only(rep_b), _only(rep_a)
    assert call_b["caller_status"] in (408, 503), call_b  # nobody answered / could not be reached
    assert call_a["caller_status"] == call_b["caller_status"], (call_a, call_b)  # passed on, not left ringing
    assert not call_a["legs"][0]["connected"] and not call_a["legs"][1]["connected"]
    sites.phone_a.wait()
    assert str(call_a["caller_status"]) in sites.phone_a.log(), sites.phone_a.log()[-1500:]



def test_hold_and_resume_on_the_phone_leg_keep_the_bridge(sites: Sites, test_weights: Path) -> None:
    """sipp calls gateway A, holds (re-INVITE sendonly), resumes (sendrecv), hangs up after about 6 s."""
    sites.start_gateways("--weights", str(test_weights), "--plc", "none", "--calls", "1", "--timeout", "40")
    sites.phone_b.start(20.0)
    scenario = Path(__file__).with_name("hold_uac.xml")
    sipp = subprocess.run([tool("sipp"), f"{HOST}:{sites.gw_a.port}", "-sf", str(scenario), "-i", HOST,
                           "-p", str(free_port()), "-mp", str(free_port(tcp=False)), "-m", "1", "-nostdin",
                           "-timeout", "30s", "-timeout_error"], cwd=sites.work, capture_output=True, timeout=60)
    assert sipp.returncode == 0, sipp.stdout.decode(errors="replace")[-2000:]  # every re-INVITE got its 200
    for gw in (sites.gw_a, sites.gw_b):
        rc, rep = gw.finish()
        call = _only(rep)
        trunk, local = _legs(call)
        assert rc == 0 and call["caller_status"] == 200 and local["codec"] == "PCMU/8000", call
        # One bridge for the whole call: the trunk ran from answer to BYE (about 5.5 s of 80 ms packets).
        assert trunk["duration_s"] >= 5.0 and trunk["packets_received"] >= 60, trunk
    assert _rms(sites.phone_b.heard()) > 30  # gateway B's phone still heard the trunk after the re-INVITEs


def test_beyond_max_calls_a_caller_gets_486(sites: Sites, test_weights: Path, agent: Any) -> None:
    sites.start_gateways("--weights", str(test_weights), "--plc", "none", "--max-calls", "1", "--calls", "1",
                         "--timeout", "40")
    sites.phone_b.start(20.0)
    sites.phone_a.start(9.0, dial=f"sip:bs@{HOST}:{sites.gw_a.port}")
    deadline = time.monotonic() + 20
    while "negotiated codec: LargeSC" not in sites.gw_a.text() and time.monotonic() < deadline:
        time.sleep(0.1)
    rc, report = agent("second", "call", f"sip:bs@{HOST}:{sites.gw_a.port}", "--engine", "none",
                       "--answer-timeout", "10").finish()
    second = report["calls"][0]
    assert rc == 1 and second["status_code"] == 486 and not second["connected"], second
    _, rep_a = sites.gw_a.finish()
    assert rep_a["rejected_busy"] == 1 and _only(rep_a)["caller_status"] == 200, rep_a  # the first call went on


def test_a_gateway_registered_at_kamailio_is_reached_through_it(sites: Sites, test_weights: Path,
                                                                tmp_path: Path) -> None:
    """Gateway B registers as ``bs`` at a real kamailio; gateway A's trunk is kamailio, which finds B by its contact."""
    with running_kamailio(tmp_path / "kamailio", user="bs") as registrar:
        a, b = sites.gw_a, sites.gw_b
        common = ("--engine", "raw", "--calls", "1", "--timeout", "40")
        b.start(sites.work, f"sip:{HOST}:{a.port}", f"sip:{{user}}@{HOST}:{sites.phone_b.port}", *common,
                "--registrar", f"sip:{HOST}:{registrar}", "--user", "bs", "--password", PASSWORD)
        a.start(sites.work, f"sip:{HOST}:{registrar}", f"sip:{{user}}@{HOST}:{sites.phone_a.port}", *common)
        a.wait_ready()
        b.wait_ready()
        sites.phone_b.start(20.0)
        sites.phone_a.start(6.0, dial=f"sip:bs@{HOST}:{a.port}")
        rc_b, rep_b = b.finish()
        rc_a, rep_a = a.finish()
    assert rep_b["registration"]["registered"] and rep_b["registration"]["code"] == 200, rep_b["registration"]
    for rc, rep in ((rc_a, rep_a), (rc_b, rep_b)):
        call = _only(rep)
        trunk, local = _legs(call)
        assert rc == 0 and call["caller_status"] == 200, call
        assert trunk["codec"] == "LargeSC/24000" and local["codec"] in STANDARD, call
        assert trunk["packets_received"] >= 30 and trunk["extra"]["bad_payloads"] == 0, trunk
