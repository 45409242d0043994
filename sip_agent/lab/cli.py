"""``python -m sip_agent.lab.cli``: build a lab, measure its path, print what impaired it.

Theory of operation
-------------------
A thin command over :class:`sip_agent.lab.lab.Lab` and
:func:`sip_agent.lab.probe.probe`, for checking a profile by hand and for
clearing leftovers of crashed runs. ``add_arguments`` / ``run`` are separate so
a bigger command (``largesc lab``) can embed the same options.
"""

from __future__ import annotations

import argparse
import sys

from sip_agent.lab.lab import Lab, LabError, cleanup_stale
from sip_agent.lab.probe import probe
from sip_agent.lab.profiles import PROFILES

__all__ = ["add_arguments", "run", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(f"{n} ({p.description})" for n, p in PROFILES.items())
    parser.add_argument("--profile", default="clean",
                        help=f"named profile or raw tc-netem spec; named: {names}")
    parser.add_argument("--forward", help="raw netem spec for caller->callee (overrides profile)")
    parser.add_argument("--backward", help="raw netem spec for callee->caller (overrides profile)")
    parser.add_argument("--backend", choices=("auto", "native", "uml"), default="auto")
    parser.add_argument("--no-router", action="store_true",
                        help="native only: one veth pair, netem on each end's egress")
    parser.add_argument("--count", type=int, default=500, help="probe packets per direction")
    parser.add_argument("--rate", type=float, default=50.0, help="probe packets per second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cleanup-stale", action="store_true",
                        help="only remove leftovers of crashed labs (dead owners) and exit")


def run(args: argparse.Namespace) -> int:
    if args.cleanup_stale:
        cleaned = cleanup_stale()
        print(f"removed {len(cleaned)} stale lab(s): {' '.join(cleaned) or '-'}")
        return 0
    try:
        with Lab(args.profile, forward=args.forward, backward=args.backward,
                 backend=args.backend, router=not args.no_router) as lab:
            print(lab.info.describe())
            for direction in ("forward", "backward"):
                spec = lab.forward if direction == "forward" else lab.backward
                want = spec.expected_loss()
                res = probe(lab, args.count, args.rate, direction=direction, seed=args.seed)
                print(f"{direction}: {res.describe()}")
                if want is not None:
                    print(f"  model: loss {100 * want.loss_rate:.2f}% "
                          f"(+-{100 * (spec.loss_fraction_sd(args.count) or 0):.2f} for "
                          f"{args.count} packets), mean burst {want.mean_burst:.2f}")
            print(lab.qdisc_stats().rstrip())
    except (LabError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sip_agent.lab.cli", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
