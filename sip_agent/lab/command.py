"""``largesc lab``: a real SIP call between two namespaces across a netem-impaired link.

The callee answers in one network namespace, the caller calls it from another
through a router that impairs each direction with netem (the host kernel's, or
a user-mode-linux kernel's where the host has none: the first lines say which).
The caller plays FILE, the callee records what arrives. Both interfaces are
captured, so the JSON report holds configured vs observed RTP loss, loss-burst
lengths, delay and jitter, taken from RTP sequence numbers and kernel
timestamps, next to what the agents counted: negotiated codec, payload and wire
bit rate, frames rescued by redundancy / partial / concealed, jitter-buffer
delay, and the recording's path. Needs root (namespaces).

FILE is any audio file ``largesc transmit`` reads (WAV, FLAC, MP3, OGG). Bad
options fail at once (exit 2) before any lab is built: the file, the engine
and, for the codec, the weights (a directory with its files, or the hub repo
in the local hub cache: the agents run in private namespaces and cannot
download). ``--weights`` defaults to $LARGESC_WEIGHTS when set, else hub.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from largesc_codec.cli.app import UserError
from largesc_codec.cli.options import HelpFormatter, add_weights_argument
from largesc_codec.neural.plc import PLC_CHOICES

__all__ = ["register", "run", "summary"]

ENGINES = ("auto", "largesc", "raw", "none")  # sip_agent's --engine values


def _number(kind: type, low: float, strict: bool, what: str) -> Any:
    """An argparse type: ``kind`` above ``low`` (``strict``) or at least ``low``, else exit 2."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < low or (strict and value == low) or value != value:  # NaN too
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


def _netem_spec(text: str) -> str:
    from sip_agent.lab.netem_parse import parse_netem  # pure: no root, no lab

    try:
        parse_netem(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).splitlines()[0]) from None
    return text


def _weights(text: str) -> str:
    if text != "hub" and not text.startswith("hf://") and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such directory (give hub, hf://owner/repo or a weights "
                                         "directory in --weights or $LARGESC_WEIGHTS; `largesc make-test-weights "
                                         "DIR` writes one)")
    return text


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("lab", help="SIP call across a netem-impaired link between two namespaces, "
                       "with a JSON report of configured vs observed loss, bursts, delay and counters",
                       description=__doc__, formatter_class=HelpFormatter)
    from sip_agent.lab.profiles import PROFILES  # pure, light: validation at parse time

    what = p.add_mutually_exclusive_group()
    what.add_argument("--profile", default=None, choices=tuple(PROFILES), metavar="NAME",
                      help=f"named profile: {', '.join(PROFILES)} (default clean; "
                           "docs/impairment-lab.md)")
    what.add_argument("--netem", default=None, metavar="SPEC", type=_netem_spec,
                      help="tc-netem spec for both directions, e.g. 'delay 40ms 5ms loss gemodel 5%% "
                           "40%%' (callee->caller too unless --reverse-netem is given)")
    p.add_argument("--reverse-netem", default=None, metavar="SPEC", type=_netem_spec,
                   help="tc-netem spec for callee->caller ('clean' for none)")
    p.add_argument("--play", type=Path, required=True, metavar="FILE",
                   help="audio file the caller plays (WAV, FLAC, MP3, OGG: what `largesc transmit` reads)")
    p.add_argument("--duration", type=_number(float, 0, True, "a number of seconds > 0"),
                   default=None,
                   help="seconds connected before the caller hangs up (default: FILE's length + 1)")
    p.add_argument("--report", type=Path, default=Path("lab-report.json"),
                   help="JSON report; agent logs and reports go beside it")
    p.add_argument("--record", type=Path, default=None,
                   help="WAV file for what the callee hears (default: REPORT's name + .heard.wav)")
    add_weights_argument(p, "codec weights for both agents (hub: from the local hub cache)", kind=_weights)
    p.add_argument("--plc", choices=PLC_CHOICES, default=None,
                   help="receiver concealment of the codec-backed engine")
    p.add_argument("--engine", default="auto", choices=ENGINES,
                   help="media engine of both agents: largesc (the codec), raw (test payloads, no "
                        "audio), none (standard codecs) or auto (largesc when installed, else raw)")
    p.add_argument("--probe", type=_number(int, 0, False, "a packet count >= 0"), default=0,
                   metavar="N",
                   help="before the call, send N probe packets each impaired way for a tight "
                        "statistical check of the loss model (0: none)")
    p.add_argument("--probe-rate", type=_number(float, 0, True, "packets per second > 0"),
                   default=500.0, metavar="PPS", help="probe packets per second")
    p.add_argument("--backend", choices=("auto", "native", "uml"), default="auto",
                   help="netem router: host kernel (native), user-mode-linux, or auto (default)")
    p.add_argument("--no-router", action="store_true",
                   help="native only: one veth pair between caller and callee, netem on each "
                        "end's egress (impairing needs the host kernel's netem; clean does not)")
    p.add_argument("--answer-timeout", type=_number(float, 0, True, "a number of seconds > 0"),
                   default=30.0,
                   help="give up if the call is not answered within S seconds")
    p.set_defaults(func=run)


def summary(report: dict[str, Any]) -> list[str]:
    """Human lines for the end of a run: codec, and per direction configured vs observed."""
    call = report["call"]
    lines = [f"codec {call.get('codec')} (payload type {call.get('payload_type')}), connected "
             f"{call.get('connected')}, {call.get('duration_s') or 0:.1f} s"]
    for name, d in report["directions"].items():
        obs, conf, rate = d["observed"], d["configured"], d["bitrate"]
        if obs is None:
            lines.append(f"{name}: no RTP seen")
            continue
        want = ("no loss model" if conf.get("loss_rate") is None else
                f"model {100 * conf['loss_rate']:.2f}% in bursts of {conf['mean_burst']:.2f}")
        lines.append(f"{name}: sent {obs['sent']} pkts, lost {obs['lost']} "
                     f"({100 * obs['loss_fraction']:.2f}%, mean burst {obs['mean_burst']:.2f}; "
                     f"{want}), delay {obs['delay_mean_ms']:.1f} ms, jitter {obs['jitter_ms']:.1f} ms, "
                     f"payload {rate['payload_bps']:.0f} bit/s, wire {rate['wire_bps']:.0f} bit/s")
        media, agree, frames = d.get("receiver_counters"), d.get("agreement"), d.get("frames")
        if frames:
            jb = d.get("jitter_buffer") or {}
            lines.append(f"  receiver frames: {frames['primary']} primary, {frames['recovered']} "
                         f"recovered, {frames['partial']} partial, {frames['concealed']} concealed, "
                         f"{frames['comfort']} comfort; missing {frames['missing']} (not sent "
                         f"{frames['not_sent_by_sender']}); jitter buffer "
                         f"{jb.get('delay_ms', 0):.0f} ms; consistent {frames['consistent']}")
        if media:
            lines.append(f"  receiver packets: received {media.get('packets_received')}, lost "
                         f"{media.get('packets_lost')}; match the capture: "
                         f"{agree.get('agrees') if agree else None}")
    for name, p in report.get("probe", {}).items():
        o = p["observed"]
        lines.append(f"probe {name}: {o['sent']} pkts, loss {100 * o['loss_fraction']:.2f}%, mean "
                     f"burst {o['mean_burst']:.2f}, within bounds {p['within_bounds']}")
    if report.get("recording"):
        lines.append(f"recording: {report['recording']}")
    if call.get("error"):
        lines.append(f"error: {call['error']}")
    return lines


def run(args: argparse.Namespace) -> int:
    from sip_agent.lab.call import LabCallConfig, check_config, run_lab_call
    from sip_agent.lab.ns import LabError

    cfg = LabCallConfig(
        play=args.play, report=args.report, profile=args.netem or args.profile or "clean",
        backward=args.reverse_netem, duration_s=args.duration, record=args.record,
        weights=args.weights, plc=args.plc, engine=args.engine, probe_count=args.probe,
        probe_rate=args.probe_rate, backend=args.backend, answer_timeout_s=args.answer_timeout,
        router=not args.no_router)
    check_config(cfg)  # ValueError (exit 2) before any root work: file, engine, weights
    try:
        code, report = run_lab_call(cfg, say=lambda text: print(text, flush=True))
    except LabError as exc:
        raise UserError(str(exc)) from exc
    for line in summary(report):
        print(line, flush=True)
    print(f"report: {args.report}", flush=True)
    return code
