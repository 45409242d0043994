"""The receiver drives its concealer through the full interface and reports a typed status snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from largesc_codec.neural.concealers import Concealer, Concealment
from largesc_codec.playout.decision import JitterStats
from largesc_codec.receiver import LargeSCReceiver, ReceiverStatus
from largesc_codec.types import Decision, FrameSource, TokenFrame
from largesc_codec.wire.uep import Packetizer

pytestmark = pytest.mark.model
SSRC = 0x5EC0


class Spy(Concealer):
    """Records every call the receiver makes; takes late frames into its state."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def observe(self, index: int, tokens: tuple[int, ...]) -> None:
        self.calls.append(("observe", index))

    def conceal(self, index: int, known: tuple[int, ...], codebooks: int) -> Concealment:
        self.calls.append(("conceal", index, known))
        return Concealment(known or (0,) * codebooks)

    def observe_late(self, index: int, tokens: tuple[int, ...]) -> bool:
        self.calls.append(("late", index))
        return True

    def reset(self, next_index: int = 0) -> None:
        self.calls.append(("reset", next_index))

    def prepare(self, index: int | None = None, known: Sequence[int] = ()) -> None:
        self.calls.append(("prepare", index, tuple(known)))


def _payloads(n: int) -> list[bytes]:
    pk = Packetizer()
    return [pk.packetize([TokenFrame(i, tuple(range(i, i + 4)))], [Decision(4)]) for i in range(n)]


def test_receiver_calls_the_concealer_directly_and_reports_its_status(models: Any) -> None:
    spy = Spy()
    rx = LargeSCReceiver(models.new_mimi(), spy, codebooks=4)
    idle = rx.status()
    assert isinstance(idle, ReceiverStatus) and isinstance(idle.jitter, JitterStats)
    assert (idle.playing, idle.due_ms, idle.packets, idle.malformed) == (False, None, 0, 0)
    assert dict(idle.frames) == dict.fromkeys(FrameSource, 0)
    assert not rx.push(SSRC, 0, 0, b"\xff", 0.0)  # malformed: counted, dropped
    payloads = _payloads(6)
    sources = []
    for i, payload in enumerate(payloads):
        if i != 3:  # frame 3 is lost on the way ...
            rx.push(SSRC, i, i * 1920, payload, i * 80.0 + 1.0)
        if i == 4:  # ... and its packet turns up after frame 3 played
            rx.push(SSRC, 3, 3 * 1920, payloads[3], i * 80.0 + 1.5)
        played = rx.pull(i * 80.0 + 30.0)  # the first frame plays once it waited the 10 ms target
        assert played is not None and played.pcm.shape == (1920,)
        sources.append(played.frame.source)
        rx.prepare_next()
    assert sources == [FrameSource.PRIMARY] * 3 + [FrameSource.CONCEALED] + [FrameSource.PRIMARY] * 2
    assert spy.calls[0] == ("reset", 0)  # playout started: the concealer follows the stream from frame 0
    assert ("conceal", 3, ()) in spy.calls and ("late", 3) in spy.calls
    assert spy.calls.count(("prepare", None, ())) == 6  # nothing of the next frame was held at prepare time
    s = rx.status()
    assert s.playing and s.due_ms is not None and (s.packets, s.malformed, s.late_used) == (6, 1, 1)
    assert s.frames[FrameSource.PRIMARY] == 5 and s.frames[FrameSource.CONCEALED] == 1
    assert s.jitter.packets == 6 and not s.between_quiet_frames  # 4-codebook frames are speech
