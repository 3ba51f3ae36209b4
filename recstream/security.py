"""Client-side security helpers shared by the Kafka and Cassandra clients.

* :func:`client_ssl_context` builds the one TLS context every client uses (CA bundle, optional
  client certificate for mutual TLS), failing with a clear message when a file is missing.
* :class:`MaskedStr` carries a secret to a client library whose debug logging prints its
  configuration (kafka-python's admin client logs every keyword argument at DEBUG): it is the
  secret for every purpose except ``repr``, so the printed configuration shows a mask whatever
  handler formats it. (``recstream.logs`` also scrubs the settings' secret values from every
  line it writes.)
"""

from __future__ import annotations

import ssl
from pathlib import Path

#: What a redacted secret reads as in logs and ``repr``.
MASK = "**********"


class SecurityConfigError(ValueError):
    """A security file named by the settings is missing or unusable."""


def client_ssl_context(
    cafile: Path | None, certfile: Path | None = None, keyfile: Path | None = None
) -> ssl.SSLContext:
    """A verifying client TLS context (hostname checked, TLS 1.2 or newer).

    Args:
        cafile: PEM bundle of the CAs to trust; None trusts the system's CAs.
        certfile: PEM client certificate (chain) for mutual TLS, optional.
        keyfile: PEM private key of ``certfile`` (None: the key is inside ``certfile``).

    Raises:
        SecurityConfigError: A file is missing or does not hold what it should.
    """
    for label, path in (("CA file", cafile), ("client certificate", certfile), ("client key", keyfile)):
        if path is not None and not Path(path).is_file():
            raise SecurityConfigError(f"TLS {label} {path} does not exist or is not a file")
    if keyfile is not None and certfile is None:
        raise SecurityConfigError("a TLS client key needs its client certificate")
    try:
        ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except ssl.SSLError as exc:
        raise SecurityConfigError(f"TLS CA file {cafile} holds no usable certificate: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        try:
            ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
        except ssl.SSLError as exc:
            raise SecurityConfigError(
                f"TLS client certificate {certfile} and key {keyfile} do not load: {exc}"
            ) from exc
    return ctx


class MaskedStr(str):
    """A ``str`` that is the secret everywhere except in ``repr`` (dict and debug printing)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)
