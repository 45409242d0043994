"""SDES on the LargeSC line: the --srtp policy matrix and the declined-SAVP defect (issue 14 item 3), no pjsua2."""

from __future__ import annotations

import base64

import pytest

from largesc_codec.wire.offer_answer import LargeScParams
from rtp import sdp
from rtp.srtp import Suite
from sip_agent.media.types import SrtpPolicy
from sip_agent.sip import sdp_munge
from sip_agent.sip.negotiation import LargeScNegotiation

from .test_sdp_munge import PJSUA_OFFER

pytestmark = pytest.mark.sip
OFF, OPT, MAND = SrtpPolicy.OFF, SrtpPolicy.OPTIONAL, SrtpPolicy.MANDATORY
PJSUA_LOCAL = PJSUA_OFFER.replace("4000", "5000").replace("4002", "5002")  # pjsua2's own answer, before our rewrite
KEY30 = base64.b64encode(bytes(range(30))).decode()


def neg(policy: SrtpPolicy, port: int = 40000, sdes_allowed: bool = True) -> LargeScNegotiation:
    return LargeScNegotiation("127.0.0.1", LargeScParams(), lambda host: port, srtp=policy, sdes_allowed=sdes_allowed)


def largesc_line(text: str) -> sdp.Media:
    return sdp.parse(text).media[1]


def peer_offer(proto: str, crypto: list[str]) -> str:
    """Another agent's offer with its LargeSC line on ``proto`` and these crypto lines."""
    text, _ = neg(OFF, 44000).rewrite(PJSUA_OFFER, "")
    assert text is not None
    lines = "".join(f"a=crypto:{c}\r\n" for c in crypto)
    return text.replace("m=audio 44000 RTP/AVP", f"m=audio 44000 {proto}").replace("a=sendrecv\r\n", lines + "a=sendrecv\r\n")


@pytest.mark.parametrize("policy, proto, crypto", [
    (OFF, "RTP/AVP", False), (OPT, "RTP/AVP", True), (MAND, "RTP/SAVP", True)])
def test_offer_follows_the_policy(policy: SrtpPolicy, proto: str, crypto: bool) -> None:
    a = neg(policy)
    text, _ = a.rewrite(PJSUA_OFFER, "")
    assert text is not None
    line = largesc_line(text)
    assert line.proto == proto and bool(line.values("crypto")) == crypto
    assert sdp.parse(text).media[0] == sdp.parse(PJSUA_OFFER).media[0]  # pjsua2's line is not ours to change
    again, _ = a.rewrite(PJSUA_OFFER, "")
    assert again == text  # the re-offer keeps the keys: a running engine is never re-keyed


# offerer policy, answerer policy -> SRTP suite agreed (None: plain RTP), or "declined"
MATRIX = {
    (OFF, OFF): None, (OFF, OPT): None, (OFF, MAND): "declined",
    (OPT, OFF): None, (OPT, OPT): Suite.AES_CM_128_HMAC_SHA1_80, (OPT, MAND): Suite.AES_CM_128_HMAC_SHA1_80,
    (MAND, OFF): "declined", (MAND, OPT): Suite.AES_CM_128_HMAC_SHA1_80, (MAND, MAND): Suite.AES_CM_128_HMAC_SHA1_80,
}


@pytest.mark.parametrize("ours, theirs", list(MATRIX))
def test_offer_answer_matrix(ours: SrtpPolicy, theirs: SrtpPolicy) -> None:
    a, b = neg(ours, 40000), neg(theirs, 42000)
    offer, _ = a.rewrite(PJSUA_OFFER, "")
    assert offer is not None
    answer, note = b.rewrite(PJSUA_LOCAL, offer)
    assert answer is not None
    note_a = a.peer_answered(answer)
    expected = MATRIX[(ours, theirs)]
    if expected == "declined":
        assert largesc_line(answer).port == 0 and note is not None and "declined" in note
        assert not a.settled and not b.settled and a.link is None and b.link is None
        return
    assert a.settled and b.settled and note is None and note_a is None
    assert a.link is not None and b.link is not None
    assert largesc_line(answer).proto == largesc_line(offer).proto
    if expected is None:
        assert a.link.srtp is None and b.link.srtp is None and not largesc_line(answer).values("crypto")
        return
    assert a.link.srtp is not None and b.link.srtp is not None
    assert a.link.srtp.suite is b.link.srtp.suite is expected
    assert a.link.srtp.local == b.link.srtp.remote and a.link.srtp.remote == b.link.srtp.local
    assert a.link.srtp.local != a.link.srtp.remote  # one key per direction


@pytest.mark.parametrize("policy", [OFF, OPT, MAND])
@pytest.mark.parametrize("proto, crypto, srtp", [
    ("RTP/AVP", [], False),
    ("RTP/AVP", [f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}"], True),
    ("RTP/SAVP", [f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}"], True),
    ("RTP/SAVP", ["1 AES_256_CM_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(46)).decode()], False),  # we lack it
])
def test_answer_matrix(policy: SrtpPolicy, proto: str, crypto: list[str], srtp: bool) -> None:
    b = neg(policy, 42000)
    answer, note = b.rewrite(PJSUA_LOCAL, peer_offer(proto, crypto))
    assert answer is not None
    secure = proto == "RTP/SAVP"
    declined = (secure and (policy is OFF or not srtp)) or (policy is MAND and not srtp)
    line = largesc_line(answer)
    if declined:
        assert line.port == 0 and not b.settled and b.link is None and note is not None
        return
    assert b.settled and b.link is not None and line.port == 42000 and line.proto == proto
    agreed = srtp and policy is not OFF
    assert (b.link.srtp is not None) == agreed == bool(line.values("crypto"))
    if agreed:
        assert line.values("crypto")[0].startswith("1 AES_CM_128_HMAC_SHA1_32 inline:")


def test_the_first_usable_offered_suite_wins_and_odd_lines_are_skipped() -> None:
    b = neg(OPT)
    offer = peer_offer("RTP/SAVP", ["1 AES_CM_128_HMAC_SHA1_80 inline:bad!", f"2 F8_128_HMAC_SHA1_80 inline:{KEY30}",
                                    f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20|1:4",
                                    f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} KDR=1",
                                    "5 AEAD_AES_128_GCM inline:" + base64.b64encode(bytes(28)).decode(),
                                    f"6 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"])
    answer, _ = b.rewrite(PJSUA_LOCAL, offer)
    assert b.link is not None and b.link.srtp is not None and b.link.srtp.suite is Suite.AEAD_AES_128_GCM
    assert answer is not None and [v.split()[0] for v in largesc_line(answer).values("crypto")] == ["5"]


def test_defect_savp_offer_we_cannot_meet_is_declined_and_starts_nothing() -> None:
    # issue 14: "m=audio P RTP/SAVP 96 with a=crypto is declined (port 0), yet the engine sends plaintext to P"
    for policy in (OFF, OPT, MAND):
        b = neg(policy, 42000)
        offer = peer_offer("RTP/SAVP", ["1 AES_256_CM_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(46)).decode()])
        assert sdp_munge.find_largesc(offer) is not None
        answer, note = b.rewrite(PJSUA_LOCAL, offer)
        assert answer is not None and largesc_line(answer).port == 0 and note is not None
        assert largesc_line(answer).connection is not None  # pjsip asserts "Invalid local SDP" without a c= line
        assert largesc_line(answer).proto == "RTP/SAVP"
        assert not b.settled and b.link is None and b.remote is None  # the call never starts the engine


def test_dtls_srtp_lines_are_declined() -> None:
    b = neg(OPT)
    answer, note = b.rewrite(PJSUA_LOCAL, peer_offer("UDP/TLS/RTP/SAVP", []))
    assert answer is not None and largesc_line(answer).port == 0 and not b.settled
    assert note is not None and "UDP/TLS/RTP/SAVP" in note


def _crypto_lines(text: str, lines: list[str]) -> str:
    """``text`` with its crypto lines replaced by ``lines``."""
    kept = [line for line in text.split("\r\n") if line and not line.startswith("a=crypto:")]
    at = next(i for i, line in enumerate(kept) if line in ("a=sendrecv", "a=recvonly", "a=sendonly"))
    return "\r\n".join(kept[:at] + [f"a=crypto:{c}" for c in lines] + kept[at:]) + "\r\n"


GCM28 = base64.b64encode(bytes(28)).decode()


@pytest.mark.parametrize("edit, why", [
    (lambda t: t.replace("RTP/SAVP", "RTP/AVP"), "over RTP/AVP"),
    (lambda t: _crypto_lines(t, []), "without a crypto line"),
    (lambda t: _crypto_lines(t, [f"7 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"]), "did not offer"),  # no such tag
    (lambda t: _crypto_lines(t, [f"1 AEAD_AES_128_GCM inline:{GCM28}"]), "did not offer"),  # tag 1 was AES-CM
])
def test_offerer_refuses_answers_that_do_not_meet_its_offer(edit, why: str) -> None:  # type: ignore[no-untyped-def]
    a, b = neg(MAND, 40000), neg(MAND, 42000)
    offer, _ = a.rewrite(PJSUA_OFFER, "")
    assert offer is not None
    answer, _ = b.rewrite(PJSUA_LOCAL, offer)
    assert answer is not None and b.settled
    note = a.peer_answered(edit(answer))
    assert note is not None and why in note and not a.settled and a.link is None


def test_plain_offer_answered_without_crypto_is_fine_for_optional() -> None:
    a = neg(OPT)
    offer, _ = a.rewrite(PJSUA_OFFER, "")
    assert offer is not None
    answer, _ = neg(OFF, 42000).rewrite(PJSUA_LOCAL, offer)
    assert answer is not None and a.peer_answered(answer) is None and a.settled
    assert a.link is not None and a.link.srtp is None


def test_without_permission_to_send_keys() -> None:
    a = neg(OPT, sdes_allowed=False)  # optional on plain SIP: behaves as off
    offer, _ = a.rewrite(PJSUA_OFFER, "")
    assert offer is not None and not largesc_line(offer).values("crypto") and a.blocked is None
    m = neg(MAND, sdes_allowed=False)
    assert m.blocked is not None and "TLS" in m.blocked
    with pytest.raises(ValueError, match="TLS"):
        m.rewrite(PJSUA_OFFER, "")
    answer, note = m.rewrite(PJSUA_LOCAL, peer_offer("RTP/SAVP", [f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"]))
    assert answer is not None and largesc_line(answer).port == 0 and not m.settled
    assert note is not None and "TLS" in note


def test_find_largesc_reads_proto_and_at_most_16_crypto_lines() -> None:
    many = [f"{i} AES_CM_128_HMAC_SHA1_80 inline:{KEY30}" for i in range(1, 40)]
    found = sdp_munge.find_largesc(peer_offer("RTP/SAVP", many))
    assert found is not None and found.proto == "RTP/SAVP" and [c.tag for c in found.crypto] == list(range(1, 17))


def test_crypto_lines_round_trip_through_our_line() -> None:
    a = neg(MAND)
    text, _ = a.rewrite(PJSUA_OFFER, "")
    assert text is not None
    found = sdp_munge.find_largesc(text)
    assert found is not None and a._offer is not None and found.crypto == a._offer[1]
