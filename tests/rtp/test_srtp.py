"""SDES crypto lines (RFC 4568) and SRTP/SRTCP protect/unprotect over libsrtp (issue 14 item 3)."""

from __future__ import annotations

import base64

import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp import packet, rtcp
from rtp.packet import RtpPacket
from rtp.srtp import (MAX_CRYPTO_CHARS, OFFERED_SUITES, CryptoAttribute, SrtpContext, SrtpError, SrtpFailure,
                      SrtpKeys, Suite, generate_key, offer_crypto, parse_crypto)

KEY30 = bytes(range(30))


def test_suite_lengths_match_libsrtp() -> None:
    for suite in Suite:
        lib = pylibsrtp.lib
        expected = lib.srtp_profile_get_master_key_length(suite.profile) + \
            lib.srtp_profile_get_master_salt_length(suite.profile)
        assert suite.key_bytes == expected


def test_rfc4568_example_parses() -> None:
    # RFC 4568 section 9.1's example line
    a = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32")
    assert a.tag == 1 and a.known_suite is Suite.AES_CM_128_HMAC_SHA1_80 and len(a.key) == 30
    assert a.lifetime == 1 << 20 and a.mki == (1, 32) and not a.usable  # MKI: parsed, not implemented
    assert a.to_sdp() == "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"


def test_unknown_suite_parses_but_is_not_usable() -> None:
    a = parse_crypto("3 F8_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode())
    assert a.known_suite is None and not a.usable


def test_session_parameters_make_a_line_unusable() -> None:
    a = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode() + " UNENCRYPTED_SRTP")
    assert a.session_params == ("UNENCRYPTED_SRTP",) and not a.usable


@given(st.integers(1, 999_999_999), st.sampled_from(list(Suite)), st.data(),
       st.one_of(st.none(), st.integers(1, 48).map(lambda n: 1 << n), st.integers(1, 1 << 48)))
def test_crypto_line_round_trip(tag: int, suite: Suite, data: st.DataObject, lifetime: int | None) -> None:
    key = data.draw(st.binary(min_size=suite.key_bytes, max_size=suite.key_bytes))
    a = CryptoAttribute(tag, suite.value, key, lifetime)
    assert parse_crypto(a.to_sdp()) == a


@pytest.mark.parametrize("value, problem", [
    ("", "not '<tag>"),
    ("1 AES_CM_128_HMAC_SHA1_80", "not '<tag>"),
    ("x AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode(), "tag"),
    ("1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode(), "tag"),
    ("1 AES-CM inline:" + base64.b64encode(KEY30).decode(), "suite"),
    ("1 AES_CM_128_HMAC_SHA1_80 uri:" + base64.b64encode(KEY30).decode(), "method"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30[:29]).decode(), "29 bytes, needs 30"),
    ("1 AEAD_AES_128_GCM inline:" + base64.b64encode(KEY30).decode(), "30 bytes, needs 28"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!" + base64.b64encode(KEY30).decode(), "base64"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode()[:-1], "base64"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode() + "|2^49", "2^48"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode() + "|0", "lifetime"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode() + "|1:0", "MKI"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode() + "|1:4|2^20", "lifetime"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode() + "|1|2|3", "fields"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:a;inline:b", "several keys"),
    ("1 X inline:" + "A" * 300, "characters"),
])
def test_malformed_crypto_lines_are_rejected(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("^", r"\^").replace("(", r"\(").replace("|", r"\|")):
        parse_crypto(value)


@settings(max_examples=300)
@given(st.text(max_size=MAX_CRYPTO_CHARS + 20))
def test_parse_crypto_raises_only_value_error(value: str) -> None:
    try:
        a = parse_crypto(value)
    except ValueError:
        return
    assert a.known_suite is None or len(a.key) == a.known_suite.key_bytes


def test_offer_keys_are_fresh_and_sized() -> None:
    first, second = offer_crypto(), offer_crypto()
    assert [a.known_suite for a in first] == list(OFFERED_SUITES) and [a.tag for a in first] == [1, 2]
    assert all(a.usable and len(a.key) == a.known_suite.key_bytes for a in first if a.known_suite)
    assert first[0].key != second[0].key
    with pytest.raises(ValueError, match="random source"):
        generate_key(Suite.AEAD_AES_128_GCM, lambda n: b"short")


def test_keys_repr_does_not_show_the_keys() -> None:
    keys = SrtpKeys(Suite.AES_CM_128_HMAC_SHA1_80, KEY30, KEY30[::-1])
    assert KEY30.hex() not in repr(keys) and repr(KEY30) not in repr(keys)
    with pytest.raises(ValueError, match="needs 30"):
        SrtpKeys(Suite.AES_CM_128_HMAC_SHA1_80, KEY30[:10], KEY30)


def _pair(suite: Suite) -> tuple[SrtpContext, SrtpContext]:
    a, b = generate_key(suite), generate_key(suite)
    return SrtpContext(SrtpKeys(suite, a, b)), SrtpContext(SrtpKeys(suite, b, a))


def _rtp(seq: int, payload: bytes = b"LargeSC payload bytes") -> bytes:
    return packet.serialize(RtpPacket(96, seq, seq * 1920, 0x1234, payload))


@pytest.mark.parametrize("suite", list(Suite))
def test_protect_unprotect_round_trip(suite: Suite) -> None:
    alice, bob = _pair(suite)
    for seq in range(5):
        plain = _rtp(seq)
        wire = alice.protect(plain)
        assert wire[:12] == plain[:12] and wire[12:] != plain[12:] and b"LargeSC" not in wire
        assert bob.unprotect(wire) == plain
    report = rtcp.serialize_compound([rtcp.ReceiverReport(0x1234, ())])
    srtcp = bob.protect_rtcp(report)
    assert srtcp != report and alice.unprotect_rtcp(srtcp) == report


def test_tampered_packets_fail_authentication() -> None:
    alice, bob = _pair(Suite.AES_CM_128_HMAC_SHA1_80)
    wire = bytearray(alice.protect(_rtp(7)))
    wire[20] ^= 1
    with pytest.raises(SrtpError) as info:
        bob.unprotect(bytes(wire))
    assert info.value.failure is SrtpFailure.AUTH_FAILED
    good = alice.protect(_rtp(8))
    assert bob.unprotect(good) == _rtp(8)  # the failed one left no trace


def test_replays_are_refused_and_told_apart() -> None:
    alice, bob = _pair(Suite.AEAD_AES_128_GCM)
    wire = alice.protect(_rtp(1))
    bob.unprotect(wire)
    with pytest.raises(SrtpError) as info:
        bob.unprotect(wire)
    assert info.value.failure is SrtpFailure.REPLAYED
    srtcp = alice.protect_rtcp(rtcp.serialize_compound([rtcp.ReceiverReport(0x1234, ())]))
    bob.unprotect_rtcp(srtcp)
    with pytest.raises(SrtpError) as info:
        bob.unprotect_rtcp(srtcp)
    assert info.value.failure is SrtpFailure.REPLAYED


def test_wrong_key_and_garbage_are_refused() -> None:
    alice, _ = _pair(Suite.AES_CM_128_HMAC_SHA1_80)
    _, stranger = _pair(Suite.AES_CM_128_HMAC_SHA1_80)
    with pytest.raises(SrtpError) as info:
        stranger.unprotect(alice.protect(_rtp(1)))
    assert info.value.failure is SrtpFailure.AUTH_FAILED
    for junk in (b"", b"\x80", bytes(2000)):
        with pytest.raises(SrtpError) as info:
            stranger.unprotect(junk)
        assert info.value.failure is SrtpFailure.MALFORMED
