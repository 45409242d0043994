"""SRTP on the LargeSC line with real sockets: engines started from the negotiation, and a live call between
two agents (issue 14 item 3)."""

from __future__ import annotations

import base64
import re
import socket
import struct
import time
from pathlib import Path

import pytest

from largesc_codec.wire.offer_answer import LargeScParams
from rtp import packet
from rtp.srtp import SrtpContext, SrtpKeys, Suite, generate_key
from sip_agent.media.engine import allocate_rtp_port
from sip_agent.media.raw import RawPayloadEngine, pattern
from sip_agent.media.types import LargeScLink, SrtpPolicy
from sip_agent.sip.negotiation import LargeScNegotiation

from tests.sip_agent.conftest import HOST, free_port, only_call
from .test_sdp_munge import PJSUA_OFFER

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]
PJSUA_LOCAL = PJSUA_OFFER.replace("4000", "5000").replace("4002", "5002")


def _listen(port: int) -> tuple[socket.socket, socket.socket]:
    """Sockets on the offered RTP port P and P + 1: what an engine sends there lands here."""
    pair = []
    for p in (port, port + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, p))
        s.settimeout(0.05)
        pair.append(s)
    return pair[0], pair[1]


def _drain(sock: socket.socket, seconds: float) -> list[bytes]:
    got, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            got.append(sock.recv(4096))
        except socket.timeout:
            continue
    return got


def _offer_to(port: int, crypto: str) -> str:
    """A peer's offer whose LargeSC line is ``m=audio P RTP/SAVP <pt>`` with ``crypto``."""
    text, _ = LargeScNegotiation(HOST, LargeScParams(), lambda h: port).rewrite(PJSUA_OFFER, "")
    assert text is not None
    return text.replace(f"m=audio {port} RTP/AVP", f"m=audio {port} RTP/SAVP").replace(
        "a=sendrecv\r\n", f"a=crypto:{crypto}\r\na=sendrecv\r\n")


def _answer_and_maybe_start(offer: str, policy: SrtpPolicy) -> tuple[LargeScNegotiation, RawPayloadEngine | None]:
    """What AgentCall does: rewrite pjsua2's answer, then start the engine if (and only if) LargeSC settled."""
    b = LargeScNegotiation(HOST, LargeScParams(), allocate_rtp_port, srtp=policy)
    b.rewrite(PJSUA_LOCAL, offer)
    if not b.settled:
        return b, None
    assert b.link is not None and b.remote is not None and b.port is not None
    engine = RawPayloadEngine()
    engine.start(b.port, b.remote.address, b.remote.port, b.link)
    return b, engine


def test_defect_declined_savp_line_gets_no_datagram() -> None:
    # issue 14: an offer m=audio P RTP/SAVP 96 with a=crypto was declined (port 0), yet plaintext RTP went to P
    port = allocate_rtp_port(HOST)
    rtp_sock, rtcp_sock = _listen(port)
    try:
        unsupported = "1 AES_256_CM_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(46)).decode()
        for policy in SrtpPolicy:
            b, engine = _answer_and_maybe_start(_offer_to(port, unsupported), policy)
            assert engine is None and not b.settled
        assert _drain(rtp_sock, 0.6) == [] and _drain(rtcp_sock, 0.1) == []
    finally:
        rtp_sock.close()
        rtcp_sock.close()


def test_accepted_savp_line_sends_only_srtp_to_the_offered_port() -> None:
    port = allocate_rtp_port(HOST)
    key = generate_key(Suite.AES_CM_128_HMAC_SHA1_80)
    rtp_sock, rtcp_sock = _listen(port)
    engine = None
    try:
        offer = _offer_to(port, "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(key).decode())
        b, engine = _answer_and_maybe_start(offer, SrtpPolicy.OPTIONAL)
        assert engine is not None and b.link is not None and b.link.srtp is not None
        wire = _drain(rtp_sock, 0.8)
    finally:
        if engine is not None:
            engine.stop()
        rtp_sock.close()
        rtcp_sock.close()
    # the offerer's view: unprotect with the answerer's key (remote) after checking nothing is plain
    peer = SrtpContext(SrtpKeys(Suite.AES_CM_128_HMAC_SHA1_80, local=key, remote=b.link.srtp.local))
    assert len(wire) >= 5
    for datagram in wire:
        rtp = packet.parse(peer.unprotect(datagram))
        assert rtp.payload_type == b.link.payload_type
        frame = struct.unpack_from("!I", rtp.payload)[0]
        assert rtp.payload == pattern(frame, len(rtp.payload)) and rtp.payload[4:] not in datagram


def test_two_engines_over_srtp_exchange_exact_payloads() -> None:
    a_port, b_port = allocate_rtp_port(HOST), allocate_rtp_port(HOST)
    ka, kb = generate_key(Suite.AEAD_AES_128_GCM), generate_key(Suite.AEAD_AES_128_GCM)
    p = LargeScParams()
    a, b = RawPayloadEngine(), RawPayloadEngine()
    a.start(a_port, HOST, b_port, LargeScLink(96, p, p, srtp=SrtpKeys(Suite.AEAD_AES_128_GCM, ka, kb)))
    b.start(b_port, HOST, a_port, LargeScLink(96, p, p, srtp=SrtpKeys(Suite.AEAD_AES_128_GCM, kb, ka)))
    try:
        time.sleep(1.2)
    finally:
        a.stop()
        b.stop()
    sa, sb = a.stats(), b.stats()
    assert sa.packets_received >= 8 and sb.packets_received >= 8
    assert sa.extra["bad_payloads"] == sb.extra["bad_payloads"] == 0
    for s in (sa, sb):
        assert all(s.extra.get(k, 0) == 0 for k in ("srtp_auth_failed", "srtp_replayed", "srtp_malformed",
                                                     "srtp_protect_failed", "rtp_malformed"))


def _sdp_of(log: Path, first_line: str) -> str:
    text = log.read_text(errors="replace")
    found = [m for m in re.findall(r":\n(.*?)\n--end msg--", text, flags=re.S) if m.startswith(first_line)]
    assert found, f"no {first_line!r} in {log}"
    return found[0]


def test_live_call_with_srtp_mandatory_on_both_sides(agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # --sdes-over-plain-sip: the explicit permission to send SDES keys over UDP SIP (TLS is tested elsewhere)
    port = free_port()
    srtp = ("--srtp", "mandatory", "--sdes-over-plain-sip")
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "40", "--engine", "raw",
                     *srtp, "--sip-log", str(tmp_path / "answer.log"))
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port}", "--engine", "raw", "--duration", "2.5", *srtp,
                   "--sip-log", str(tmp_path / "call.log"))
    rc_call, call_report = caller.finish()
    rc_answer, answer_report = answerer.finish()
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    for run, side in ((caller, only_call(call_report)), (answerer, only_call(answer_report))):
        assert side["connected"] and side["codec"] == "LargeSC/24000", run.text()
        assert "SRTP AES_CM_128_HMAC_SHA1_80" in run.text()  # the suite, in the negotiated-codec line
        media = side["media"]
        assert media["packets_sent"] >= 20 and media["packets_received"] >= 20, media
        extra = media["extra"]
        assert extra["bad_payloads"] == 0  # the raw engine checks every payload byte for byte
        for counter in ("srtp_auth_failed", "srtp_replayed", "srtp_malformed", "srtp_protect_failed",
                        "rtp_malformed", "rtcp_malformed"):
            assert extra.get(counter, 0) == 0, (counter, extra)
    invite = _sdp_of(tmp_path / "call.log", "INVITE ")
    ok = _sdp_of(tmp_path / "call.log", "SIP/2.0 200 OK")
    assert re.search(r"m=audio [1-9]\d* RTP/SAVP \d+\r?\n", invite) and "a=crypto:1 AES_CM_128_HMAC_SHA1_80" in invite
    assert re.search(r"m=audio [1-9]\d* RTP/SAVP \d+\r?\n", ok) and "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in ok


def test_live_mandatory_answerer_never_runs_largesc_for_a_plain_offer(agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The LargeSC line is declined (port 0) and no engine runs. What the call does next is pjsua2's own
    # line's business: it falls back to a standard codec, or pjsua2's own mandatory SRTP answers 488.
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "8", "--engine", "raw",
                     "--srtp", "mandatory", "--sdes-over-plain-sip")
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port}", "--engine", "raw", "--duration", "1.5", "--srtp", "off",
                   "--sip-log", str(tmp_path / "call.log"))
    caller.finish()
    answerer.finish()
    assert "negotiated codec: LargeSC" not in answerer.text() + caller.text()
    ok = [m for m in re.findall(r":\n(.*?)\n--end msg--", (tmp_path / "call.log").read_text(errors="replace"),
                                flags=re.S) if m.startswith("SIP/2.0 200 OK") and "m=audio" in m]
    if ok:  # connected on the fallback: the LargeSC line was declined
        lines = re.findall(r"m=audio (\d+) (\S+)", ok[0])
        assert len(lines) == 2 and lines[1][0] == "0", ok[0]
        assert "LargeSC line declined: no SRTP crypto suite in common" in answerer.text()
