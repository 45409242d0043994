"""``largesc gateway``: its options and its handler (the codec options are added by sip_agent/commands.py).

::

    largesc gateway --port P [--bind IP] --trunk sip:HOST:PORT --local 'sip:{user}@HOST:PORT'
                    [--weights W] [--plc lm|repeat|none] [--max-bps B] [--max-calls N] [--report-json FILE]
                    [--registrar URI --user U --password PW]
                    [--transport udp,tcp,tls --tls-cert F --tls-key F --tls-ca F]
                    [--allow CIDR ... --auth-user U --auth-password P | --auth-file F]

The handler runs the agent like ``answer`` (sip/cli.py: cheap checks first,
registration, orderly shutdown on Ctrl-C) with the B2BUA (b2bua.py) taking
every incoming call; ``--report-json`` holds one entry per bridged call with
its two ``legs`` (report.py) and ``rejected_busy``.
"""

from __future__ import annotations

import argparse
from typing import Any

from largesc_codec.cli.options import HelpFormatter
from sip_agent.gateway.b2bua import Gateway
from sip_agent.gateway.routing import TrunkPlan
from sip_agent.sip.agent import Agent
from sip_agent.sip.cli import NO_MEDIA, call_count, media_security_options, port_number, run_agent, sip_options
from sip_agent.sip.security_cli import auth_options
from sip_agent.sip.endpoint import PJSUA_CALL_SLOTS

MOST_CALLS = PJSUA_CALL_SLOTS // 2  # each bridged call holds two pjsua2 calls

def add_gateway(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Add ``gateway`` to ``subparsers``; returns its parser (the codec options are added by the caller)."""
    text = "bridge ordinary SIP phones (G.722, PCMU, PCMA) to a LargeSC trunk between two sites"
    p = subparsers.add_parser("gateway", help=text, description=text[0].upper() + text[1:] + ".",
                              formatter_class=HelpFormatter)
    p.add_argument("--port", type=port_number(1), required=True,
                   help="SIP port to listen on (UDP and TCP; TLS: see --transport)")
    p.add_argument("--trunk", required=True,
                   help="the peer gateway, sip:HOST:PORT: calls from local phones go there over LargeSC")
    p.add_argument("--local", required=True,
                   help="where calls from the trunk go, 'sip:{user}@HOST:PORT' ({user}: the called user)")
    p.add_argument("--max-calls", type=call_count(MOST_CALLS), default=MOST_CALLS,
                   help="most calls bridged at once; beyond them a caller gets 486 Busy Here")
    p.add_argument("--answer-timeout", type=float, default=30.0,
                   help="give up an outgoing leg not answered within S seconds (the caller gets 408)")
    p.add_argument("--calls", type=int, default=0, help="exit after this many bridged calls (0: run until Ctrl-C)")
    p.add_argument("--timeout", type=float, default=None, help="stop after S seconds")
    p.add_argument("--engine", default="largesc", choices=("largesc", "raw"),
                   help="the trunk's media engine: largesc (the codec) or raw (test payloads, no audio)")
    sip_options(p)
    auth_options(p)
    media_security_options(p)
    p.set_defaults(func=cmd_gateway, **{k: v for k, v in NO_MEDIA.items() if k not in ("engine", "latch", "srtp", "sdes_over_plain_sip")})
    return p


def check_plan(ns: argparse.Namespace) -> TrunkPlan:
    """``--trunk`` and ``--local`` as a plan; ValueError naming the option and the form wanted."""
    return TrunkPlan(ns.trunk, ns.local)


def cmd_gateway(ns: argparse.Namespace) -> int:
    """Run the gateway until ``--calls`` bridged calls ended, ``--timeout`` or Ctrl-C; 0 unless it could not run."""
    plan = check_plan(ns)
    served: dict[str, Any] = {}

    def body(agent: Agent) -> int:
        gateway = Gateway(agent, plan, ns.max_calls)
        calls = gateway.serve(ns.calls, ns.timeout)
        served.update(calls=[c.to_json() for c in calls], rejected_busy=gateway.rejected_busy)
        return 0

    return run_agent(ns, ns.port, body, extra=served)
