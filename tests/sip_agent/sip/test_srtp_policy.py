"""``--srtp`` on pjsua2's own (standard-codec) line, and the rule that SDES keys go only over TLS.

What could go wrong: keys (``a=crypto``) sent in the clear over UDP SIP by
default, ``--srtp mandatory`` on plain SIP starting anyway and failing every
call, SRTP negotiated but the audio not decrypted, and the flag other code
reads (``CallOptions.sdes_allowed``) saying yes where the signalling is plain.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sip_agent.media.types import SrtpPolicy
from sip_agent.sip import cli
from tests.sip_agent.conftest import HOST, dominant, free_port, only_call, tone_wav
from tests.sip_agent.sip.certs import Pki, pki  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]


def _sdp_lines(log: Path, first_line: str) -> str:
    """The SDP of the first SIP message in a pjsip log whose first line starts with ``first_line``."""
    text = log.read_text(errors="replace")
    found = [m for m in re.findall(r":\n(.*?)\n--end msg--", text, flags=re.S) if m.startswith(first_line)]
    assert found, f"no {first_line!r} in {log}"
    return found[0]


def test_standard_codec_call_over_tls_with_srtp_mandatory(agent, pki: Pki, tmp_path: Path) -> None:
    port, rec_a, rec_c = free_port(), tmp_path / "rec_answer.wav", tmp_path / "rec_call.wav"
    answerer = agent("answer", "answer", "--port", str(port), "--transport", "tls", "--tls-cert", str(pki.cert),
                     "--tls-key", str(pki.key), "--srtp", "mandatory", "--calls", "1", "--timeout", "40",
                     "--engine", "none", "--play", str(tone_wav(tmp_path / "660.wav", 660, 3.0)),
                     "--record", str(rec_a))
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sips:bob@{HOST}:{port}", "--transport", "tls", "--tls-ca", str(pki.ca),
                   "--srtp", "mandatory", "--engine", "none", "--duration", "2.5",
                   "--play", str(tone_wav(tmp_path / "440.wav", 440, 3.0)), "--record", str(rec_c),
                   "--sip-log", str(tmp_path / "call.log"))
    rc_call, call_report = caller.finish()
    rc_answer, answer_report = answerer.finish()
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    assert only_call(call_report)["connected"] and only_call(call_report)["media"]["packets_received"] > 50
    for first_line in ("INVITE ", "SIP/2.0 200 OK"):
        sdp = _sdp_lines(tmp_path / "call.log", first_line)
        assert re.search(r"m=audio [1-9]\d* RTP/SAVP ", sdp), sdp  # SRTP, not plain RTP/AVP
        assert re.search(r"a=crypto:\d+ AES(_256)?_CM_(128_)?HMAC_SHA1_(80|32) inline:", sdp), sdp
    freq_a, rms_a = dominant(rec_a)
    freq_c, rms_c = dominant(rec_c)
    assert abs(freq_a - 440) < 5 and rms_a > 1000, (freq_a, rms_a)  # decrypted at the answerer
    assert abs(freq_c - 660) < 5 and rms_c > 1000, (freq_c, rms_c)  # and at the caller


def test_srtp_optional_over_plain_sip_sends_no_keys(agent, tmp_path: Path) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "30", "--engine", "none")
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port}", "--engine", "none", "--duration", "1",
                   "--sip-log", str(tmp_path / "call.log"))
    rc, report = caller.finish()
    assert rc == 0 and only_call(report)["connected"], caller.text()
    assert "note: SRTP off for these calls: its keys go only over TLS" in caller.text()
    for first_line in ("INVITE ", "SIP/2.0 200 OK"):
        sdp = _sdp_lines(tmp_path / "call.log", first_line)
        assert "a=crypto" not in sdp and "RTP/SAVP" not in sdp, sdp
    answerer.finish()


def test_sdes_over_plain_sip_when_asked_with_a_warning(agent, tmp_path: Path) -> None:
    port = free_port()
    plain = ("--srtp", "mandatory", "--sdes-over-plain-sip", "--engine", "none")
    answerer = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", "30", *plain)
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sip:bob@{HOST}:{port}", "--duration", "1", "--sip-log",
                   str(tmp_path / "call.log"), *plain)
    rc, report = caller.finish()
    assert rc == 0 and only_call(report)["connected"], caller.text()
    assert "warning: --sdes-over-plain-sip: SRTP keys go over plain SIP" in caller.text()
    assert "a=crypto" in _sdp_lines(tmp_path / "call.log", "SIP/2.0 200 OK")
    answerer.finish()


# -- in-process: the refusal and the flag other code reads -------------------------------------------------
def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sip_agent")
    cli.register_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_srtp_mandatory_over_plain_sip_refuses_to_start() -> None:
    fixes = {"call": "call a sips: URI with --transport tls", "answer": "listen on --transport tls alone"}
    for argv in (("call", "sip:bob@127.0.0.1:5060"), ("answer", "--port", str(free_port()))):
        with pytest.raises(ValueError) as info:
            cli.check_options(_parse(*argv, "--srtp", "mandatory"))
        problem = str(info.value)
        assert problem.startswith("--srtp mandatory: SRTP keys go only over TLS signalling"), problem
        assert fixes[argv[0]] in problem and "--sdes-over-plain-sip" in problem


@pytest.mark.parametrize("argv, allowed", [
    (("call", "sip:bob@127.0.0.1:5060"), False),
    (("call", "sip:bob@127.0.0.1:5060", "--sdes-over-plain-sip"), True),
    (("call", "sips:bob@127.0.0.1:5061", "--transport", "tls"), True),
    (("call", "sip:bob@127.0.0.1:5061;transport=tls", "--transport", "udp,tls"), True),
    (("call", "sip:bob@127.0.0.1:5061", "--transport", "udp,tls"), False),  # this call goes over UDP
    (("answer", "--port", "5062", "--transport", "udp,tcp,tls"), False),  # a caller may come over UDP
    (("answer", "--port", "5062", "--transport", "tls"), True),
])
def test_sdes_allowed_follows_the_signalling(pki: Pki, tmp_path: Path, argv: tuple[str, ...], allowed: bool) -> None:
    tls = ("--tls-cert", str(pki.cert), "--tls-key", str(pki.key)) if argv[0] == "answer" else ()
    _, account, options = cli._setup(_parse(*argv, *tls), 0, tmp_path)
    assert options.sdes_allowed is allowed
    assert account.srtp is (SrtpPolicy.OPTIONAL if allowed else SrtpPolicy.OFF)
    _, account, options = cli._setup(_parse(*argv, *tls, "--srtp", "off"), 0, tmp_path)
    assert account.srtp is SrtpPolicy.OFF and options.srtp is SrtpPolicy.OFF
