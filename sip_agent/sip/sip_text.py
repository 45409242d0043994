"""The text of SIP messages pjsua2 hands to call callbacks, and what a call reads from it."""

from __future__ import annotations

import pjsua2 as pj


def received_text(event: pj.SipEvent) -> str:
    """Whole text of a received SIP message carried by ``event`` ("" if none)."""
    try:
        if event.type == pj.PJSIP_EVENT_TSX_STATE and event.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
            return str(event.body.tsxState.src.rdata.wholeMsg)
        if event.type == pj.PJSIP_EVENT_RX_MSG:
            return str(event.body.rxMsg.rdata.wholeMsg)
    except (AttributeError, pj.Error):
        pass
    return ""


def is_invite_response(message: str) -> bool:
    """A response (status line) whose CSeq method is INVITE."""
    if not message.startswith("SIP/2.0"):
        return False
    cseq = next((ln for ln in message.splitlines() if ln.lower().startswith("cseq")), "")
    return "INVITE" in cseq
