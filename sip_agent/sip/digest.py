"""HTTP digest for SIP (RFC 3261 section 22, RFC 7616 / RFC 8760): sans-IO, time comes in as ``now_s``.

Server side only (pjsua2 answers challenges itself as a client, but has no
server side for incoming calls):

* ``challenges`` builds the ``WWW-Authenticate`` values, SHA-256 first, then
  MD5 (RFC 8760 section 2.4: the client takes the first it supports), both
  ``qop="auth"``. Some clients give up at the first algorithm they do not
  know instead of reading on (baresip 1.0's libre answers ENOSYS to a
  SHA-256 challenge), so the list can be narrowed to MD5.
* ``parse_authorization`` reads one ``Authorization`` value (ValueError on
  anything malformed, nothing else escapes); its cost is bounded by
  ``MAX_HEADER`` characters and ``MAX_PARAMS`` parameters.
* ``response`` computes ``request-digest`` (RFC 7616 section 3.4.1, qop=auth).
* ``Nonces`` issues nonces that carry their own birth time and an HMAC under a
  per-process secret, so checking one needs no table; the only table (the
  last nonce-count per nonce, against replays) is keyed by nonces that passed
  the HMAC and is capped at ``NONCE_TABLE`` entries (the oldest go first,
  and a nonce born before the newest one forgotten that way is answered as
  stale: the client retries with a fresh one, and a replay cannot slip in).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["OFFERED", "Algorithm", "Authorization", "NonceState", "Nonces", "challenges", "parse_authorization", "response"]

MAX_HEADER = 4096
MAX_PARAMS = 16
NONCE_TABLE = 4096
NONCE_LIFETIME_S = 300.0


class Algorithm(enum.Enum):
    SHA256 = "SHA-256"
    MD5 = "MD5"

    def hash(self, text: str) -> str:
        name = "sha256" if self is Algorithm.SHA256 else "md5"
        return hashlib.new(name, text.encode("utf-8")).hexdigest()


OFFERED = (Algorithm.SHA256, Algorithm.MD5)  # RFC 8760: most preferred first


@dataclass(frozen=True)
class Authorization:
    """One parsed ``Authorization: Digest ...`` value (the parameters a qop=auth response must carry)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm
    qop: str | None
    nc: str | None
    cnonce: str | None
    opaque: str | None = None


def response(alg: Algorithm, username: str, realm: str, password: str, method: str, uri: str, nonce: str,
             nc: str | None, cnonce: str | None, qop: str | None) -> str:
    """``request-digest`` in lower-case hex: KD(H(A1), nonce:nc:cnonce:qop:H(A2)); RFC 2069 form without qop."""
    ha1 = alg.hash(f"{username}:{realm}:{password}")
    ha2 = alg.hash(f"{method}:{uri}")
    if qop is None:
        return alg.hash(f"{ha1}:{nonce}:{ha2}")
    return alg.hash(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def challenges(realm: str, nonce: str, stale: bool = False,
               algorithms: tuple[Algorithm, ...] = OFFERED) -> list[str]:
    """The ``WWW-Authenticate`` values for a 401, one per algorithm in the order given (SHA-256 first by default)."""
    extra = ", stale=true" if stale else ""
    return [f'Digest realm="{realm}", nonce="{nonce}", algorithm={alg.value}, qop="auth"{extra}'
            for alg in algorithms]


# auth-param: token "=" ( token / quoted-string ), comma separated (RFC 7235 section 2.1)
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]+)\s*(?:,|$)')
_HEX32 = re.compile(r"[0-9a-f]{32}|[0-9a-f]{64}")
_NC = re.compile(r"[0-9a-fA-F]{8}")


def _params(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _PARAM.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"Authorization: cannot read the parameters at {text[pos:pos + 20]!r}")
        name, value = m[1].lower(), m[2]
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name in found:
            raise ValueError(f"Authorization: parameter {name} given twice")
        found[name] = value
        if len(found) > MAX_PARAMS:
            raise ValueError(f"Authorization: more than {MAX_PARAMS} parameters")
        pos = m.end()
    return found


def parse_authorization(value: str) -> Authorization:
    """One ``Authorization`` header value; ValueError naming what is wrong (see module docstring)."""
    if len(value) > MAX_HEADER:
        raise ValueError(f"Authorization: longer than {MAX_HEADER} characters")
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"Authorization: scheme {scheme[:20]!r} is not Digest")
    p = _params(rest)
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
    if missing:
        raise ValueError(f"Authorization: no {', '.join(missing)}")
    try:
        alg = Algorithm(p.get("algorithm", "MD5").upper().replace("SHA256", "SHA-256"))
    except ValueError:
        raise ValueError(f"Authorization: algorithm {p['algorithm'][:20]!r} is not SHA-256 or MD5") from None
    qop = p.get("qop")
    if qop is not None and (qop != "auth" or not _NC.fullmatch(p.get("nc", "")) or not p.get("cnonce")):
        raise ValueError("Authorization: qop must be auth, with an 8-hex-digit nc and a cnonce")
    if not _HEX32.fullmatch(p["response"].lower()):
        raise ValueError("Authorization: response is not a hex digest")
    return Authorization(p["username"], p["realm"], p["nonce"], p["uri"], p["response"].lower(), alg, qop,
                         p.get("nc"), p.get("cnonce"), p.get("opaque"))


class NonceState(enum.Enum):
    VALID = "valid"
    STALE = "stale"  # ours, but too old or its nonce-count already used: challenge again with stale=true
    FOREIGN = "foreign"  # not made by this process (or forged): challenge again


class Nonces:
    """Nonces ``<birth ms hex>.<HMAC-SHA256 prefix>`` under ``secret``; replay check on the nonce-count."""

    def __init__(self, secret: bytes, realm: str, lifetime_s: float = NONCE_LIFETIME_S,
                 table: int = NONCE_TABLE) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must have at least 16 bytes")
        self._secret, self._realm = secret, realm
        self.lifetime_s, self._cap = lifetime_s, table
        self._counts: OrderedDict[str, int] = OrderedDict()  # nonce -> highest nonce-count accepted
        self._forgotten = -1.0  # latest birth time among nonces evicted from the table

    def _mac(self, stamp: str) -> str:
        return hmac.new(self._secret, f"{stamp}:{self._realm}".encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, now_s: float) -> str:
        stamp = format(int(now_s * 1000), "x")
        return f"{stamp}.{self._mac(stamp)}"

    def state(self, nonce: str, now_s: float) -> NonceState:
        """Whether ``nonce`` is ours and young enough (no side effect)."""
        stamp, dot, mac = nonce.partition(".")
        if not nonce.isascii() or not dot or not 0 < len(stamp) <= 16 or not hmac.compare_digest(mac, self._mac(stamp)):
            return NonceState.FOREIGN
        born = int(stamp, 16) / 1000.0
        if born > now_s + 1.0:
            return NonceState.FOREIGN
        return NonceState.STALE if now_s - born > self.lifetime_s else NonceState.VALID

    def use(self, nonce: str, nc: str | None, now_s: float) -> NonceState:
        """Check ``nonce`` and record its nonce-count ``nc`` (hex); a count not above the last one is stale.

        Call only after the response itself was verified, so the table holds nothing an attacker chose alone.
        """
        state = self.state(nonce, now_s)
        if state is not NonceState.VALID:
            return state
        count = int(nc, 16) if nc is not None else 1
        if nonce in self._counts:
            if count <= self._counts[nonce]:
                return NonceState.STALE
            self._counts.move_to_end(nonce)
        elif _born(nonce) <= self._forgotten:
            return NonceState.STALE  # it may have been used and evicted: a replay must not pass
        self._counts[nonce] = count
        while len(self._counts) > self._cap:
            old, _ = self._counts.popitem(last=False)
            self._forgotten = max(self._forgotten, _born(old))
        return NonceState.VALID


def _born(nonce: str) -> float:
    return int(nonce.partition(".")[0], 16) / 1000.0
