"""``largesc gateway``: a back-to-back user agent between ordinary phones and a LargeSC trunk.

One agent (one SIP port) takes every incoming INVITE (``Agent.incoming``):

* no LargeSC offer -> an ordinary phone: ring it (180), call the trunk with the
  same user part, offering LargeSC;
* a LargeSC offer -> the peer gateway: ring, call ``--local`` with the user
  part, standard codecs only.

The pair (pair.py) answers the caller once the callee answers, passes a failed
outgoing leg's status back (routing.caller_status), and ends both legs when
either ends. Beyond ``max_calls`` pairs a new caller gets 486 Busy Here; a
request we cannot route gets 404 (no user) and nothing is dialled.
Re-INVITEs (hold, resume) are each leg's own business: the standard leg
reconnects its bridge port after every media update, the LargeSC leg keeps its
engine, so the bridge survives them.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from sip_agent.gateway.pair import BridgedCall, PairState, Pipes
from sip_agent.gateway.report import GatewayCall
from sip_agent.gateway.routing import TrunkPlan, route
from sip_agent.sip import sdp_munge
from sip_agent.sip.agent import Agent

Report = Callable[[str], None]


def offers_largesc(invite: str) -> bool:
    """Whether an INVITE's SDP offers the dedicated LargeSC line (a peer gateway calls)."""
    body = sdp_munge.sdp_body(invite)
    return body is not None and sdp_munge.find_largesc(body) is not None


class Gateway:
    """Bridges calls between ``agent``'s phones side and trunk side (see module docstring)."""

    def __init__(self, agent: Agent, plan: TrunkPlan, max_calls: int) -> None:
        if agent.options.engine is None:
            raise ValueError("the gateway needs a LargeSC media engine for its trunk legs (--engine largesc or raw)")
        self.agent, self.plan, self.max_calls = agent, plan, max_calls
        self.local_options = dataclasses.replace(agent.options, engine=None)  # phones get standard codecs
        self.pairs: list[BridgedCall] = []
        self.finished: list[GatewayCall] = []
        self.rejected_busy = 0
        agent.incoming = self.on_incoming

    def on_incoming(self, call_id: int, invite: str) -> None:
        agent = self.agent
        if len(self.pairs) >= self.max_calls:
            self.rejected_busy += 1
            agent.reject(call_id, invite, 486, f"busy: {self.max_calls} calls through the gateway already")
            return
        largesc = offers_largesc(invite)
        try:
            where = route(self.plan, invite, largesc)
        except ValueError as exc:
            agent.reject(call_id, invite, 404, f"cannot route it: {exc}")
            return
        pipes = Pipes()
        if where.outgoing_largesc:  # a phone calls out over the trunk
            incoming = agent.incoming_call(call_id, invite, standard=pipes.port)
            outgoing = agent.outgoing_call(where.target, audio=pipes.codec_audio)
        else:  # the peer gateway delivers a call to a local phone
            incoming = agent.incoming_call(call_id, invite, audio=pipes.codec_audio)
            outgoing = agent.outgoing_call(where.target, standard=pipes.port, options=self.local_options)
        agent.report(f"gateway: call from {incoming.peer} for {where.user} -> {where.target} "
                     f"({where.direction.value})")
        incoming.ring()
        self.pairs.append(BridgedCall(where, incoming, outgoing, pipes))

    def tick(self) -> None:
        """Advance every pair; collect those whose legs are both over."""
        for pair in list(self.pairs):
            pair.tick()
            if pair.state is PairState.DONE:
                self.pairs.remove(pair)
                self.finished.append(pair.summary())

    def serve(self, calls: int = 0, timeout_s: float | None = None) -> list[GatewayCall]:
        """Bridge calls until ``calls`` pairs have ended (0: until stopped) or ``timeout_s`` passes."""
        agent = self.agent
        agent.report(f"gateway on {agent.endpoint.config.host}:{agent.sip_port}: phones -> {self.plan.trunk} "
                     f"(LargeSC), trunk -> {self.plan.local}; at most {self.max_calls} calls")
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while not (calls and len(self.finished) >= calls and not self.pairs):
            if agent.stop.is_set() or (end is not None and time.monotonic() >= end):
                break
            agent.step()
            self.tick()
        return self.close()

    def close(self) -> list[GatewayCall]:
        """Hang up what is still up and wait (bounded) for both legs of each pair to end."""
        for pair in self.pairs:
            pair.end("gateway shutting down")
        deadline = time.monotonic() + self.agent.options.teardown_timeout_s + 1
        while self.pairs and time.monotonic() < deadline:
            self.agent.step()
            self.tick()
        for pair in self.pairs:  # gave up waiting: report them as they are
            self.finished.append(pair.summary())
        self.pairs.clear()
        return list(self.finished)
