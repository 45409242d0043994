"""What a finished call reports: status code, a human message with a likely fix, codec and media figures."""

from __future__ import annotations

from dataclasses import dataclass

from sip_agent.media.types import MediaStats

# Final responses a caller meets, with what usually fixes them.
STATUS_HINTS = {
    400: "the peer could not parse our request",
    401: "the peer wants authentication: give --user and --password",
    403: "the peer refused the call (forbidden): check credentials and the target user",
    404: "no such user at that address: check the user part of the URI",
    407: "a proxy wants authentication: give --user and --password",
    408: "no final answer in time: is the peer running at that address, port and transport?",
    415: "the peer does not take SDP bodies",
    480: "the user is not reachable right now (not registered?)",
    481: "the peer no longer knows this call",
    486: "the peer is busy",
    487: "the call was cancelled before it was answered",
    488: "no common codec: the peer accepted none of LargeSC, PCMU, PCMA, G722",
    500: "the peer failed internally",
    503: "transport or service failure: check the address, port and transport (udp/tcp) and that the peer is up",
    603: "the peer declined the call",
}


def hint_for(code: int) -> str:
    """The fix most likely to help with final status ``code`` (class-level fallback)."""
    if code in STATUS_HINTS:
        return STATUS_HINTS[code]
    return {4: "the request was refused", 5: "the peer or a proxy failed", 6: "the call was refused everywhere"}.get(
        code // 100, "see the status code"
    )


@dataclass(frozen=True)
class CallResult:
    """Outcome of one call.

    ``connected``: the call reached the confirmed state. ``status_code`` /
    ``reason``: the last SIP status pjsua2 reported (or the one we chose on a
    timeout). ``message``: one line for a human, naming the problem and the
    fix on failure. ``codec``: ``LargeSC/24000`` or pjsua2's codec name.
    ``bitrate_bps``: the nominal rate (LargeSC: the peer's maxbps).
    """

    peer: str
    outgoing: bool
    connected: bool
    status_code: int
    reason: str
    message: str
    codec: str = ""
    bitrate_bps: float = 0.0
    duration_s: float = 0.0
    media: MediaStats | None = None
    error: str | None = None  # something that went wrong on our side (engine, files), if any

    @property
    def ok(self) -> bool:
        """Connected and nothing went wrong on our side."""
        return self.connected and self.error is None

    def lines(self) -> list[str]:
        """The end-of-call report printed by the command line."""
        out = [self.message]
        if self.codec:
            out.append(f"codec: {self.codec}, nominal {self.bitrate_bps:.0f} bit/s, connected {self.duration_s:.1f} s")
        if self.media is not None:
            out.append("media: " + self.media.summary())
        if self.error:
            out.append(f"error: {self.error}")
        return out


def failure_message(peer: str, outgoing: bool, code: int, reason: str) -> str:
    """``call to X failed: 486 Busy Here (the peer is busy)``."""
    what = f"call to {peer}" if outgoing else f"call from {peer}"
    return f"{what} failed: {code} {reason} ({hint_for(code)})"
