"""Callers authenticated: ``answer`` challenges INVITEs (digest) and keeps to its --allow list.

What could go wrong: pjsua2 as a client not answering the SHA-256 challenge
(then it falls back to MD5 or gives up), a wrong password admitted, a caller
without credentials left hanging instead of getting a clear 401, and the
allow-list checked after the call was already set up.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sip_agent.sip import cli
from tests.sip_agent.conftest import HOST, free_port, only_call

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]


def _answer(agent, port: int, *extra: str, timeout: float = 20):  # type: ignore[no-untyped-def]
    """An answerer; ``timeout``: how long it waits for a call that connects (a refused one does not count)."""
    run = agent("answer", "answer", "--port", str(port), "--calls", "1", "--timeout", str(timeout), "--engine",
                "raw", *extra)
    run.wait_for("waiting for calls")
    return run


def _call(agent, port: int, *extra: str, log: Path | None = None):  # type: ignore[no-untyped-def]
    logs = ["--sip-log", str(log)] if log else []
    return agent("call", "call", f"sip:bob@{HOST}:{port}", "--engine", "raw", "--duration", "1.5", *logs,
                 *extra).finish()


@pytest.mark.parametrize("how", ["options", "file"])
def test_the_right_password_connects_with_sha256(agent, tmp_path: Path, how: str) -> None:
    port = free_port()
    users = tmp_path / "users"
    users.write_text("# callers\ncarol:other\nalice:pa:ss word\n")
    creds = ["--auth-user", "alice", "--auth-password", "pa:ss word"] if how == "options" else ["--auth-file",
                                                                                                str(users)]
    answerer = _answer(agent, port, *creds)
    rc, report = _call(agent, port, "--user", "alice", "--password", "pa:ss word", log=tmp_path / "call.log")
    rc_a, answer_report = answerer.finish()
    assert (rc, rc_a) == (0, 0), report
    assert only_call(report)["connected"] and only_call(report)["codec"] == "LargeSC/24000"
    assert answer_report["refused"] == {"401": 1}  # the first INVITE was challenged
    log = (tmp_path / "call.log").read_text(errors="replace")
    assert re.search(r'WWW-Authenticate: Digest realm="largesc", nonce="[^"]+", algorithm=SHA-256, qop="auth"', log)
    assert re.search(r"Authorization: Digest username=\"alice\".*algorithm=SHA-256.*qop=auth", log)


def test_a_wrong_password_gets_403(agent) -> None:
    port = free_port()
    answerer = _answer(agent, port, "--auth-user", "alice", "--auth-password", "right", timeout=8)
    rc, report = _call(agent, port, "--user", "alice", "--password", "wrong")
    call = only_call(report)
    assert rc == 1 and not call["connected"] and call["status_code"] == 403, report
    assert "forbidden" in call["message"]
    answerer.finish()
    assert "403 Forbidden, wrong credentials for user 'alice'" in answerer.text()


def test_no_credentials_gets_401_and_a_clear_message(agent) -> None:
    port = free_port()
    answerer = _answer(agent, port, "--auth-user", "alice", "--auth-password", "right", timeout=8)
    rc, report = _call(agent, port)
    call = only_call(report)
    assert rc == 1 and call["status_code"] == 401, report
    assert "give --user and --password" in call["message"]
    rc_a, answer_report = answerer.finish()
    assert answer_report["refused"] == {"401": 1} and answer_report["calls"] == []


def test_a_source_outside_allow_is_refused_before_anything_else(agent) -> None:
    port = free_port()
    answerer = _answer(agent, port, "--allow", "10.0.0.0/8", "--allow", "2001:db8::/32",
                       "--auth-user", "alice", "--auth-password", "right", timeout=8)
    rc, report = _call(agent, port, "--user", "alice", "--password", "right")
    assert rc == 1 and only_call(report)["status_code"] == 403, report
    rc_a, answer_report = answerer.finish()
    assert answer_report["refused"] == {"403": 1}  # no 401 first: the allow-list comes before digest
    assert "source 127.0.0.1 is not in --allow" in answerer.text()


def test_a_source_inside_allow_is_answered(agent) -> None:
    port = free_port()
    answerer = _answer(agent, port, "--allow", "127.0.0.0/8")
    rc, report = _call(agent, port)
    assert rc == 0 and only_call(report)["connected"], report
    answerer.finish()


# -- cheap checks ------------------------------------------------------------------------------------------
def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sip_agent")
    cli.register_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _problem(*argv: str) -> str:
    with pytest.raises(ValueError) as info:
        cli.check_options(_parse("answer", "--port", str(free_port()), *argv))
    return str(info.value)


def test_auth_option_problems_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _problem("--auth-user", "alice").startswith("--auth-user and --auth-password go together")
    missing = tmp_path / "nope"
    assert _problem("--auth-file", str(missing)).startswith(f"--auth-file {missing}: No such file or directory")
    bad = tmp_path / "bad"
    bad.write_text("alice\n")
    assert _problem("--auth-file", str(bad)) == f"--auth-file {bad} line 1: write user:password (no spaces in the " \
                                                "user name)"
    with pytest.raises(SystemExit):
        _parse("answer", "--port", "5062", "--allow", "10.0.0.0/33")
    assert "'10.0.0.0/33' is not an address or CIDR block" in capsys.readouterr().err


def test_a_gateway_challenges_the_peer_gateway_which_answers_with_its_credentials(tmp_path: Path) -> None:
    from tests.sip_agent.gateway.sites import Sites

    sites = Sites.make(tmp_path)
    try:
        # gateway A answers challenges as gwA (--user/--password); gateway B challenges its callers
        sites.start_gateways("--engine", "raw", "--calls", "1", "--timeout", "40", "--user", "gwA",
                             "--password", "trunk-secret",
                             only_b=("--auth-user", "gwA", "--auth-password", "trunk-secret", "--allow", HOST))
        sites.phone_b.start(20.0)
        sites.phone_a.start(6.0, dial=f"sip:bs@{HOST}:{sites.gw_a.port}")
        (rc_a, rep_a), (rc_b, rep_b) = sites.gw_a.finish(), sites.gw_b.finish()
    finally:
        sites.stop()
    assert (rc_a, rc_b) == (0, 0), sites.gw_a.text() + sites.gw_b.text()
    assert rep_b["refused"] == {"401": 1} and rep_a["refused"] == {}  # B challenged A's trunk INVITE once
    legs = rep_b["calls"][0]["legs"]
    assert any(leg["codec"] == "LargeSC/24000" and leg["packets_received"] >= 20 for leg in legs), legs
