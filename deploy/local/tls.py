"""A throwaway certificate authority and server certificate for the local stack's TLS listeners.

Generated once per stack folder (``<stack_dir>/tls/``) with the ``openssl`` command line, and
again when the server certificate is about to expire. Clients trust ``ca.pem``
(``RECSTREAM_KAFKA_SSL_CAFILE`` / ``RECSTREAM_CASSANDRA_SSL_CAFILE``); the servers load
``server.p12`` (PKCS#12: key, certificate and CA chain), whose password is in
``keystore.password``. The server certificate names ``127.0.0.1`` and ``localhost``, so
clients verify host names. A client certificate signed by the same CA (``client.pem`` /
``client.key``) is there for mutual-TLS checks. Private keys and the password are mode 0600.

This is for a local, loopback-only stack: a real deployment uses certificates from its own CA.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.local.errors import StackError, ToolMissing

#: Names the server certificate is valid for (the stack listens on loopback only).
SERVER_NAMES = ("127.0.0.1", "localhost")
VALID_DAYS = 365


@dataclass(frozen=True)
class LocalTls:
    """Paths of the generated TLS material in one folder."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        """PEM certificate of the CA: what clients trust."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """Private key of the CA."""
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        """PEM server certificate (for 127.0.0.1 and localhost)."""
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        """PEM private key of the server certificate."""
        return self.folder / "server.key"

    @property
    def keystore(self) -> Path:
        """PKCS#12 keystore of the server: key, certificate, CA."""
        return self.folder / "server.p12"

    @property
    def keystore_password_file(self) -> Path:
        """File holding the keystore password."""
        return self.folder / "keystore.password"

    @property
    def client_cert(self) -> Path:
        """PEM client certificate signed by the CA (mutual TLS)."""
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        """PEM private key of the client certificate."""
        return self.folder / "client.key"

    def keystore_password(self) -> str:
        """The keystore password."""
        return self.keystore_password_file.read_text().strip()


def subject_alt_names(names: tuple[str, ...] = SERVER_NAMES) -> str:
    """The ``subjectAltName`` value for ``names``: IP entries for addresses, DNS for the rest."""

    def is_ip(name: str) -> bool:
        parts = name.split(".")
        return len(parts) == 4 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts)

    return ",".join(f"IP:{n}" if is_ip(n) else f"DNS:{n}" for n in names)


def _openssl() -> str:
    exe = shutil.which("openssl")
    if not exe:
        raise ToolMissing("the openssl command is required to generate the local stack's TLS certificates")
    return exe


def _run(cwd: Path, *argv: str) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StackError(f"generating TLS material failed: {' '.join(argv[:3])}: {proc.stderr[-1500:]}")


def _valid_for(cert: Path, seconds: int) -> bool:
    proc = subprocess.run(
        [_openssl(), "x509", "-checkend", str(seconds), "-noout", "-in", str(cert)],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _issue(
    tls: LocalTls, name: str, key: Path, cert: Path, extensions: str, openssl: str, work: Path
) -> None:
    """A key and a certificate signed by the CA."""
    csr = work / f"{name}.csr"
    ext = work / f"{name}.ext"
    ext.write_text(extensions)
    _run(
        work,
        openssl,
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={name}",
    )
    _run(
        work,
        openssl,
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(tls.ca_cert),
        "-CAkey",
        str(tls.ca_key),
        "-set_serial",
        str(secrets.randbits(63)),
        "-days",
        str(VALID_DAYS),
        "-sha256",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )


def ensure_local_tls(folder: Path) -> LocalTls:
    """The TLS material in ``folder``, generated if missing or expiring within a day.

    Raises:
        ToolMissing: ``openssl`` is not installed.
        StackError: openssl failed (its message is included).
    """
    tls = LocalTls(folder)
    wanted = [tls.ca_cert, tls.server_cert, tls.server_key, tls.keystore, tls.keystore_password_file]
    wanted += [tls.client_cert, tls.client_key]
    if all(p.exists() for p in wanted) and _valid_for(tls.server_cert, 86_400):
        return tls
    openssl = _openssl()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:  # the folder is 0700 from here on; keys and the password get 0600 below
        _run(
            work,
            openssl,
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tls.ca_key),
            "-out",
            str(tls.ca_cert),
            "-days",
            str(VALID_DAYS),
            "-sha256",
            "-subj",
            "/CN=recstream local stack CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
        common = (
            "basicConstraints=critical,CA:FALSE\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
        )
        _issue(
            tls,
            "server",
            tls.server_key,
            tls.server_cert,
            common + "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName={subject_alt_names()}\n",
            openssl,
            work,
        )
        _issue(
            tls,
            "recstream-client",
            tls.client_key,
            tls.client_cert,
            common + "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
            openssl,
            work,
        )
        tls.keystore_password_file.write_text(secrets.token_urlsafe(24) + "\n")
        _run(
            work,
            openssl,
            "pkcs12",
            "-export",
            "-name",
            "server",
            "-in",
            str(tls.server_cert),
            "-inkey",
            str(tls.server_key),
            "-certfile",
            str(tls.ca_cert),
            "-out",
            str(tls.keystore),
            "-passout",
            f"file:{tls.keystore_password_file}",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for private in (tls.ca_key, tls.server_key, tls.client_key, tls.keystore, tls.keystore_password_file):
        os.chmod(private, 0o600)
    for public in (tls.ca_cert, tls.server_cert, tls.client_cert):
        os.chmod(public, 0o644)
    return tls
