"""Who may call ``answer`` / ``gateway``: a source allow-list, then digest (digest.py). Pure: no I/O, ``now_s`` in.

``CallerGate.decide(source, invite, now_s)`` looks at a new INVITE's source
address and text and returns an ``Admission``: admit, or the final response
to send (the agent sends it; sip/agent.py)::

    source not in --allow            -> 403 Forbidden (before anything else)
    no credentials configured        -> admit
    no Authorization for our realm   -> 401 + WWW-Authenticate (SHA-256, MD5), fresh nonce
    Authorization unreadable         -> 400 Bad Request
    unknown user, wrong uri/response -> 403 Forbidden (the same words for each: no user enumeration)
    an algorithm we did not offer    -> 403 (no downgrade to MD5 when only SHA-256 is offered)
    nonce not ours                   -> 401, fresh nonce
    nonce too old or replayed        -> 401, fresh nonce, stale=true
    otherwise                        -> admit (as that user)

Only the initial INVITE is checked: requests inside the dialog (ACK, BYE,
re-INVITE) belong to a call already admitted; use TLS so nobody on the path
can take that dialog over.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Mapping, Union

from sip_agent.sip.digest import (OFFERED, Algorithm, Authorization, NonceState, Nonces, challenges,
                                  parse_authorization, response)

__all__ = ["Admission", "CallerGate", "Network", "Verdict", "header_values", "parse_credentials", "source_host"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
_MAX_AUTH_HEADERS = 4  # more Authorization lines than this are not read (bounded work per INVITE)
_MAX_HEAD = 65536


class Verdict(enum.Enum):
    ADMIT = "admit"
    CHALLENGE = "challenge"  # 401
    REFUSE = "refuse"  # 403
    BAD = "bad"  # 400


@dataclass(frozen=True)
class Admission:
    """What to do with one INVITE: ``code`` 0 to admit; else the response, its headers and why (for our log)."""

    verdict: Verdict
    code: int = 0
    reason: str = ""
    why: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    user: str | None = None


ADMIT = Admission(Verdict.ADMIT)


def source_host(source: str) -> str:
    """The address of pjsip's ``srcAddress`` (``1.2.3.4:5060`` or ``[::1]:5060``), without the port."""
    if source.startswith("["):
        return source[1:source.find("]")]
    return source.rpartition(":")[0] if source.count(":") == 1 else source


def header_values(message: str, name: str, most: int) -> tuple[str, list[str]]:
    """(Request-URI, up to ``most`` values of header ``name``) of a request's text; continuation lines joined."""
    head = message[:_MAX_HEAD].replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    parts = lines[0].split(" ")
    uri = parts[1] if len(parts) == 3 else ""
    values: list[str] = []
    current: list[str] | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and current is not None:
            current.append(line.strip())
            continue
        if current is not None:
            values.append(" ".join(current))
            current = None
            if len(values) >= most:
                break
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            current = [value.strip()]
    if current is not None and len(values) < most:
        values.append(" ".join(current))
    return uri, values


def parse_credentials(text: str, origin: str) -> dict[str, str]:
    """``user:password`` lines (``#`` comments and blank lines skipped; the password may hold ``:``)."""
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password or any(c.isspace() for c in user):
            raise ValueError(f"{origin} line {n}: write user:password (no spaces in the user name)")
        if user in users:
            raise ValueError(f"{origin} line {n}: user {user!r} is already listed")
        users[user] = password
    if not users:
        raise ValueError(f"{origin}: no user:password line")
    return users


class CallerGate:
    """The rules of the module docstring. ``users`` None: no digest; ``allow`` empty: any source.

    ``algorithms``: what the challenges offer, most preferred first.
    """

    def __init__(self, allow: tuple[Network, ...] = (), users: Mapping[str, str] | None = None,
                 realm: str = "largesc", secret: bytes = b"", method: str = "INVITE",
                 algorithms: tuple[Algorithm, ...] = OFFERED) -> None:
        if not algorithms:
            raise ValueError("offer at least one digest algorithm")
        self.allow, self.users, self.realm, self.method = allow, users, realm, method
        self.algorithms = algorithms
        self.nonces = Nonces(secret, realm) if users else None

    def decide(self, source: str, invite: str, now_s: float) -> Admission:
        if self.allow and not self._allowed(source):
            return Admission(Verdict.REFUSE, 403, "Forbidden", f"source {source_host(source)} is not in --allow")
        if not self.users or self.nonces is None:
            return ADMIT
        uri, values = header_values(invite, "Authorization", _MAX_AUTH_HEADERS)
        ours: list[Authorization] = []
        unreadable = ""
        for value in values:
            try:
                auth = parse_authorization(value)
            except ValueError as exc:
                unreadable = str(exc)
                continue
            if auth.realm == self.realm:
                ours.append(auth)
        if not ours:
            if unreadable:
                return Admission(Verdict.BAD, 400, "Bad Request", unreadable)
            return self._challenge(now_s, False, "no credentials")
        return self._check(ours[0], uri, now_s)

    def _allowed(self, source: str) -> bool:
        try:
            host = ipaddress.ip_address(source_host(source))
        except ValueError:
            return False
        return any(host in net for net in self.allow)

    def _challenge(self, now_s: float, stale: bool, why: str) -> Admission:
        assert self.nonces is not None
        nonce = self.nonces.issue(now_s)
        headers = tuple(("WWW-Authenticate", v) for v in challenges(self.realm, nonce, stale, self.algorithms))
        return Admission(Verdict.CHALLENGE, 401, "Unauthorized", why, headers)

    def _check(self, auth: Authorization, uri: str, now_s: float) -> Admission:
        assert self.nonces is not None and self.users is not None
        refused = Admission(Verdict.REFUSE, 403, "Forbidden", f"wrong credentials for user {auth.username[:64]!r}")
        password = self.users.get(auth.username)
        if password is None or auth.uri != uri or auth.algorithm not in self.algorithms:
            return refused
        state = self.nonces.state(auth.nonce, now_s)
        if state is NonceState.FOREIGN:
            return self._challenge(now_s, False, "a nonce we did not issue")
        if state is NonceState.STALE:
            return self._challenge(now_s, True, "a stale nonce")
        want = response(auth.algorithm, auth.username, auth.realm, password, self.method, auth.uri, auth.nonce,
                        auth.nc, auth.cnonce, auth.qop)
        if auth.qop is None or not hmac.compare_digest(want, auth.response):
            return refused
        if self.nonces.use(auth.nonce, auth.nc, now_s) is not NonceState.VALID:
            return self._challenge(now_s, True, "a nonce-count already used (replay?)")
        return Admission(Verdict.ADMIT, user=auth.username)
