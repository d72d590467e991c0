"""Throwaway TLS certificates for tests, made with the ``openssl`` command line.

:func:`make_pki` writes a CA, a server certificate for ``127.0.0.1``/``localhost`` (in the
subjectAltName, which Python's hostname check reads), a client certificate signed by the
same CA, and a second, unrelated CA (the "wrong CA" a client may be given by mistake).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_DAYS = "2"


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files :func:`make_pki` wrote."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path


def _openssl(*args: str | Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("the TLS tests need the openssl command (Debian package: openssl)")
    # Fixed argv built here, no shell: nothing from outside reaches the command line.
    subprocess.run([binary, *map(str, args)], check=True, capture_output=True)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", _DAYS, "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return cert, key


def _leaf(folder: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={name}")  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-out", cert, "-days", _DAYS, "-extfile", ext)  # fmt: skip
    return cert, key


def make_pki(folder: Path, *, server_names: str = "IP:127.0.0.1,DNS:localhost") -> Pki:
    """Write a CA, server and client certificates, and an unrelated CA, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca(folder, "ca")
    server = _leaf(folder, "server", ca, f"subjectAltName={server_names}\n"
                   "extendedKeyUsage=serverAuth\n")  # fmt: skip
    client = _leaf(folder, "client", ca, "extendedKeyUsage=clientAuth\n")
    wrong_ca, _ = _ca(folder, "wrong-ca")
    return Pki(ca[0], server[0], server[1], client[0], client[1], wrong_ca)
