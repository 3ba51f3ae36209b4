"""Kafka client settings (security included) for kafka-python, aiokafka and Faust, from one place.

Every Kafka client recstream creates (the worker's Faust app and catalogue consumer, the admin
client that creates topics, the replay producer, the demo's consumer, the local stack's health
check) takes its connection settings from here, so TLS and SASL behave the same everywhere:

* ``SSL`` / ``SASL_SSL``: a verifying TLS context (:func:`recstream.security.client_ssl_context`)
  trusting ``kafka_ssl_cafile`` (or the system CAs), with a client certificate for mutual TLS
  when ``kafka_ssl_certfile`` is set; the broker's certificate must name the host it is reached by.
* ``SASL_*``: ``kafka_sasl_mechanism`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with the user name
  and password; the password is handed over as a :class:`~recstream.security.MaskedStr`, so a
  library that logs its configuration prints a mask.
"""

from __future__ import annotations

import ssl
from typing import Any

from recstream.security import MaskedStr, client_ssl_context
from recstream.settings import Settings

TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The client TLS context for the configured protocol (None without TLS).

    Raises:
        recstream.security.SecurityConfigError: A configured TLS file is missing or unusable.
    """
    if settings.kafka_security_protocol not in TLS_PROTOCOLS:
        return None
    return client_ssl_context(
        settings.kafka_ssl_cafile, settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile
    )


def _sasl_password(settings: Settings) -> MaskedStr:
    secret = settings.kafka_sasl_password
    return MaskedStr(secret.get_secret_value() if secret is not None else "")


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python clients (admin, producer, consumer)."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    ctx = kafka_ssl_context(settings)
    if ctx is not None:
        cfg["ssl_context"] = ctx
    if settings.kafka_security_protocol.startswith("SASL"):
        cfg["sasl_mechanism"] = settings.kafka_sasl_mechanism
        cfg["sasl_plain_username"] = settings.kafka_sasl_username
        cfg["sasl_plain_password"] = _sasl_password(settings)
    return cfg


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (same names as kafka-python for these settings)."""
    return kafka_python_config(settings)


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for the Faust app (None for PLAINTEXT).

    Faust derives the protocol from the credentials: ``SASLCredentials`` with an SSL context is
    SASL_SSL, without one SASL_PLAINTEXT; ``SSLCredentials`` is SSL.
    """
    import faust

    ctx = kafka_ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_sasl_password(settings),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ctx,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None
