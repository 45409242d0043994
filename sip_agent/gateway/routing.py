"""Where a gateway sends an incoming call, and what the caller hears when the outgoing leg fails.

Pure functions over text (no pjsua2, no sockets), so the rules are tested on their own:

* ``route``: a call that arrives WITHOUT a LargeSC offer comes from an ordinary
  phone and goes to the trunk (``--trunk sip:HOST:PORT``, same user part); a
  call WITH a LargeSC offer comes from the peer gateway and goes to the local
  side (``--local 'sip:{user}@HOST:PORT'``, ``{user}`` replaced).
* ``caller_status``: the final response the caller gets when the outgoing leg
  ends before it was answered: the outgoing leg's own status where it is one a
  caller can act on (404, 486, 480, 603, ...), 408 when nobody answered in time,
  503 when the next hop could not be reached (a transport error, or a 5xx that
  a caller cannot act on). Never a ringing call left without a final answer.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["Direction", "Route", "TrunkPlan", "caller_status", "request_user", "route"]

# RFC 3261 25.1 "user": unreserved / escaped / user-unreserved. Anything else in a request's user part is
# refused (it would be pasted into the outgoing Request-URI).
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]{1,64}")
_HOSTPORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?")
_PASS_THROUGH = {400, 403, 404, 410, 480, 484, 486, 488, 600, 603, 604, 606}


class Direction(enum.Enum):
    """Which way a call crosses the gateway."""

    TO_TRUNK = "to-trunk"  # an ordinary phone calls out over the LargeSC trunk
    TO_LOCAL = "to-local"  # the peer gateway delivers a call to a local phone


@dataclass(frozen=True)
class Route:
    """Where one incoming call goes: the outgoing leg's URI and whether that leg negotiates LargeSC."""

    direction: Direction
    user: str
    target: str

    @property
    def outgoing_largesc(self) -> bool:
        return self.direction is Direction.TO_TRUNK


@dataclass(frozen=True)
class TrunkPlan:
    """The gateway's two targets, checked once at start (ValueError names the option and the form wanted)."""

    trunk: str  # sip:HOST:PORT[;params]
    local: str  # sip:{user}@HOST:PORT[;params]

    def __post_init__(self) -> None:
        scheme, _, rest = self.trunk.partition(":")
        if scheme not in ("sip", "sips") or "@" in rest or not _HOSTPORT.fullmatch(rest.split(";")[0]):
            raise ValueError(f"--trunk {self.trunk!r}: give the peer gateway as sip:HOST:PORT (no user part), "
                             "e.g. sip:192.0.2.20:5080")
        scheme, _, rest = self.local.partition(":")
        user, at, hostport = rest.partition("@")
        if scheme not in ("sip", "sips") or user != "{user}" or not at or not _HOSTPORT.fullmatch(
                hostport.split(";")[0]):
            raise ValueError(f"--local {self.local!r}: give the local phones as 'sip:{{user}}@HOST:PORT', "
                             "e.g. 'sip:{user}@127.0.0.1:5060' ({user} is replaced by the called user)")


def request_user(invite: str) -> str:
    """The user part of an INVITE's Request-URI; ValueError if it has none or one we would not forward."""
    first = invite.replace("\r\n", "\n").split("\n", 1)[0].split()
    if len(first) != 3 or first[0] != "INVITE":
        raise ValueError("not an INVITE request line")
    scheme, _, rest = first[1].partition(":")
    user, at, _ = rest.partition("@")
    if scheme not in ("sip", "sips") or not at:
        raise ValueError(f"the Request-URI {first[1][:80]!r} names no user to forward to")
    if not _USER.fullmatch(user):
        raise ValueError(f"the Request-URI's user part {user[:80]!r} is not a SIP user name")
    return user


def route(plan: TrunkPlan, invite: str, offers_largesc: bool) -> Route:
    """The outgoing leg of an incoming call (see module docstring); ValueError for an unusable request."""
    user = request_user(invite)
    if offers_largesc:
        return Route(Direction.TO_LOCAL, user, plan.local.replace("{user}", user, 1))
    scheme, _, rest = plan.trunk.partition(":")
    return Route(Direction.TO_TRUNK, user, f"{scheme}:{user}@{rest}")


def caller_status(code: int, reason: str) -> tuple[int, str]:
    """The final response for the caller when the outgoing leg failed with ``code`` (see module docstring).

    The agent reports 408 when nothing answered in time; pjsip reports 503 when the
    next hop cannot be reached (TCP refused, no route): both pass as they are.
    """
    if code in (0, 408):
        return 408, "Request Timeout"
    if code in _PASS_THROUGH:
        return code, reason or "Failed"
    if code == 487:  # the outgoing leg was cancelled (our caller hung up): the caller is gone anyway
        return 487, "Request Terminated"
    return 503, "Service Unavailable"
