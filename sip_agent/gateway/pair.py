"""One call through the gateway: the caller's leg, the leg we placed for it, and the audio between them.

States (advanced by ``tick`` on the agent's thread, after every turn of its loop)::

    RINGING --(outgoing answered: 200 to the caller)-----------> BRIDGED --(either leg ends: BYE the other)--> ENDING
       |  \\--(outgoing failed: the caller gets caller_status)--> ENDING                                          |
       \\----(the caller gave up: CANCEL the outgoing leg)-------> ENDING ---(both legs over)------------------> DONE

Audio: two pipes (media/pipe.py) at 24 kHz, the same way round whichever side
called: ``to_trunk`` carries what the local phone says to the LargeSC encoder,
``to_phone`` what the LargeSC decoder plays to the phone. The standard leg
reaches them through a conference-bridge port (sip/pcm_port.py), the LargeSC
leg through its engine (``PipeAudio``). Each pipe holds one block of its
consumer plus a margin for the two clocks' phase and jitter, and no more.
"""

from __future__ import annotations

import enum

from largesc_codec.types import FRAME_SAMPLES, SAMPLE_RATE
from sip_agent.gateway.report import GatewayCall
from sip_agent.gateway.routing import Route, caller_status
from sip_agent.media.pipe import PcmPipe, PipeAudio
from sip_agent.sip.call import AgentCall
from sip_agent.sip.pcm_port import PORT_SAMPLES, PipePort

MARGIN = 2 * PORT_SAMPLES  # 40 ms: the bridge's and the engine's clocks, each with its scheduling jitter


class PairState(enum.Enum):
    RINGING = "ringing"
    BRIDGED = "bridged"
    ENDING = "ending"
    DONE = "done"


class Pipes:
    """The two pipes of a call, and the two ends that use them."""

    def __init__(self) -> None:
        # The engine takes 80 ms frames from to_trunk and writes 80 ms frames into to_phone;
        # the bridge port works in 20 ms blocks on both.
        # A level a frame above the start threshold is no jitter but a clock that got ahead (the engine
        # writes a frame of silence more when its playout restarts): shed it at once, not at a distant cap.
        prefill = FRAME_SAMPLES + MARGIN
        self.to_trunk = PcmPipe(prefill=prefill, capacity=prefill + FRAME_SAMPLES - PORT_SAMPLES)
        self.to_phone = PcmPipe(prefill=prefill, capacity=prefill + FRAME_SAMPLES - PORT_SAMPLES)
        self.port = PipePort(send=self.to_trunk, heard=self.to_phone)
        self.codec_audio = PipeAudio(send=self.to_trunk, heard=self.to_phone)

    def figures(self) -> dict[str, float]:
        """What the bridge added: mean wait in each pipe (ms), underruns, samples dropped."""
        out: dict[str, float] = {}
        for name, pipe in (("to_trunk", self.to_trunk), ("to_phone", self.to_phone)):
            st = pipe.stats()
            out.update({f"{name}_wait_ms": round(1000.0 * st.wait_samples / SAMPLE_RATE, 1),
                        f"{name}_underruns": st.underruns, f"{name}_dropped": st.dropped})
        return out


class BridgedCall:
    """One incoming leg and the outgoing leg placed for it (see module docstring)."""

    def __init__(self, route: Route, incoming: AgentCall, outgoing: AgentCall, pipes: Pipes) -> None:
        self.route, self.incoming, self.outgoing, self.pipes = route, incoming, outgoing, pipes
        self.state = PairState.RINGING
        self.caller_status = 0  # the final response the caller got

    def tick(self) -> None:
        inc, out = self.incoming, self.outgoing
        if self.state is PairState.RINGING:
            if inc.done:  # the caller hung up (CANCEL) before the callee answered
                self.caller_status = inc.result.status_code if inc.result else 487
                out.end("the caller hung up before the callee answered")
                self.state = PairState.ENDING
            elif out.done:
                result = out.result
                code, reason = caller_status(result.status_code if result else 0, result.reason if result else "")
                if code == 200:  # answered and gone before we bridged: nobody to talk to
                    code, reason = 480, "Temporarily Unavailable"
                inc.report(f"gateway: {self.route.target} failed ({result.status_code if result else 0}): "
                           f"answering the caller {code} {reason}")
                inc.reject(code)
                self.caller_status = code
                self.state = PairState.ENDING
            elif out.confirmed_at is not None:
                inc.accept()
                self.caller_status = 200
                self.state = PairState.BRIDGED
        elif self.state is PairState.BRIDGED:
            if inc.done or out.done:
                other = out if inc.done else inc
                other.end("the other leg of the gateway call hung up")
                self.state = PairState.ENDING
        if self.state is PairState.ENDING and inc.done and out.done:
            self.state = PairState.DONE

    def end(self, why: str) -> None:
        """Hang up both legs (shutdown)."""
        for leg in (self.incoming, self.outgoing):
            leg.end(why)

    def summary(self) -> GatewayCall:
        return GatewayCall(self.route, self.incoming.peer, self.incoming.result, self.outgoing.result,
                           self.caller_status, self.pipes.figures())
