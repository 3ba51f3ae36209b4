"""Who may read the routes that show users' data (the ops page ``/ops`` and ``/ops/*``, ``/api/*``
and the read API ``/v1/users/{user_id}/recommendations``).

Bound to a loopback address (the default, ``127.0.0.1``), the worker's web server is reachable
only from its own machine and every route is open. Bound anywhere else, the routes that show
users' lists require the token of ``RECSTREAM_WEB_TOKEN`` (or ``RECSTREAM_WEB_TOKEN_FILE``):

- ``Authorization: Bearer <token>`` (services, ``curl``);
- ``Authorization: Basic`` with the token as the password, any user name (a browser asks for
  it once, then sends it with the ops page's own requests).

Without a configured token those routes answer 401 there: a worker exposed by mistake shows
nothing. ``/healthz``, ``/readyz`` and ``/metrics`` stay open (probes and Prometheus scrape them;
they carry no user data). Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass

from recstream.settings import Settings

#: The challenge of a 401: browsers take the Basic one and prompt.
CHALLENGE = 'Bearer realm="recstream", Basic realm="recstream"'


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class WebAccess:
    """The access rule of the protected routes.

    Attributes:
        required: Whether a token is required (the server is bound beyond loopback).
        token: The expected token (UTF-8), or None when none is configured.
    """

    required: bool
    token: bytes | None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebAccess:
        """The rule for this worker's bind address and configured token."""
        token = settings.web_token.get_secret_value().encode() if settings.web_token else None
        return cls(required=not is_loopback(settings.web_host), token=token)

    def refusal(self, authorization: str | None) -> str | None:
        """Why a request with this ``Authorization`` header is refused, or None to serve it.

        The reason names what is missing, never the token or what was sent.
        """
        if not self.required:
            return None
        if self.token is None:
            return (
                "this worker is bound beyond loopback and has no RECSTREAM_WEB_TOKEN: user data is not served"
            )
        given = _credential(authorization)
        if given is None:
            return "authorization required (Bearer token, or Basic with the token as password)"
        if not hmac.compare_digest(given, self.token):
            return "invalid token"
        return None


def _credential(authorization: str | None) -> bytes | None:
    """The token a header carries (Bearer value, or Basic password), or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value.encode()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        _, sep, password = decoded.partition(b":")
        return password if sep and password else None
    return None
