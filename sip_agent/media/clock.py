"""The LargeSC engine's two 80 ms schedules: send and pull, and the pull's phase.

The codec thread (``largesc.LargeSCEngine``) runs one event at a time, whichever is
due first (a pull on a tie: it is the listener's deadline): send k at
start() + k x 80 ms, pull p at start() + p x 80 ms + ``phase``. This module
holds the pure parts: the counters, the phase and when it may move.

The peer's packets arrive at their own phase against our clock, and a frame
plays once it has waited the jitter buffer's target beyond its fastest
arrival: a pull clock running free would add 0..80 ms (40 on average) on
top. So when playout (re)starts (idle or buffering: first packet, new
stream; or after an outage, while comfort plays) the pull phase is chosen
from the receiver's ``due_ms()`` plus ``PULL_MARGIN_MS`` (``pull_phase_ms``).
While it may move, queued arrivals are also taken in every ``ADMIT_POLL_MS``
between pulls: a first packet seen only at the next pull would often be
overdue already, and playout would start one frame behind, an excess that
continuous speech keeps until its next pause.

It may also move between two quiet frames (the one just played and the next
one held: non-speech, 1 codebook; ``JitterBuffer.between_quiet_frames``),
where nobody hears it: the buffer sheds
only whole frames, so after a disturbance (a late packet, a hold) the delay
would otherwise stay up to 80 ms above target for the rest of the call.
Mid-talkspurt it is never changed: a moved pull would make a gap or a double
frame for a real-time listener. The phase stays in [0, 80), so pull p always
happens within slot p: exactly one pull per 80 ms on average, however often
the phase moves, except once at a start: ``start_slot``.

The concealer's work-ahead (``prepare_next()``, 30-50 ms with the test LM
here) runs on its own thread, started after each pull that played a frame
and joined before the receiver is touched again: on the codec thread it held
up the next send (at a call's start one such packet reached the peer ~80 ms
late and was concealed there) or the next pull.
"""

from __future__ import annotations

import math

from largesc_codec.types import FRAME_MS, FrameSource, LossReport

MAX_LAG_FRAMES = 3  # an event this late (240 ms) skips ahead instead of queueing delay
PULL_MARGIN_MS = 2.0  # pulls this long after the frame is due: the OS timer wakes us a little late
ADMIT_POLL_MS = 5.0  # while the pull phase may move, arrivals are taken in this often, not only at pulls


class CodecState:
    """Counters the codec thread keeps (published as a snapshot after every event)."""

    def __init__(self) -> None:
        self.ticks = self.overruns = self.frames_sent = self.codebooks_sent = self.codebooks_received = 0
        self.lead = 0  # ticks of silence recorded while the codec was being built
        self.pulls = 0  # pull slots done (the lead included): the recording's length in frames
        self.pull_phase_ms = 0.0  # in [0, 80): pull p is due at start() + p x 80 + this
        self.last_source: FrameSource | None = None  # how the last pulled frame was made (None: nothing played)
        self.last_pull_ms = -math.inf  # when the last pull ran
        self.startup_ms = 0.0
        self.last_report: LossReport | None = None


def pull_time_ms(due_ms: float, origin_ms: float, quantum_ms: float = 0.0) -> float:
    """When to pull a frame due at ``due_ms``: a margin later, rounded up to a multiple of ``quantum_ms``
    past ``origin_ms`` (0: not rounded; a batch shares steps between calls whose pulls meet)."""
    at = due_ms + PULL_MARGIN_MS
    if quantum_ms > 0:
        at = origin_ms + math.ceil((at - origin_ms) / quantum_ms) * quantum_ms
    return at


def pull_phase_ms(due_ms: float, origin_ms: float, quantum_ms: float = 0.0) -> float:
    """The phase in [0, 80) of a pull grid ``origin + k x 80 + phase`` that has a pull at ``pull_time_ms``."""
    return (pull_time_ms(due_ms, origin_ms, quantum_ms) - origin_ms) % FRAME_MS


def may_rephase(playing: bool, last_source: FrameSource | None, quiet: bool = False) -> bool:
    """Whether the pull phase may move now: while nothing plays, an outage plays comfort silence,
    or between two quiet frames (``quiet``: the one just played and the next one held)."""
    return not playing or last_source is FrameSource.COMFORT or quiet


def start_slot(due_ms: float, origin_ms: float, pulls: int, last_pull_ms: float, quantum_ms: float = 0.0) -> int:
    """The pull slot to go on from when playout starts: the one whose pull lands a margin after ``due_ms``.

    That slot may be one a silent (buffering) pull already used: the first
    frame often turns up just after a pull. Going on from the next slot would
    play it up to 80 ms late, a delay continuous speech keeps until a pause;
    re-using the slot costs one frame of recording (one frame longer than the
    call) instead. Never a slot whose time has passed, never an earlier one.
    """
    at = pull_time_ms(due_ms, origin_ms, quantum_ms)
    slot = math.floor((at - origin_ms) / FRAME_MS)
    return slot if slot == pulls - 1 and at > last_pull_ms else pulls
