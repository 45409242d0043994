"""The security options of ``call``/``answer``/``register``/``gateway``: TLS, SDES policy, callers' auth.

Each option family has its argparse part, its cheap check (one line naming the
option and the fix, before pjsua2 or the models start) and the settings it
turns into. SDES rule (issue 14): SRTP keys travel in the SDP, so they go only
over TLS signalling; ``--sdes-over-plain-sip`` lets them go over UDP/TCP with a
warning. Without it ``--srtp optional`` on plain SIP offers no keys (a note
says so) and ``--srtp mandatory`` refuses to start.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from pathlib import Path

from sip_agent.media.types import SrtpPolicy
from sip_agent.sip.caller_auth import CallerGate, Network, parse_credentials
from sip_agent.sip.digest import Algorithm
from sip_agent.sip.tls import TlsSettings, check_tls

__all__ = ["auth_options", "caller_gate", "check_security", "sdes_allowed", "security_options", "tls_settings",
           "uses_tls"]

_TLS_URI = re.compile(r"^sips:|;transport=tls(;|$)", re.IGNORECASE)
_SERVERS = ("answer", "gateway")


def uses_tls(uri: str) -> bool:
    """Whether a SIP URI asks for TLS (``sips:`` or ``;transport=tls``)."""
    return _TLS_URI.search(uri) is not None


def security_options(p: argparse.ArgumentParser) -> None:
    """Add the TLS and SDES options (every SIP command)."""
    g = p.add_argument_group("SIP over TLS (--transport tls)")
    g.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                   help="our certificate (PEM), shown to TLS peers; answer and gateway need one")
    g.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the private key of --tls-cert (PEM, unencrypted)")
    g.add_argument("--tls-ca", type=Path, default=None, metavar="FILE",
                   help="the CA certificates (PEM) we trust: servers we call must show a certificate they signed")
    g.add_argument("--tls-verify", action=argparse.BooleanOptionalAction, default=None,
                   help="check the certificate of a TLS server we connect to, name or IP included "
                        "(default: on when --tls-ca is given)")
    g.add_argument("--tls-verify-client", action="store_true",
                   help="mutual TLS: callers must show a certificate signed by --tls-ca")


def network(text: str) -> Network:
    """argparse type of ``--allow``: an address or CIDR block (host bits may be set: 10.1.2.3/8 is 10.0.0.0/8)."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address or CIDR block: write e.g. 192.0.2.0/24, "
                                         "10.1.2.3 or 2001:db8::/32") from None


network.__name__ = "CIDR"


def algorithms(text: str) -> tuple[Algorithm, ...]:
    """argparse type of ``--auth-algorithms``: sha-256 and/or md5, comma-separated, each once."""
    names = [t.strip().upper() for t in text.split(",") if t.strip()]
    try:
        found = tuple(Algorithm(n) for n in names)
    except ValueError:
        found = ()
    if not found or len(set(found)) < len(found):
        raise argparse.ArgumentTypeError(f"{text!r}: give sha-256,md5, sha-256 or md5")
    return found


algorithms.__name__ = "algorithms"


def auth_options(p: argparse.ArgumentParser) -> None:
    """Add the options that decide who may call (``answer`` and ``gateway``)."""
    g = p.add_argument_group("Callers (who may call us)")
    g.add_argument("--allow", type=network, action="append", default=None, metavar="CIDR",
                   help="accept INVITEs only from these source addresses (repeat for more, e.g. --allow "
                        "192.0.2.0/24 --allow ::1); others get 403 before anything else (default: any)")
    g.add_argument("--auth-user", default=None, metavar="USER", help="callers must authenticate (digest) as this user")
    g.add_argument("--auth-password", default=None, metavar="PASSWORD",
                   help="the password of --auth-user (visible to other local users in the process list: "
                        "prefer --auth-file)")
    g.add_argument("--auth-file", type=Path, default=None, metavar="FILE",
                   help="callers must authenticate as one of the users in FILE: one user:password a line "
                        "(the password may hold ':'), blank lines and lines starting with # skipped")
    g.add_argument("--auth-realm", default="largesc", metavar="REALM", help="the digest realm our challenges name")
    g.add_argument("--auth-algorithms", type=algorithms, default=(Algorithm.SHA256, Algorithm.MD5),
                   metavar="LIST", help="digest algorithms offered, most preferred first (RFC 8760): sha-256,md5 "
                                        "(default), sha-256 or md5; md5 for clients that stop at the first "
                                        "algorithm they do not know (baresip 1.0)")


def _users(ns: argparse.Namespace) -> dict[str, str] | None:
    """The credentials of ``--auth-user/--auth-password`` and ``--auth-file``; None without any."""
    if (ns.auth_user is None) != (ns.auth_password is None):
        raise ValueError("--auth-user and --auth-password go together: give both (or --auth-file FILE)")
    users: dict[str, str] = {}
    if ns.auth_file is not None:
        try:
            text = Path(ns.auth_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValueError(f"--auth-file {ns.auth_file}: {why}; give a readable file of user:password "
                             "lines") from None
        users = parse_credentials(text, f"--auth-file {ns.auth_file}")
    if ns.auth_user is not None:
        if not ns.auth_user or not ns.auth_password:
            raise ValueError("--auth-user and --auth-password must not be empty")
        users[ns.auth_user] = ns.auth_password
    return users or None


def caller_gate(ns: argparse.Namespace) -> CallerGate | None:
    """The admission rules of ``answer``/``gateway`` (caller_auth.py); None when anyone may call."""
    if ns.command not in _SERVERS:
        return None
    users = _users(ns)
    allow = tuple(ns.allow or ())
    if users is None and not allow:
        return None
    return CallerGate(allow, users, ns.auth_realm, os.urandom(32),  # nonces die with the process
                      algorithms=ns.auth_algorithms)


def tls_settings(ns: argparse.Namespace) -> TlsSettings:
    verify = ns.tls_ca is not None if ns.tls_verify is None else ns.tls_verify
    return TlsSettings(ns.tls_cert, ns.tls_key, ns.tls_ca, verify, ns.tls_verify_client)


def _targets(ns: argparse.Namespace) -> list[tuple[str, str]]:
    """(option, URI) of every address the command dials or registers at."""
    found = [("--registrar", ns.registrar)] if ns.registrar else []
    if ns.command == "call":
        found.append(("the call's URI", ns.uri))
    if ns.command == "gateway":
        found += [("--trunk", ns.trunk), ("--local", ns.local)]
    return found


def _all_secure(ns: argparse.Namespace, names: tuple[str, ...]) -> bool:
    """Whether every call of this command is signalled over TLS (what SDES needs)."""
    if "tls" not in names:
        return False
    if ns.command == "call":
        return uses_tls(ns.uri)
    return names == ("tls",)  # answer / gateway: a caller may use any transport we listen on


def sdes_allowed(ns: argparse.Namespace, names: tuple[str, ...]) -> bool:
    """Whether SDES keys may go into this command's SDP (module docstring)."""
    return ns.sdes_over_plain_sip or _all_secure(ns, names)


def check_security(ns: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The cheap checks of the TLS and SDES options; ValueError with the fix, else the warnings to print."""
    tls_flags = [f for f, v in (("--tls-cert", ns.tls_cert), ("--tls-key", ns.tls_key), ("--tls-ca", ns.tls_ca),
                                ("--tls-verify", ns.tls_verify), ("--tls-verify-client", ns.tls_verify_client or None))
                 if v is not None]
    if tls_flags and "tls" not in names:
        raise ValueError(f"{tls_flags[0]} is for SIP over TLS: add tls to --transport (e.g. --transport tls "
                         f"or udp,tcp,tls)")
    for flag, uri in _targets(ns):
        if uses_tls(uri) and "tls" not in names:
            raise ValueError(f"{flag} {uri} asks for TLS: add tls to --transport (e.g. --transport tls)")
    if ns.command in _SERVERS:
        _users(ns)
    warnings: list[str] = []
    if "tls" in names:
        settings = tls_settings(ns)
        check_tls(settings, server=ns.command in _SERVERS)
        if not settings.verify and ns.command != "answer":  # answer only accepts connections
            warnings.append("warning: TLS servers we connect to are not verified (give --tls-ca FILE to verify "
                            "them): an attacker on the path can pose as them")
    if ns.command == "register" or ns.srtp is SrtpPolicy.OFF:
        return warnings
    if ns.sdes_over_plain_sip and not _all_secure(ns, names):
        warnings.append("warning: --sdes-over-plain-sip: SRTP keys go over plain SIP, readable by anyone who "
                        "sees the signalling")
    elif not ns.sdes_over_plain_sip and not _all_secure(ns, names):
        fix = ("call a sips: URI with --transport tls" if ns.command == "call"
               else "listen on --transport tls alone")
        if ns.srtp is SrtpPolicy.MANDATORY:
            raise ValueError(f"--srtp mandatory: SRTP keys go only over TLS signalling; {fix} "
                             "(or --sdes-over-plain-sip to send them in the clear)")
        warnings.append(f"note: SRTP off for these calls: its keys go only over TLS ({fix}, or --srtp off "
                        "to silence this)")
    return warnings
