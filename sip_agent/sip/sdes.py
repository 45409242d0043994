"""SDES (RFC 4568) offer/answer for the LargeSC line under ``--srtp``: pure decisions, no pjsua2.

Policy, as offerer (what the line says):

- OFF: ``RTP/AVP``, no crypto lines.
- OPTIONAL: ``RTP/AVP`` with crypto lines: best-effort SRTP, what many SIP
  UAs do for "optional" (baresip's ``mediaenc=srtp``, Linphone's SDES
  optional): a peer without SRTP ignores the lines and answers plain RTP, a
  peer with it answers one of them and both sides encrypt.
- MANDATORY: ``RTP/SAVP`` with crypto lines; an answer without a matching
  crypto line is refused (the engine does not start).

As answerer we take the first offered line we can run (``CryptoAttribute.usable``):

======================  ===========  ==================  ==================
offer                   OFF          OPTIONAL            MANDATORY
======================  ===========  ==================  ==================
RTP/AVP, no crypto      plain        plain               decline
RTP/AVP + crypto        plain        SRTP (else plain)   SRTP (else decline)
RTP/SAVP + crypto       decline      SRTP (else decline) SRTP (else decline)
======================  ===========  ==================  ==================

"decline": the LargeSC line is answered with port 0 and no media engine
runs for it, so nothing goes there in the clear. Without permission to send
keys (``sdes_allowed``: not TLS signalling and no explicit opt-in) OPTIONAL
behaves as OFF and MANDATORY refuses every exchange (``blocked``).
Other transports (e.g. DTLS-SRTP's ``UDP/TLS/RTP/SAVP``) are declined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
import os

from rtp.srtp import CryptoAttribute, SrtpKeys, Suite, generate_key, offer_crypto
from sip_agent.media.types import SrtpPolicy

PLAIN_PROTOS = ("RTP/AVP", "RTP/AVPF")
SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")


@dataclass(frozen=True)
class SdesAnswer:
    """Our answer's proto and crypto line and the agreed keys; ``declined`` names why the line gets port 0."""

    proto: str
    crypto: CryptoAttribute | None = None
    keys: SrtpKeys | None = None
    declined: str | None = None


def effective(policy: SrtpPolicy, sdes_allowed: bool) -> SrtpPolicy:
    """The policy in force: OPTIONAL is OFF when keys may not be sent (MANDATORY stays, and blocks)."""
    return SrtpPolicy.OFF if policy is SrtpPolicy.OPTIONAL and not sdes_allowed else policy


def blocked(policy: SrtpPolicy, sdes_allowed: bool) -> str | None:
    """Why no call can be made or answered (MANDATORY without permission to send keys), or None."""
    if policy is SrtpPolicy.MANDATORY and not sdes_allowed:
        return ("--srtp mandatory: SRTP keys (SDES) go only over TLS signalling; use --transport tls and a "
                "sips: URI, or allow plain SIP explicitly")
    return None


def offer(policy: SrtpPolicy, random: Callable[[int], bytes] = os.urandom) -> tuple[str, tuple[CryptoAttribute, ...]]:
    """Proto and crypto lines of our LargeSC offer under ``policy`` (module docstring)."""
    if policy is SrtpPolicy.OFF:
        return "RTP/AVP", ()
    return ("RTP/SAVP" if policy is SrtpPolicy.MANDATORY else "RTP/AVP"), offer_crypto(random=random)


def answer(policy: SrtpPolicy, proto: str, crypto: tuple[CryptoAttribute, ...],
           key_for: Callable[[Suite], bytes] = generate_key) -> SdesAnswer:
    """Our answer to an offered LargeSC line with ``proto`` and ``crypto`` (the table above).

    ``key_for`` gives our key for a suite (fresh by default; a call reuses its keys across re-offers).
    """
    secure = proto in SECURE_PROTOS
    if not secure and proto not in PLAIN_PROTOS:
        return SdesAnswer(proto, declined=f"peer offers LargeSC over {proto}; we do RTP/AVP and SDES RTP/SAVP only")
    chosen = next((c for c in crypto if c.usable), None)
    if policy is SrtpPolicy.OFF:
        if secure:
            return SdesAnswer(proto, declined=f"peer offers LargeSC only with SRTP ({proto}) and --srtp is off")
        return SdesAnswer(proto)
    if chosen is None or chosen.known_suite is None:
        if secure or policy is SrtpPolicy.MANDATORY:
            offered = ", ".join(c.suite for c in crypto) or "none"
            return SdesAnswer(proto, declined=(f"no SRTP crypto suite in common on the LargeSC line (offered: "
                                               f"{offered}; we have {', '.join(s.value for s in Suite)})"))
        return SdesAnswer(proto)
    suite = chosen.known_suite
    ours = CryptoAttribute(chosen.tag, suite.value, key_for(suite))
    return SdesAnswer(proto, ours, SrtpKeys(suite, local=ours.key, remote=chosen.key))


def accepted(policy: SrtpPolicy, offered_proto: str, offered: tuple[CryptoAttribute, ...],
             proto: str, crypto: tuple[CryptoAttribute, ...]) -> tuple[SrtpKeys | None, str | None]:
    """Read the peer's answer to our line: (keys or None for plain RTP, why it is refused or None)."""
    if proto != offered_proto:
        return None, f"peer answered the LargeSC line over {proto}, we offered {offered_proto}"
    if not crypto:
        if offered_proto in SECURE_PROTOS or policy is SrtpPolicy.MANDATORY:
            return None, "peer answered the SRTP LargeSC line without a crypto line"
        return None, None
    ours = {c.tag: c for c in offered}
    for c in crypto:
        mine = ours.get(c.tag)
        if mine is not None and c.suite == mine.suite and c.usable and mine.known_suite is not None:
            return SrtpKeys(mine.known_suite, local=mine.key, remote=c.key), None
    return None, "peer answered the LargeSC line with a crypto line we did not offer"
