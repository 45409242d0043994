"""Bad ``python -m sip_agent`` options end in one clear line and exit code 2, before pjsua2 starts.

The parser runs in-process (importing pjsua2 is fine; no Endpoint is
created). What could go wrong: a registrar without ``sip:`` crashing with
IndexError or building a nonsense account, out-of-range ports silently
replaced by a random one, the domain taken from the wrong part of the URI,
and the registration printing a note about media engines it never uses.
"""

from __future__ import annotations

import argparse

import pytest

from sip_agent.sip import cli

pytestmark = pytest.mark.sip


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sip_agent")
    cli.register_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("registrar", ["foo", "127.0.0.1:5060", "http://127.0.0.1:5060", "sip:", "sip:host:99999",
                                       "sip:host:port"])
def test_a_registrar_that_is_not_a_sip_uri_is_refused_with_the_fix(capsys, registrar: str) -> None:
    line = _error(capsys, "register", "--registrar", registrar, "--user", "a", "--password", "b")
    assert "--registrar" in line and repr(registrar) in line and "sip:HOST[:PORT]" in line


@pytest.mark.parametrize(("command", "option", "value"), [
    ("answer", "--port", "99999"), ("answer", "--port", "0"), ("answer", "--port", "x"),
    ("call", "--sip-port", "65536"), ("call", "--sip-port", "-1"), ("register", "--sip-port", "70000"),
])
def test_out_of_range_ports_are_refused(capsys, command: str, option: str, value: str) -> None:
    extra = ["sip:bob@127.0.0.1:5060"] if command == "call" else []
    line = _error(capsys, command, *extra, option, value)
    assert option in line and "65535" in line


def test_valid_ports_and_registrar_uris_are_accepted() -> None:
    assert _parse("answer", "--port", "65535").port == 65535
    assert _parse("call", "sip:b@127.0.0.1:5060", "--sip-port", "0").sip_port == 0
    for uri in ("sip:127.0.0.1", "sip:127.0.0.1:5060", "sips:registrar.example.org:5061;transport=tls",
                "sip:alice@10.1.2.3:5070;transport=tcp"):
        assert _parse("register", "--registrar", uri).registrar == uri


@pytest.mark.parametrize(("uri", "domain"), [
    ("sip:127.0.0.1:5060", "127.0.0.1"), ("sip:alice@10.1.2.3:5070;transport=tcp", "10.1.2.3"),
    ("sip:pbx.example.org", "pbx.example.org"),
])
def test_the_account_domain_is_the_registrar_host(uri: str, domain: str) -> None:
    _, account, _ = cli._setup(_parse("register", "--registrar", uri, "--user", "alice"), 0)
    assert (account.domain, account.registrar, f"sip:{account.user}@{account.domain}") == (
        domain, uri, f"sip:alice@{domain}")


def test_register_uses_no_media_engine_and_says_nothing_about_one(capsys) -> None:
    _, _, options = cli._setup(_parse("register", "--registrar", "sip:127.0.0.1:5060"), 0)
    assert options.engine is None
    assert "media engine" not in capsys.readouterr().out
