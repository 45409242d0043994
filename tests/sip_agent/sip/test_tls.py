"""SIP over TLS between two agents, with certificates made here (certs.py).

What could go wrong: pjsua2 refusing the sips: dialog (a sip: Contact in a
sips: dialog gets 480 "SIPS Required"), the TLS listener on the wrong port,
a caller that connects to a server whose certificate its CA did not sign, and
bad certificate options found only as a handshake failure during a call.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sip_agent.sip import cli
from tests.sip_agent.conftest import HOST, free_port, only_call
from tests.sip_agent.sip.certs import Pki, pki  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]


def _tls_server(p: Pki) -> list[str]:
    return ["--tls-cert", str(p.cert), "--tls-key", str(p.key)]


@pytest.mark.parametrize("transports", ["tls", "udp,tcp,tls"])
def test_largesc_call_over_tls(agent, pki: Pki, tmp_path: Path, transports: str) -> None:
    port = free_port()
    tls_port = port if transports == "tls" else port + 1  # the rule of sip/tls.py
    answerer = agent("answer", "answer", "--port", str(port), "--transport", transports, *_tls_server(pki),
                     "--calls", "1", "--timeout", "40", "--engine", "raw")
    answerer.wait_for("waiting for calls")
    assert f"TLS on port {tls_port}" in answerer.text()
    caller = agent("call", "call", f"sips:bob@{HOST}:{tls_port}", "--transport", "tls", "--tls-ca", str(pki.ca),
                   "--engine", "raw", "--duration", "2.5", "--sip-log", str(tmp_path / "call.log"))
    rc_call, call_report = caller.finish()
    rc_answer, answer_report = answerer.finish()
    assert (rc_call, rc_answer) == (0, 0), caller.text() + answerer.text()
    for side in (only_call(call_report), only_call(answer_report)):
        assert side["connected"] and side["codec"] == "LargeSC/24000"
        assert side["media"]["packets_received"] >= 20 and side["media"]["packets_sent"] >= 20
    log = (tmp_path / "call.log").read_text(errors="replace")
    assert re.search(r"TX \d+ bytes Request msg INVITE.* to TLS 127\.0\.0\.1:%d" % tls_port, log)
    assert re.search(r"Contact: <sips:", log)  # a sips: dialog needs a sips: Contact (else 480)
    assert "not verified" not in caller.text()  # --tls-ca given: verification is on by default


def test_a_server_certificate_from_another_ca_is_refused(agent, pki: Pki) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--transport", "tls", *_tls_server(pki),
                     "--calls", "1", "--timeout", "8", "--engine", "raw")
    answerer.wait_for("waiting for calls")
    rc, report = agent("call", "call", f"sips:bob@{HOST}:{port}", "--transport", "tls", "--tls-ca",
                       str(pki.other_ca), "--engine", "raw", "--duration", "2").finish()
    call = only_call(report)
    assert rc == 1 and not call["connected"] and call["status_code"] == 503, report
    assert "certificate verification" in call["message"], call["message"]
    answerer.finish()
    assert "incoming call" not in answerer.text()  # the INVITE never reached the answerer


def test_without_verification_the_same_call_connects_with_a_warning(agent, pki: Pki) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--transport", "tls", *_tls_server(pki),
                     "--calls", "1", "--timeout", "30", "--engine", "raw")
    answerer.wait_for("waiting for calls")
    caller = agent("call", "call", f"sips:bob@{HOST}:{port}", "--transport", "tls", "--tls-ca", str(pki.other_ca),
                   "--no-tls-verify", "--engine", "raw", "--duration", "1")
    rc, report = caller.finish()
    assert rc == 0 and only_call(report)["connected"], caller.text()
    assert "warning: TLS servers we connect to are not verified" in caller.text()
    answerer.finish()


# -- cheap checks: one line with the fix, before pjsua2 starts -------------------------------------------------
def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sip_agent")
    cli.register_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _problem(*argv: str) -> str:
    with pytest.raises(ValueError) as info:
        cli.check_options(_parse(*argv))
    assert "\n" not in str(info.value)
    return str(info.value)


def test_tls_options_without_a_tls_transport(pki: Pki) -> None:
    assert _problem("call", "sip:bob@127.0.0.1:5060", "--tls-ca", str(pki.ca)).startswith(
        "--tls-ca is for SIP over TLS: add tls to --transport")
    assert "add tls to --transport" in _problem("call", "sips:bob@127.0.0.1:5061")
    assert "add tls to --transport" in _problem("call", "sip:bob@127.0.0.1:5061;transport=tls")
    assert _problem("register", "--registrar", "sips:127.0.0.1:5061").startswith(
        "--registrar sips:127.0.0.1:5061 asks for TLS: add tls to --transport")


def test_certificate_problems_are_named(pki: Pki, tmp_path: Path) -> None:
    port = str(free_port())
    base = ("answer", "--port", port, "--transport", "tls")
    assert "needs a certificate: give --tls-cert FILE --tls-key FILE" in _problem(*base)
    assert "go together" in _problem(*base, "--tls-cert", str(pki.cert))
    missing = tmp_path / "missing.pem"
    assert _problem(*base, "--tls-cert", str(missing), "--tls-key", str(pki.key)).startswith(
        f"--tls-cert {missing}: No such file or directory")
    not_pem = tmp_path / "plain.txt"
    not_pem.write_text("hello\n")
    assert "is not a PEM file" in _problem(*base, "--tls-cert", str(not_pem), "--tls-key", str(pki.key))
    assert "the key does not belong to the certificate" in _problem(*base, "--tls-cert", str(pki.cert),
                                                                   "--tls-key", str(pki.stray_key))
    assert _problem(*base, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--tls-ca", str(tmp_path)
                    ).startswith(f"--tls-ca {tmp_path} is a directory")
    assert "--tls-verify needs the CA" in _problem("call", "sips:b@127.0.0.1:5061", "--transport", "tls",
                                                   "--tls-verify")
    cli.check_options(_parse(*base, *_tls_server(pki)))  # the good set passes


def test_tls_port_in_use_is_named(pki: Pki) -> None:
    import socket

    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((HOST, port + 1))
        held.listen()
        problem = _problem("answer", "--port", str(port), "--transport", "udp,tcp,tls", *_tls_server(pki))
    assert problem.startswith(f"--port {port}: TLS port {port + 1} on 127.0.0.1 is in use"), problem


# -- baresip (requirements/apt-test.txt) over TLS, with digest --------------------------------------------------
def test_baresip_calls_over_tls_with_digest_and_audio_flows_both_ways(agent, pki: Pki, tmp_path: Path) -> None:
    import glob

    from tests.sip_agent.conftest import dominant, tone_wav
    from tests.sip_agent.sip.baresip_tls import baresip_tls, dial_over_tls

    work = baresip_tls(tmp_path / "baresip", pki, ";auth_user=alice;auth_pass=pw")
    port, heard = free_port(), tmp_path / "heard.wav"
    # baresip 1.0's libre stops at a SHA-256 challenge (ENOSYS) instead of reading on to MD5: offer MD5 only
    answerer = agent("answer", "answer", "--port", str(port), "--transport", "tls", *_tls_server(pki),
                     "--auth-user", "alice", "--auth-password", "pw", "--auth-algorithms", "md5", "--calls", "1",
                     "--timeout", "30", "--engine", "none", "--duration", "3",
                     "--play", str(tone_wav(tmp_path / "440.wav", 440, 4.0)), "--record", str(heard))
    answerer.wait_for("waiting for calls")
    rc, report = dial_over_tls(work, port, answerer)
    assert rc == 0 and only_call(report)["connected"], answerer.text()
    assert report["refused"] == {"401": 1}  # challenged once, then admitted
    freq_us, rms_us = dominant(heard)
    dumps = glob.glob(str(work / "dump-*-dec.wav"))
    assert dumps, (work / "baresip.out").read_text(errors="replace")[-2000:]
    freq_bs, rms_bs = dominant(Path(dumps[0]))
    assert abs(freq_us - 660) < 5 and rms_us > 1000, (freq_us, rms_us)  # baresip's tone reached us
    assert abs(freq_bs - 440) < 5 and rms_bs > 1000, (freq_bs, rms_bs)  # ours reached baresip


def test_mutual_tls_refuses_a_caller_without_a_certificate(agent, pki: Pki) -> None:
    port = free_port()
    answerer = agent("answer", "answer", "--port", str(port), "--transport", "tls", *_tls_server(pki),
                     "--tls-ca", str(pki.ca), "--tls-verify-client", "--calls", "1", "--timeout", "30",
                     "--engine", "raw")
    answerer.wait_for("waiting for calls")
    target = (f"sips:bob@{HOST}:{port}", "--transport", "tls", "--tls-ca", str(pki.ca), "--engine", "raw",
              "--duration", "1")
    rc, report = agent("anon", "call", *target).finish()
    assert rc == 1 and not only_call(report)["connected"] and only_call(report)["status_code"] == 503, report
    rc, report = agent("client", "call", *target, "--tls-cert", str(pki.client_cert), "--tls-key",
                       str(pki.client_key)).finish()
    assert rc == 0 and only_call(report)["connected"], report
    assert answerer.finish()[0] == 0


def test_gateway_takes_the_tls_and_caller_options(pki: Pki, tmp_path: Path) -> None:
    from sip_agent.gateway.cli import add_gateway
    from sip_agent.sip import security_cli

    parser = argparse.ArgumentParser(prog="largesc")
    add_gateway(parser.add_subparsers(dest="command", required=True))
    users = tmp_path / "users"
    users.write_text("peer:gw-secret\n")
    ns = parser.parse_args(["gateway", "--port", str(free_port()), "--trunk", "sips:127.0.0.1:5071",
                            "--local", "sip:{user}@127.0.0.1:5080", "--transport", "udp,tls", *_tls_server(pki),
                            "--auth-file", str(users), "--allow", "127.0.0.0/8"])
    cli.check_options(ns)
    gate = security_cli.caller_gate(ns)
    assert gate is not None and gate.users == {"peer": "gw-secret"} and len(gate.allow) == 1
    assert not security_cli.sdes_allowed(ns, ("udp", "tls"))  # phones may come over UDP
    ns.transport, ns.tls_cert, ns.tls_key = "udp", None, None
    with pytest.raises(ValueError, match="--trunk sips:127.0.0.1:5071 asks for TLS"):
        cli.check_options(ns)
