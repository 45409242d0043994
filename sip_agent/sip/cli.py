"""Command-line front end: ``call``, ``answer`` and ``register``.

``register_subcommands(subparsers)`` adds them to any argparse parser (the
``largesc`` command mounts them); each handler takes the parsed namespace
and returns the process exit code: 0 success, 1 the call/registration
failed, 2 the agent could not start (port in use, bad file, bad option).
``python -m sip_agent ...`` runs them stand-alone.

``check_options`` makes the cheap checks (preflight.py: ``--play``,
``--record``, ``--transport``, the SIP port on ``--bind``; security_cli.py:
the TLS files, SDES policy and callers' credentials) before anything
else starts; ``largesc call/answer`` run it before they load the models.
``--play`` takes any audio file ``largesc transmit`` takes; for a call that
ends on a standard codec (pjsua2's own media, which plays only 16-bit PCM
WAV) it is converted once, before the agent starts, into a 16 kHz mono WAV
in a temporary directory that lives as long as the agent.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from largesc_codec.cli.options import HelpFormatter
from largesc_codec.neural.audio_stream import is_pcm16_mono_wav, write_pcm16_wav
from largesc_codec.wire.offer_answer import LargeScParams
from sip_agent.media.engine import ENGINES, EngineFactory, engine_factory
from sip_agent.media.sound import SoundCard, find_device
from sip_agent.media.types import AudioFiles, SrtpPolicy
from sip_agent.sip import preflight, security_cli
from sip_agent.sip.account import AccountSettings
from sip_agent.sip.agent import Agent
from sip_agent.sip.call import CallOptions
from sip_agent.sip.endpoint import PJSUA_CALL_SLOTS, EndpointConfig


def _say(text: str) -> None:
    print(text, flush=True)


_SIP_URI = re.compile(r"sips?:(?:[^@;]+@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d+))?(?:;.*)?")


def registrar_uri(text: str) -> str:
    """argparse type of ``--registrar``: a ``sip:``/``sips:`` URI with host[:port] (returned as given)."""
    m = _SIP_URI.fullmatch(text)
    if m is None or (m["port"] is not None and not 1 <= int(m["port"]) <= 65535):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a SIP URI with host[:port]: write it as sip:HOST[:PORT], e.g. sip:127.0.0.1:5060 "
            "(add ;transport=tcp for TCP)")
    return text


def uri_host(uri: str) -> str:
    """The host part of a URI accepted by ``registrar_uri`` (IPv6 without brackets)."""
    m = _SIP_URI.fullmatch(uri)
    if m is None:
        raise ValueError(f"{uri!r} is not a SIP URI with host[:port]")
    return m["host"].strip("[]")


DEFAULT_MAX_CALLS = PJSUA_CALL_SLOTS  # all pjsua2 holds in one process; beyond, pjsua answers 486 itself


def call_count(most: int) -> Callable[[str], int]:
    """argparse type of ``--max-calls``: a whole number, 1..``most`` (pjsua2's call slots allow no more)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(
                f"{text!r}: give a whole number of calls, 1..{most} (the pjsua2 wheel holds {PJSUA_CALL_SLOTS} "
                "calls a process; run more processes on other ports for more)")
        return value

    parse.__name__ = "calls"
    return parse


def port_number(low: int) -> Callable[[str], int]:
    """argparse type: an integer port in ``low``..65535."""
    def parse(text: str) -> int:
        try:
            port = int(text)
        except ValueError:
            port = -1
        if not low <= port <= 65535:
            raise argparse.ArgumentTypeError(f"{text!r} is not a port number: give {low}..65535")
        return port

    parse.__name__ = "port"  # argparse names the type in its messages
    return parse


def srtp_policy(text: str) -> SrtpPolicy:
    """argparse type of ``--srtp``."""
    try:
        return SrtpPolicy(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give off, optional or mandatory") from None


srtp_policy.__name__ = "policy"


def sip_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind", default="127.0.0.1", help="local IP address for SIP and RTP, also written into SDP")
    p.add_argument("--transport", default="udp,tcp",
                   help="SIP transports to listen on: any of udp, tcp, tls, comma-separated. TLS listens on the "
                        "SIP port itself when alone, on the SIP port + 1 beside udp/tcp (5060 -> 5061)")
    p.add_argument("--user", default="largesc", help="our SIP user name (and digest user name)")
    p.add_argument("--password", default=None, help="digest password, used when a registrar or peer challenges")
    p.add_argument("--domain", default=None, help="domain of our address (default: the registrar's host or --bind)")
    p.add_argument("--registrar", type=registrar_uri, default=None,
                   help="register at this SIP URI first, e.g. sip:127.0.0.1:5060 (sips:HOST:PORT over TLS)")
    p.add_argument("--sip-log", default=None, help="write pjsip's log with every SIP message to this file")
    p.add_argument("--report-json", type=Path, default=None,
                   help="also write the registration and call results (codec, status, media figures) as JSON here")
    security_cli.security_options(p)


_PARAMS = LargeScParams()
# What ``register`` (no call, no media) runs with in place of the media options it does not list.
NO_MEDIA = {"engine": "none", "play": None, "record": None, "duration": None, "sound_device": None,
             "maxcodebooks": _PARAMS.maxcodebooks, "maxbps": _PARAMS.maxbps, "maxred": _PARAMS.maxred,
             "latch": False, "srtp": SrtpPolicy.OPTIONAL, "sdes_over_plain_sip": False}


def media_security_options(p: argparse.ArgumentParser) -> None:
    """Where media may come from and whether it is encrypted (call, answer, gateway)."""
    p.add_argument("--latch", action="store_true",
                   help="take the peer's LargeSC media address from its first packets (a peer behind a NAT); "
                        "without it, media only from the address its SDP names")
    p.add_argument("--srtp", type=srtp_policy, default=SrtpPolicy.OPTIONAL, metavar="{off,optional,mandatory}",
                   help="encrypt media with SRTP: off, optional (when the peer agrees) or mandatory (else no call)")
    p.add_argument("--sdes-over-plain-sip", action="store_true",
                   help="let SRTP keys (SDES a=crypto) go over plain UDP/TCP SIP, readable by anyone on the path "
                        "(a warning says so); without it keys go only over TLS")


def _media_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="auto",
                   help="LargeSC media engine: 'largesc' (the codec), 'raw' (test payloads), 'none' (standard "
                        "codecs only) or 'auto' (largesc when available, else none)")
    p.add_argument("--maxcodebooks", type=int, default=_PARAMS.maxcodebooks,
                   help="LargeSC: most codebooks we accept per frame")
    p.add_argument("--maxbps", type=float, default=_PARAMS.maxbps,
                   help="LargeSC: most payload bit/s we accept (every byte: ToC, tokens, padding)")
    p.add_argument("--maxred", type=int, default=_PARAMS.maxred, help="LargeSC: largest redundancy distance we use")
    p.add_argument("--record", type=Path, default=None, help="write what the peer sends to this WAV file")
    p.add_argument("--play", type=Path, default=None,
                   help="play this audio file into the call (WAV, FLAC, MP3, OGG: what `largesc transmit` reads)")
    p.add_argument("--duration", type=float, default=None,
                   help="hang up after this many seconds connected (call default: the --play file's length + 1)")
    p.add_argument("--sound-device", nargs="?", const="default", default=None, metavar="NAME",
                   help="talk through a sound card instead of --play/--record, for LargeSC and standard calls "
                        "alike (PortAudio: 'default' when NAME is left out, an index, or part of a name; "
                        "`largesc devices` lists them); one call at a time")
    media_security_options(p)


def register_subcommands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]",
                         commands: tuple[str, ...] = ("call", "answer", "register")) -> None:
    """Add the ``commands`` (any of ``call``, ``answer``, ``register``) to ``subparsers``; each sets ``func``."""
    def add(name: str, text: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                                     formatter_class=HelpFormatter)

    if "call" in commands:
        p = add("call", "call a SIP URI, play/record audio, report codec and media statistics")
        p.add_argument("uri", help="whom to call, e.g. sip:bob@127.0.0.1:5062 (;transport=tcp for TCP, "
                                   "sips:bob@127.0.0.1:5063 for TLS with --transport tls)")
        p.add_argument("--sip-port", type=port_number(0), default=0, help="our SIP port (0: any free one)")
        p.add_argument("--answer-timeout", type=float, default=30.0, help="give up if not answered within S seconds")
        sip_options(p)
        _media_options(p)
        p.set_defaults(func=cmd_call)
    if "answer" in commands:
        p = add("answer", "answer incoming SIP calls (LargeSC when the caller offers it)")
        p.add_argument("--port", type=port_number(1), required=True,
                       help="SIP port to listen on (UDP and TCP; TLS: see --transport)")
        p.add_argument("--calls", type=int, default=0, help="exit after this many calls (0: run until Ctrl-C)")
        p.add_argument("--timeout", type=float, default=None, help="stop waiting for calls after S seconds")
        p.add_argument("--max-calls", type=call_count(PJSUA_CALL_SLOTS), default=DEFAULT_MAX_CALLS,
                       help="most calls at once, each with its own codec state over the shared models; beyond "
                            "them a caller gets 486 Busy Here. With --record NAME.wav the n-th call records "
                            "NAME-n.wav (the first NAME.wav)")
        sip_options(p)
        security_cli.auth_options(p)
        _media_options(p)
        p.set_defaults(func=cmd_answer)
    if "register" in commands:
        p = add("register", "register at a SIP registrar, report the result, unregister")
        p.add_argument("--sip-port", type=port_number(0), default=0, help="our SIP port (0: any free one)")
        sip_options(p)
        p.set_defaults(func=cmd_register, **NO_MEDIA)  # registering places no call: no media options


def _engine(name: str) -> EngineFactory | None:
    if name == "none":
        return None
    if name == "auto":
        if "largesc" in ENGINES:
            return ENGINES["largesc"]
        _say("note: no LargeSC media engine registered (the codec registers 'largesc'): standard codecs only")
        return None
    return engine_factory(name)


def check_options(ns: argparse.Namespace) -> None:
    """The cheap checks of preflight.py for the command in ``ns``; ValueError naming the option and the fix."""
    port, flag = (ns.port, "--port") if ns.command in ("answer", "gateway") else (ns.sip_port, "--sip-port")
    names = preflight.transports(ns.transport)
    if getattr(ns, "sound_device", None) is not None:
        if ns.play is not None or ns.record is not None:
            raise ValueError("--sound-device carries the call's audio: leave out --play and --record")
        find_device(ns.sound_device)
    preflight.play_seconds(ns.play)
    preflight.check_record(ns.record)
    security_cli.check_security(ns, names)
    preflight.check_port(ns.bind, port, flag, names)


def _standard_audio(play: Path | None, record: Path | None, scratch: Path | None) -> AudioFiles | None:
    """What pjsua2's own media plays: a 16-bit mono WAV copy of ``--play`` in ``scratch`` (None: the files as given)."""
    if play is None or scratch is None or is_pcm16_mono_wav(play):
        return None
    return AudioFiles(write_pcm16_wav(play, scratch / "play-16k.wav", 16_000, "--play"), record)


def _setup(ns: argparse.Namespace, sip_port: int,
           scratch: Path | None = None) -> tuple[EndpointConfig, AccountSettings, CallOptions]:
    """Endpoint, account and call settings; ``scratch``: where a converted ``--play`` copy goes (module doc)."""
    host = ns.bind
    domain = ns.domain or (uri_host(ns.registrar) if ns.registrar else host)
    duration = ns.duration
    seconds = preflight.play_seconds(ns.play)
    if seconds is not None and duration is None and ns.command == "call":
        duration = seconds + 1.0  # a caller hangs up once its file has played
    names = preflight.transports(ns.transport)
    for line in security_cli.check_security(ns, names):
        _say(line)
    endpoint = EndpointConfig(host=host, sip_port=sip_port, transports=names, tls=security_cli.tls_settings(ns),
                              log_file=ns.sip_log)
    device = getattr(ns, "sound_device", None)
    sdes = security_cli.sdes_allowed(ns, names)
    account = AccountSettings(user=ns.user, domain=domain, registrar=ns.registrar, password=ns.password,
                              sips=bool(ns.registrar) and ns.registrar.lower().startswith("sips:"),
                              srtp=ns.srtp if sdes else SrtpPolicy.OFF, srtp_plain_sip=ns.sdes_over_plain_sip)
    params = LargeScParams(maxcodebooks=ns.maxcodebooks, maxbps=ns.maxbps, maxred=ns.maxred)
    options = CallOptions(host=host, audio=AudioFiles(ns.play, ns.record), engine=_engine(ns.engine), params=params,
                          answer_timeout_s=ns.answer_timeout if ns.command in ("call", "gateway") else None,
                          max_duration_s=duration, sound=None if device is None else SoundCard(find_device(device)),
                          standard_audio=_standard_audio(ns.play, ns.record, scratch),
                          latch=ns.latch, srtp=ns.srtp, sdes_allowed=sdes)
    return endpoint, account, options


def run_agent(ns: argparse.Namespace, sip_port: int, body: Callable[[Agent], int],
              extra: dict[str, object] | None = None) -> int:
    """Checks, agent, registration, ``body(agent)``, orderly shutdown, ``--report-json``; the exit code.

    ``extra``: entries ``body`` fills in for the report (a gateway's own ``calls``), written over the agent's.
    """
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    report: dict[str, object] = {"registration": None, "calls": [], "error": None}
    code = 2
    try:
        check_options(ns)
        with tempfile.TemporaryDirectory(prefix="largesc-agent-") as scratch:
            endpoint, account, options = _setup(ns, sip_port, Path(scratch))
            most = 1 if options.sound is not None else getattr(ns, "max_calls", 1)  # a card: one conversation
            gate = security_cli.caller_gate(ns)
            with Agent(endpoint, account, options, report=_say, stop=stop, max_calls=most, gate=gate) as agent:
                _say(f"SIP on {endpoint.host}:{agent.sip_port} ({'/'.join(endpoint.transports)}), "
                     f"LargeSC {'offered/accepted' if options.engine else 'off'}")
                registration = agent.wait_registration()
                if account.registrar:
                    aor = f"{'sips' if account.sips else 'sip'}:{account.user}@{account.domain}"
                    report["registration"] = {**asdict(registration),
                                              "message": registration.message(aor, account.registrar)}
                code = 1 if registration.failed else body(agent)
            report["calls"] = [asdict(r) for r in agent.results]  # after close: calls ended at shutdown included
            report["rejected_busy"] = agent.rejected_busy
            report["refused"] = {str(code): n for code, n in sorted(agent.refused.items())}
            if options.sound is not None:
                report["sound_device"] = options.sound.figures()
            report.update(extra or {})
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        _say(f"error: {exc}")
        report["error"] = str(exc)
        code = 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if ns.report_json is not None:
        ns.report_json.write_text(json.dumps({**report, "exit_code": code}, indent=2, default=str))
    return code


def cmd_call(ns: argparse.Namespace) -> int:
    """``call URI``: place one call, run it to its end, print the report; 0 if it connected."""
    return run_agent(ns, ns.sip_port, lambda agent: 0 if agent.call(ns.uri).ok else 1)


def cmd_answer(ns: argparse.Namespace) -> int:
    """``answer --port P``: answer calls; 0 if every call that came in connected."""
    def body(agent: Agent) -> int:
        results = agent.answer(ns.calls, ns.timeout)
        if ns.calls and len(results) < ns.calls:
            _say(f"only {len(results)} of {ns.calls} calls came in")
            return 1
        return 0 if all(r.ok for r in results) else 1

    return run_agent(ns, ns.port, body)


def cmd_register(ns: argparse.Namespace) -> int:
    """``register --registrar URI``: 0 when the registrar accepted us (the failure is already printed)."""
    if not ns.registrar:
        _say("error: register needs --registrar sip:HOST:PORT")
        return 2
    return run_agent(ns, ns.sip_port, lambda agent: 0)


def main(argv: list[str] | None = None) -> int:
    """``python -m sip_agent {call,answer,register} ...``"""
    parser = argparse.ArgumentParser(prog="python -m sip_agent", description="LargeSC SIP user agent (pjsua2)",
                                     formatter_class=HelpFormatter)
    register_subcommands(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(argv)
    return int(ns.func(ns))


if __name__ == "__main__":
    sys.exit(main())
