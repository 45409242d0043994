"""Bad ``python -m sip_agent`` options end in one clear line and exit code 2, before pjsua2 starts.

The parser runs in-process (importing pjsua2 is fine; no Endpoint is
created). What could go wrong: a registrar without ``sip:`` crashing with
IndexError or building a nonsense account, out-of-range ports silently
replaced by a random one, the domain taken from the wrong part of the URI,
and the registration printing a note about media engines it never uses.
"""

from __future__ import annotations

import argparse
import re
import socket
from pathlib import Path

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


def _held_port(kind: int) -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("kind, name", [(socket.SOCK_DGRAM, "UDP"), (socket.SOCK_STREAM, "TCP")])
def test_a_port_in_use_is_named_before_anything_starts(kind: int, name: str) -> None:
    sock, port = _held_port(kind)
    with sock, pytest.raises(ValueError, match=f"^--port {port}: {name} port {port} on 127.0.0.1 is in use"):
        cli.check_options(_parse("answer", "--port", str(port)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    cli.check_options(_parse("answer", "--port", str(free)))  # released again: nothing held


@pytest.mark.parametrize(("argv", "why"), [
    (["--bind", "10.255.255.254"], "--bind 10.255.255.254: not an IP address of this machine"),
    (["--bind", "no-such-host.invalid"], "--bind no-such-host.invalid: not an IP address of this machine"),
    (["--transport", "udp,sctp"], "--transport 'udp,sctp': give udp, tcp or udp,tcp"),
    (["--record", "."], "--record . is a directory: give a WAV file name"),
])
def test_bad_agent_options_are_named_before_anything_starts(argv: list[str], why: str) -> None:
    with pytest.raises(ValueError) as info:
        cli.check_options(_parse("call", "sip:bob@127.0.0.1:5060", *argv))
    assert str(info.value).startswith(why), info.value


@pytest.mark.parametrize("name, rate, channels", [("tone.flac", 44_100, 2), ("tone.mp3", 22_050, 1),
                                                   ("tone.ogg", 48_000, 1)])
def test_any_audio_file_plays_and_standard_codecs_get_a_16_bit_copy(tmp_path: Path, name: str, rate: int,
                                                                    channels: int) -> None:
    from largesc_codec.neural.audio_stream import audio_seconds, is_pcm16_mono_wav
    from tests.audio_files import write_tone

    play = write_tone(tmp_path / name, 1.5, rate, channels)
    ns = _parse("call", "sip:bob@127.0.0.1:5060", "--play", str(play))
    cli.check_options(ns)
    _, _, options = cli._setup(ns, 0, tmp_path)
    assert options.audio.play == play  # the LargeSC engine reads the file itself
    assert options.max_duration_s == pytest.approx(1.5 + 1.0, abs=0.05)  # the caller hangs up after the file
    copy = options.standard_audio.play if options.standard_audio else None
    assert copy is not None and copy.parent == tmp_path and is_pcm16_mono_wav(copy)
    assert audio_seconds(copy) == pytest.approx(1.5, abs=0.05)
    wav = write_tone(tmp_path / "plain.wav", 1.0, 16_000)
    _, _, plain = cli._setup(_parse("answer", "--port", "5062", "--play", str(wav)), 0, tmp_path)
    assert plain.standard_audio is None and plain.max_duration_s is None  # pjmedia plays it as it is


@pytest.mark.parametrize("bad, why", [("dir", "is a directory"), ("missing.flac", "no such file"),
                                      ("empty.mp3", "is empty (0 bytes)")])
def test_bad_play_files_get_the_shared_message(tmp_path: Path, bad: str, why: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty.mp3").touch()
    with pytest.raises(ValueError, match=f"^--play {tmp_path / bad}.*{re.escape(why)}.*WAV, FLAC, MP3, OGG"):
        cli.check_options(_parse("call", "sip:bob@127.0.0.1:5060", "--play", str(tmp_path / bad)))
