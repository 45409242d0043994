"""Test PKI made at run time with the ``openssl`` command (requirements/apt-test.txt): two CAs, certificates.

``pki`` (a fixture, one per test session) gives a CA and a server certificate
for 127.0.0.1 signed by it, a second CA that signed nothing we use, a client
certificate from the first CA, and a key that belongs to no certificate here.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sip_agent.conftest import tool


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    client_cert: Path
    client_key: Path
    stray_key: Path


def _run(*args: str, cwd: Path) -> None:
    done = subprocess.run([tool("openssl"), *args], cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def _ca(work: Path, name: str) -> None:
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
         "-days", "2", "-subj", f"/CN=LargeSC test {name}", cwd=work)


def _signed(work: Path, name: str, ca: str, san: str) -> None:
    _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
         "-subj", f"/CN={name}", cwd=work)
    (work / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
         "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=work)


def make_pki(work: Path) -> Pki:
    work.mkdir(parents=True, exist_ok=True)
    _ca(work, "ca")
    _ca(work, "other-ca")
    _signed(work, "server", "ca", "IP:127.0.0.1,DNS:localhost")
    _signed(work, "client", "ca", "DNS:client.test")
    _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "stray.key", cwd=work)
    return Pki(work / "ca.pem", work / "server.pem", work / "server.key", work / "other-ca.pem",
               work / "client.pem", work / "client.key", work / "stray.key")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))
