"""SRTP (RFC 3711) with SDES keys (RFC 4568): crypto lines as pure functions, protect/unprotect over libsrtp.

``parse_crypto`` / ``CryptoAttribute.to_sdp`` read and write the value of an
``a=crypto`` attribute::

    <tag> <suite> inline:<base64 of master key || master salt>[|<lifetime>][|<MKI>:<length>]

Parsing is strict and bounded (ValueError naming the problem): the tag is
1..9 digits, the base64 decodes to exactly the suite's key + salt length.
Unknown suites parse (an offer may list them) but are not ``usable``; so are
lines with an MKI or session parameters, which we do not implement.

``SrtpContext`` wraps two ``pylibsrtp.Session``: one with our key for what
we send (SRTP and SRTCP), one with the peer's key for what we receive.
Unprotect failures raise ``SrtpError`` whose ``failure`` tells an
authentication failure from a replay (libsrtp's distinct status codes,
reported by pylibsrtp as the error text) and from anything else.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import re
from dataclasses import dataclass, field
from typing import Callable

import pylibsrtp

__all__ = ["CryptoAttribute", "OFFERED_SUITES", "SrtpContext", "SrtpError", "SrtpFailure", "SrtpKeys", "Suite",
           "generate_key", "offer_crypto", "parse_crypto"]

MAX_CRYPTO_CHARS = 256  # a valid line with a 44-byte key, lifetime and MKI is well under this
_TAG = re.compile(r"[0-9]{1,9}")
_SUITE = re.compile(r"[A-Za-z0-9_]{1,64}")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_LIFETIME = re.compile(r"(2\^)?([0-9]{1,15})")
_MKI = re.compile(r"([0-9]{1,10}):([0-9]{1,3})")
_MAX_KEY_BYTES = 64  # bound on an unknown suite's key material


class Suite(enum.Enum):
    """Crypto suites libsrtp implements (RFC 4568 6.2, RFC 7714 12): value is the SDP name."""

    AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
    AEAD_AES_128_GCM = "AEAD_AES_128_GCM"
    AEAD_AES_256_GCM = "AEAD_AES_256_GCM"

    @property
    def key_bytes(self) -> int:
        """Master key + master salt length in bytes (30 for AES-CM, 28 / 44 for GCM)."""
        return _LENGTHS[self][0] + _LENGTHS[self][1]

    @property
    def profile(self) -> int:
        """The libsrtp profile number."""
        return _PROFILES[self]


_LENGTHS = {Suite.AES_CM_128_HMAC_SHA1_80: (16, 14), Suite.AES_CM_128_HMAC_SHA1_32: (16, 14),
            Suite.AEAD_AES_128_GCM: (16, 12), Suite.AEAD_AES_256_GCM: (32, 12)}
_PROFILES = {Suite.AES_CM_128_HMAC_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
             Suite.AES_CM_128_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
             Suite.AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
             Suite.AEAD_AES_256_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM}
_BY_NAME = {s.value: s for s in Suite}
# What we offer, best first: the mandatory-to-implement suite (10-byte tag), then GCM (AEAD, 16-byte tag).
# Two lines only: pjsua2's SDP hook sees at most 1024 bytes of SDP.
OFFERED_SUITES = (Suite.AES_CM_128_HMAC_SHA1_80, Suite.AEAD_AES_128_GCM)


@dataclass(frozen=True)
class CryptoAttribute:
    """One ``a=crypto`` line. ``suite`` is the name as written; ``key`` is master key || salt."""

    tag: int
    suite: str
    key: bytes = field(repr=False)
    lifetime: int | None = None  # packets (2^n written as such), not enforced: we do not re-key
    mki: tuple[int, int] | None = None  # (value, length in bytes)
    session_params: tuple[str, ...] = ()

    @property
    def known_suite(self) -> Suite | None:
        return _BY_NAME.get(self.suite)

    @property
    def usable(self) -> bool:
        """Whether we can run SRTP with this line: a suite libsrtp has, no MKI, no session parameters."""
        return self.known_suite is not None and self.mki is None and not self.session_params

    def to_sdp(self) -> str:
        """The attribute value (after ``a=crypto:``)."""
        text = f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode('ascii')}"
        if self.lifetime is not None:
            n = self.lifetime.bit_length() - 1
            text += f"|2^{n}" if self.lifetime == 1 << n else f"|{self.lifetime}"
        if self.mki is not None:
            text += f"|{self.mki[0]}:{self.mki[1]}"
        return " ".join((text, *self.session_params))


def _key_info(info: str, suite: Suite | None) -> tuple[bytes, int | None, tuple[int, int] | None]:
    parts = info.split("|")
    if len(parts) > 3:
        raise ValueError(f"crypto key has {len(parts)} '|' fields; at most key|lifetime|MKI")
    b64, lifetime, mki = parts[0], None, None
    if not _B64.fullmatch(b64) or len(b64) % 4:
        raise ValueError("crypto key is not padded base64")
    try:
        key = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"crypto key is not base64: {exc}") from None
    if suite is not None and len(key) != suite.key_bytes:
        raise ValueError(f"{suite.value} key is {len(key)} bytes, needs {suite.key_bytes} (key || salt)")
    if suite is None and not 1 <= len(key) <= _MAX_KEY_BYTES:
        raise ValueError(f"crypto key of {len(key)} bytes is out of range")
    for extra in parts[1:]:
        if ":" in extra:
            m = _MKI.fullmatch(extra)
            if m is None or mki is not None or not 1 <= int(m.group(2)) <= 128:
                raise ValueError(f"crypto MKI {extra!r} is not '<value>:<length 1..128>' (once)")
            mki = (int(m.group(1)), int(m.group(2)))
            continue
        m = _LIFETIME.fullmatch(extra)
        if m is None or lifetime is not None or mki is not None:
            raise ValueError(f"crypto lifetime {extra!r} is not a number or 2^n before the MKI (once)")
        if m.group(1):
            if int(m.group(2)) > 48:
                raise ValueError(f"crypto lifetime 2^{m.group(2)} exceeds SRTP's 2^48")
            lifetime = 1 << int(m.group(2))
        else:
            lifetime = int(m.group(2))
            if not 1 <= lifetime <= 1 << 48:
                raise ValueError(f"crypto lifetime {lifetime} out of 1..2^48")
    return key, lifetime, mki


def parse_crypto(value: str) -> CryptoAttribute:
    """Parse an ``a=crypto`` value; ValueError naming what is wrong (bounded work: at most 256 characters)."""
    if len(value) > MAX_CRYPTO_CHARS:
        raise ValueError(f"crypto attribute of {len(value)} characters (at most {MAX_CRYPTO_CHARS})")
    fields = value.split()
    if len(fields) < 3:
        raise ValueError("crypto attribute is not '<tag> <suite> inline:<key>'")
    tag, suite_name, params = fields[0], fields[1], fields[2]
    if not _TAG.fullmatch(tag):
        raise ValueError(f"crypto tag {tag!r} is not 1..9 digits")
    if not _SUITE.fullmatch(suite_name):
        raise ValueError(f"crypto suite {suite_name!r} is not a suite name")
    suite = _BY_NAME.get(suite_name)
    if ";" in params and suite is not None:
        raise ValueError("several keys on one crypto line (MKI key lists) are not supported")
    method, sep, info = params.partition(":")
    if method != "inline" or not sep:
        raise ValueError(f"crypto key method {method!r}: only 'inline:' exists (RFC 4568 6.1)")
    if suite is None:  # an unknown suite may have its own key syntax: check the bounds, keep what parses
        info = info.split(";")[0]
    key, lifetime, mki = _key_info(info, suite)
    return CryptoAttribute(int(tag), suite_name, key, lifetime, mki, tuple(fields[3:]))


def generate_key(suite: Suite, random: Callable[[int], bytes] = os.urandom) -> bytes:
    """Fresh master key || salt for ``suite`` from ``random`` (the OS CSPRNG by default)."""
    key = random(suite.key_bytes)
    if len(key) != suite.key_bytes:
        raise ValueError(f"random source gave {len(key)} bytes, {suite.key_bytes} asked")
    return key


def offer_crypto(suites: tuple[Suite, ...] = OFFERED_SUITES,
                 random: Callable[[int], bytes] = os.urandom) -> tuple[CryptoAttribute, ...]:
    """Our offer's crypto lines: one fresh key per suite, tags 1, 2, ..."""
    return tuple(CryptoAttribute(i, s.value, generate_key(s, random)) for i, s in enumerate(suites, 1))


@dataclass(frozen=True)
class SrtpKeys:
    """What SDES agreed: the suite, our key (we protect with it), the peer's (we unprotect with it)."""

    suite: Suite
    local: bytes = field(repr=False)
    remote: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name, key in (("local", self.local), ("remote", self.remote)):
            if len(key) != self.suite.key_bytes:
                raise ValueError(f"{name} {self.suite.value} key is {len(key)} bytes, needs {self.suite.key_bytes}")


class SrtpFailure(enum.Enum):
    """Why an inbound datagram was dropped; the value is its counter name."""

    AUTH_FAILED = "srtp_auth_failed"
    REPLAYED = "srtp_replayed"
    MALFORMED = "srtp_malformed"


_AUTH = pylibsrtp.ERRORS[7]  # "authentication failure" (srtp_err_status_auth_fail)
_REPLAY = (pylibsrtp.ERRORS[9], pylibsrtp.ERRORS[10])  # replay_fail, replay_old


class SrtpError(ValueError):
    """An inbound datagram that failed unprotect; ``failure`` says why."""

    def __init__(self, failure: SrtpFailure, detail: str) -> None:
        super().__init__(f"{failure.value}: {detail}")
        self.failure = failure


def _classify(exc: Exception) -> SrtpError:
    text = str(exc)
    if text == _AUTH:
        return SrtpError(SrtpFailure.AUTH_FAILED, text)
    if text in _REPLAY:
        return SrtpError(SrtpFailure.REPLAYED, text)
    return SrtpError(SrtpFailure.MALFORMED, text)


class SrtpContext:
    """Protect what we send, unprotect what we receive (one call; not thread-safe: one thread owns it)."""

    def __init__(self, keys: SrtpKeys) -> None:
        self.suite = keys.suite
        out = pylibsrtp.Policy(key=keys.local, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                               srtp_profile=keys.suite.profile)
        inbound = pylibsrtp.Policy(key=keys.remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                   srtp_profile=keys.suite.profile)
        self._tx, self._rx = pylibsrtp.Session(out), pylibsrtp.Session(inbound)

    def protect(self, rtp: bytes) -> bytes:
        """SRTP of an RTP packet; pylibsrtp.Error / ValueError when it cannot (the caller drops it)."""
        return self._tx.protect(rtp)

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return self._tx.protect_rtcp(rtcp)

    def unprotect(self, srtp: bytes) -> bytes:
        """The RTP packet inside; SrtpError when it fails authentication, is a replay or is malformed."""
        try:
            return self._rx.unprotect(srtp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise _classify(exc) from None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        try:
            return self._rx.unprotect_rtcp(srtcp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise _classify(exc) from None
