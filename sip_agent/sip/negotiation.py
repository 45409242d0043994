"""Per-call LargeSC offer/answer bookkeeping: SDP text in, SDP text out, no pjsua2.

``AgentCall`` feeds it every SDP pjsua2 creates (``rewrite``) and every SDP
answer the peer sends to our offers (``peer_answered``); once a LargeSC line
has been settled both ways, ``link`` and ``remote`` say where and how to run
the media engine. The port for our LargeSC line is taken once per call and
reused in every later offer/answer (re-INVITEs, pjsua2's codec-locking
re-offer), so the engine never has to move.

SRTP (``sdes``): our offer's crypto lines and our answer keys are also made
once per call and reused, so re-offers do not re-key a running engine. The
agreed keys ride in ``LargeScLink.srtp``. An exchange that the SRTP policy
refuses settles nothing (no engine, nothing sent on that line): as answerer
the LargeSC line is declined with port 0; as offerer the answer is ignored
and ``refused`` says why.
"""

from __future__ import annotations

from typing import Callable

from largesc_codec.wire.offer_answer import LargeScParams
from rtp.srtp import CryptoAttribute, Suite, generate_key
from sip_agent.media.engine import allocate_rtp_port
from sip_agent.media.types import LargeScLink, SrtpPolicy
from sip_agent.sip import sdes, sdp_munge


class LargeScNegotiation:
    """What this call offered/accepted for LargeSC (see module docstring).

    ``srtp``: the ``--srtp`` policy; ``sdes_allowed``: whether SDES keys may go
    into this call's SDP (TLS signalling, or the user allowed plain SIP).
    """

    def __init__(self, host: str, params: LargeScParams,
                 allocate_port: Callable[[str], int] = allocate_rtp_port, latch: bool = False,
                 srtp: SrtpPolicy = SrtpPolicy.OFF, sdes_allowed: bool = True) -> None:
        self.host, self.params, self._allocate, self.latch = host, params, allocate_port, latch
        self.policy = sdes.effective(srtp, sdes_allowed)
        self.blocked = sdes.blocked(srtp, sdes_allowed)  # no call at all (caller fails it with this message)
        self.refused: str | None = None  # why the last exchange settled nothing (SRTP policy)
        self._offer: tuple[str, tuple[CryptoAttribute, ...]] | None = None  # proto, crypto lines: once per call
        self._answer_keys: dict[Suite, bytes] = {}
        self.port: int | None = None
        self.offered: tuple[int, int] | None = None  # (m= index, payload type) of our last LargeSC offer
        self.remote: sdp_munge.LargeScMedia | None = None  # the peer's LargeSC line
        self.link: LargeScLink | None = None

    @property
    def settled(self) -> bool:
        """True once both sides agreed on LargeSC (the engine can start)."""
        return self.link is not None and self.remote is not None and self.port is not None

    def _port(self) -> int:
        if self.port is None:
            self.port = self._allocate(self.host)
        return self.port

    def rewrite(self, local: str, remote: str) -> tuple[str | None, str | None]:
        """Our version of the SDP pjsua2 created: (new SDP or None to keep it, a note for the user or None).

        ``remote`` is the peer's offer when pjsua2 is answering, "" when it offers.
        ValueError/OSError propagate (the caller keeps pjsua2's SDP then).
        """
        if not local:
            return None, "pjsua2 passed no SDP text (body over 1024 bytes?): LargeSC left out of this exchange"
        if remote:
            return self._answer(local, remote)
        if sdp_munge.audio_lines(local) < 2:
            return None, None  # pjsua2 provisioned one audio medium only: nothing to turn into LargeSC
        if self.blocked is not None:
            raise ValueError(self.blocked)
        if self._offer is None:
            self._offer = sdes.offer(self.policy)
        proto, crypto = self._offer
        text, pt, index = sdp_munge.offer_largesc(local, self.host, self._port(), self.params, proto, crypto)
        self.offered = (index, pt)
        return text, None

    def _key_for(self, suite: Suite) -> bytes:
        return self._answer_keys.setdefault(suite, generate_key(suite))

    def _decline(self, local: str, offer: sdp_munge.LargeScMedia, why: str) -> tuple[str | None, str | None]:
        self.remote = self.link = None
        self.refused = why
        return sdp_munge.decline_largesc(local, offer), f"LargeSC line declined: {why}"

    def _answer(self, local: str, remote: str) -> tuple[str | None, str | None]:
        offer = sdp_munge.find_largesc(remote)
        if offer is None:
            return None, None
        if self.blocked is not None:
            return self._decline(local, offer, self.blocked)
        security = sdes.answer(self.policy, offer.proto, offer.crypto, self._key_for)
        if security.declined is not None:
            return self._decline(local, offer, security.declined)
        done = sdp_munge.answer_largesc(local, offer, self.host, self._port(), self.params, security.crypto)
        if done is None:
            return None, (f"peer offered LargeSC version {offer.params.version}; we speak "
                          f"{self.params.version}: using the fallback codec")
        text, answered = done
        self.remote, self.refused = offer, None
        self.link = LargeScLink(offer.payload_type, send=offer.params, receive=answered, latch=self.latch,
                                srtp=security.keys)
        clamped = offer.params.clamped
        return text, (f"peer's LargeSC fmtp clamped to what the codec can use: {', '.join(clamped)}" if clamped else None)

    def peer_answered(self, answer: str) -> str | None:
        """Read the peer's answer to our last offer: LargeSC accepted on the same line and payload type?

        Returns a note for the user when the answer accepted LargeSC but the SRTP policy refuses it.
        """
        if self.offered is None or self._offer is None:
            return None
        index, pt = self.offered
        accepted = sdp_munge.accepted_largesc(answer, pt, index)
        if accepted is None:
            return None
        keys, why = sdes.accepted(self.policy, *self._offer, accepted.proto, accepted.crypto)
        if why is not None:
            self.remote = self.link = None
            self.refused = why
            return f"LargeSC not used: {why}"
        self.remote, self.refused = accepted, None
        self.link = LargeScLink(pt, send=accepted.params, receive=self.params, latch=self.latch, srtp=keys)
        return None
