"""A call's timeouts as a pure function of the clock (sans-IO: the call acts on what ``due`` says).

* teardown: after our BYE/CANCEL, DISCONNECTED must come within ``teardown_timeout_s``,
  else the call finishes anyway (pjsip ends its transaction in the background).
* answer timeout (outgoing): not confirmed ``answer_timeout_s`` after dial -> give up.
* max duration: confirmed for ``max_duration_s`` -> hang up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Timeout(Enum):
    """What a call must do now because of time alone."""

    NONE = "none"
    TEARDOWN_OVERDUE = "teardown overdue"  # finish without waiting for pjsip any longer
    NOT_ANSWERED = "not answered"  # give up the outgoing call
    MAX_DURATION = "max duration"  # hang up a confirmed call


@dataclass(frozen=True)
class CallTimers:
    started: float
    answer_timeout_s: float | None
    max_duration_s: float | None
    teardown_timeout_s: float

    def due(self, now: float, outgoing: bool, confirmed_at: float | None, hangup_at: float | None) -> Timeout:
        """The one timeout that applies at ``now`` (teardown first: a call being torn down waits for nothing else)."""
        if hangup_at is not None:
            return Timeout.TEARDOWN_OVERDUE if now - hangup_at > self.teardown_timeout_s else Timeout.NONE
        if confirmed_at is None:
            if outgoing and self.answer_timeout_s is not None and now - self.started > self.answer_timeout_s:
                return Timeout.NOT_ANSWERED
            return Timeout.NONE
        if self.max_duration_s is not None and now - confirmed_at >= self.max_duration_s:
            return Timeout.MAX_DURATION
        return Timeout.NONE
