"""``largesc call`` / ``answer`` / ``register`` / ``gateway``: the SIP agent (sip_agent/) with the codec as its media engine.

The three subcommands come from ``sip_agent.sip.cli.register_subcommands`` (one
module mounts all three: ``register`` here is idempotent). ``call`` and
``answer`` gain the codec options ``--weights``, ``--plc``, ``--max-bps`` and
``--adapter``; before the agent starts, the handler makes the agent's cheap
checks (``--play``, ``--record``, ports: ``sip_agent.sip.cli.check_options``)
and the codec options' own, then loads the models once (slow; every call of
the process reuses them) and registers the ``largesc`` media engine
(``sip_agent.media.largesc``) with them. ``--weights`` defaults to
``$LARGESC_WEIGHTS`` when set, else ``hub`` (``largesc_codec.cli.options``).

Engine choice (``--engine``, from sip_agent): ``largesc`` needs the models, so
a load failure is an error (exit 2, with the loader's message and its fix).
``auto`` (the default) does the same for named weights (a directory, an
``hf://`` repo); with the hub weights a load failure is printed and the agent
carries on with standard codecs only (PCMU/PCMA/G722), so ``largesc answer``
still answers ordinary softphones on a machine without the hub. ``raw`` and
``none`` load nothing. pjsua2 is imported only when one of these commands
runs or its help is shown; without it the commands say how to install it.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path
from typing import Callable

from largesc_codec.cli.options import HUB, HelpFormatter, add_weights_argument
from largesc_codec.neural.plc import PLC_CHOICES
from largesc_codec.types import MIMI_PRECISIONS

COMMANDS = ("call", "answer", "register")
_ENGINE_GROUP = "LargeSC codec (the 'largesc' media engine)"
Handler = Callable[[argparse.Namespace], int]


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``call``, ``answer`` and ``register`` to ``sub`` (once, whichever of them was named)."""
    if "call" in sub.choices:
        return
    try:
        from sip_agent.sip.cli import register_subcommands
    except ImportError as exc:  # pjsua2 (or the sip_agent package) missing: only these commands break
        for name in COMMANDS:
            p = sub.add_parser(name, help=f"SIP {name} (unavailable: {exc})", formatter_class=HelpFormatter,
                               description=f"SIP {name}: unavailable here ({exc}).")
            p.add_argument("args", nargs=argparse.REMAINDER)
            p.set_defaults(func=partial(_unavailable, str(exc)))
        return
    register_subcommands(sub, COMMANDS)
    sub.choices["register"].set_defaults(engine="none")  # registering places no call: no media engine
    for name in ("call", "answer"):
        _codec_options(sub.choices[name])


def register_gateway(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``gateway`` (sip_agent/gateway/) with the codec options; ``--trunk``/``--local`` checked first."""
    try:
        from sip_agent.gateway.cli import add_gateway, check_plan
    except ImportError as exc:
        p = sub.add_parser("gateway", help=f"SIP gateway (unavailable: {exc})", formatter_class=HelpFormatter)
        p.add_argument("args", nargs=argparse.REMAINDER)
        p.set_defaults(func=partial(_unavailable, str(exc)))
        return
    _codec_options(add_gateway(sub), check_plan)


def register_devices(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``devices``: the sound devices ``--sound-device`` can name (PortAudio, media/sound.py)."""
    text = "list the sound devices --sound-device can name (PortAudio: ALSA, OSS, JACK)"
    p = sub.add_parser("devices", help=text, description=text[0].upper() + text[1:] + ".",
                       formatter_class=HelpFormatter)
    p.set_defaults(func=cmd_devices)


def cmd_devices(ns: argparse.Namespace) -> int:
    """Print one line per device, the default marked ``*``; 1 when there is none, 2 without PortAudio."""
    from sip_agent.media.sound import devices

    try:
        found = devices()
    except ValueError as exc:
        print(f"largesc devices: error: {str(exc).removeprefix('--sound-device: ')}", flush=True)
        return 2
    if not found:
        print("no sound device (PortAudio sees none): start an audio server, e.g. "
              "`jackd --no-realtime -d dummy &` or a real card's ALSA driver", flush=True)
        return 1
    for d in found:
        print(f"{'*' if d.default else ' '} {d.index:2d}  {d.name}  ({d.hostapi}: {d.inputs} in, {d.outputs} out, "
              f"{d.rate} Hz)", flush=True)
    return 0


def _codec_options(parser: argparse.ArgumentParser, *checks: Callable[[argparse.Namespace], object]) -> None:
    g = parser.add_argument_group(_ENGINE_GROUP)
    add_weights_argument(g, "model weights for LargeSC calls")
    g.add_argument("--plc", choices=PLC_CHOICES, default="lm",
                   help="receiver concealment of lost frames: lm (Moshi LM, default), repeat, none")
    g.add_argument("--max-bps", type=float, default=None,
                   help="most token bit/s WE send (default: all the peer's maxbps allows; "
                        "--maxbps is what we accept)")
    g.add_argument("--adapter", default=None, help="LoRA adapter directory from `largesc finetune` (--plc lm)")
    g.add_argument("--mimi-precision", choices=MIMI_PRECISIONS, default="fp32",
                   help="Mimi's CPU arithmetic: fp32 (default, tokens exact), fp16 (fp16 weights: ~18%% faster "
                        "here, 1.5%% of tokens differ), bf16, auto (bf16 on CPUs with native bf16)")
    if any(a.dest == "max_calls" for a in parser._actions):  # several calls at once: answer, gateway
        g.add_argument("--batch", action="store_true",
                       help="run all calls' Mimi encode and decode steps batched (default: one Mimi pair per "
                            "call; on the 2-core machine measured, batching did not yet carry more calls)")
    parser.set_defaults(func=partial(_with_engine, parser.get_default("func"), checks))


def _unavailable(problem: str, ns: argparse.Namespace) -> int:
    print(f"largesc {ns.command}: error: the SIP agent cannot load ({problem}); install pjsua2 with "
          f"`pip install pjsua2-python==2.15.1.post1` (or `make setup`)", flush=True)
    return 2


def _with_engine(handler: Handler, checks: tuple[Callable[[argparse.Namespace], object], ...],
                 ns: argparse.Namespace) -> int:
    """Cheap checks, then the codec engine as ``--engine`` asks (module docstring), then the SIP handler."""
    from sip_agent.sip.cli import check_options

    try:
        check_options(ns)
        for check in checks:
            check(ns)
        failure = prepare_engine(ns)
    except ValueError as exc:
        failure = str(exc)
    if failure is not None:
        print(f"error: {failure}", flush=True)
        if ns.report_json is not None:  # same shape as the agent's own report
            Path(ns.report_json).write_text(json.dumps(
                {"registration": None, "calls": [], "error": failure, "exit_code": 2}, indent=2))
        return 2
    return handler(ns)


def prepare_engine(ns: argparse.Namespace) -> str | None:
    """Check options, preload models and register ``largesc``; returns an error message, or None to go on."""
    if ns.engine not in ("auto", "largesc"):
        return None
    from sip_agent.media.engine import ENGINES
    from sip_agent.media.largesc import register as register_largesc
    from sip_agent.media.setup import CodecOptions, preload

    streams = ns.max_calls if getattr(ns, "batch", False) else 0  # batch rows: one per call at once
    options = CodecOptions(weights=ns.weights, plc=ns.plc, max_bps=ns.max_bps, adapter=ns.adapter,
                           batch_streams=streams, mimi_precision=ns.mimi_precision)
    try:
        options.check()
    except ValueError as exc:
        return str(exc)
    started = time.monotonic()
    try:
        models = preload(options)
    except (RuntimeError, ValueError, OSError) as exc:  # WeightsError is a RuntimeError
        if ns.engine == "largesc" or ns.weights != HUB:
            return f"cannot load the LargeSC models: {exc}"
        ENGINES.pop("largesc", None)
        print(f"note: LargeSC is off for this run (could not load the models from {options.weights}: "
              f"{str(exc).split('. ')[0]}); standard codecs only. Give --weights DIR (or set "
              "LARGESC_WEIGHTS=DIR) to use LargeSC.", flush=True)
        return None
    untrained = " (UNTRAINED test weights: audio is not speech)" if models.untrained else ""
    print(f"LargeSC codec ready: weights {options.weights}{untrained}, concealment {options.plc}, "
          f"loaded in {time.monotonic() - started:.1f} s", flush=True)
    register_largesc(options, report=lambda text: print(text, flush=True))
    return None
