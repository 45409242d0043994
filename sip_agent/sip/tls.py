"""SIP over TLS: the settings, the port rule and the cheap checks of the certificate files.

Port rule: TLS alone listens on the SIP port itself; next to UDP/TCP it
listens on the SIP port + 1 (5060 -> 5061, the usual pair), because pjsip's
TCP and TLS listeners cannot share one port.

Verification: ``verify`` checks the certificate a TLS server shows us
(outgoing calls, registration) against ``ca``, including that its name or IP
matches the host we dialled; ``verify_client`` asks callers for a certificate
signed by ``ca`` (mutual TLS). The checks here use Python's own ``ssl``
module, so a wrong file or a key that does not belong to its certificate fails
in a moment with the option and the fix, not as a handshake error later.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsSettings", "check_tls", "tls_port"]


@dataclass(frozen=True)
class TlsSettings:
    """Files and verification of the TLS transport (all paths PEM).

    ``cert``/``key``: what we show as a server (and as a client when asked);
    ``ca``: the CA list we trust; ``verify``: check servers we connect to;
    ``verify_client``: demand and check a certificate from callers.
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    verify: bool = False
    verify_client: bool = False


def tls_port(sip_port: int, transports: tuple[str, ...]) -> int:
    """Where the TLS listener goes (module docstring): ``sip_port`` alone, ``sip_port + 1`` beside UDP/TCP."""
    return sip_port if transports == ("tls",) else sip_port + 1


def _readable(path: Path, flag: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except IsADirectoryError:
        raise ValueError(f"{flag} {path} is a directory: give a PEM file") from None
    except OSError as exc:
        raise ValueError(f"{flag} {path}: {exc.strerror or exc}; give a readable PEM file") from None
    if b"-----BEGIN" not in head:
        raise ValueError(f"{flag} {path} is not a PEM file (no -----BEGIN line); convert it with "
                         "`openssl x509 -in FILE -out FILE.pem` (or `openssl pkey` for a key)")


def check_tls(settings: TlsSettings, server: bool) -> None:
    """ValueError naming the option and the fix when the files cannot work; ``server``: we accept TLS calls."""
    s = settings
    if (s.cert is None) != (s.key is None):
        raise ValueError("--tls-cert and --tls-key go together: give both (the certificate and its private key)")
    if server and s.cert is None:
        raise ValueError("listening for TLS needs a certificate: give --tls-cert FILE --tls-key FILE")
    if s.verify and s.ca is None:
        raise ValueError("--tls-verify needs the CA to verify against: give --tls-ca FILE (or --no-tls-verify)")
    if s.verify_client and s.ca is None:
        raise ValueError("--tls-verify-client needs the CA that signs callers' certificates: give --tls-ca FILE")
    if s.cert is not None and s.key is not None:
        _readable(s.cert, "--tls-cert")
        _readable(s.key, "--tls-key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(s.cert, s.key, password=lambda: b"")  # never prompt on the terminal
        except ssl.SSLError as exc:
            why = str(exc)
            if "mismatch" in why:
                why = "the key does not belong to the certificate"
            elif "decrypt" in why or "PASSWORD" in why.upper():
                why = "the key is encrypted (pjsip needs it unencrypted: `openssl pkey -in KEY -out PLAIN.pem`)"
            raise ValueError(f"--tls-cert {s.cert} / --tls-key {s.key}: {why}; give the key the certificate "
                             "was made for") from None
    if s.ca is not None:
        _readable(s.ca, "--tls-ca")
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=s.ca)
        except ssl.SSLError as exc:
            raise ValueError(f"--tls-ca {s.ca}: not a CA certificate list ({exc}); give the PEM of the CA") from None
