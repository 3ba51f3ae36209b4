"""Settings: defaults, environment parsing, validation, unknown keys rejected."""

from __future__ import annotations

import pytest

from recstream.settings import Settings, SettingsError, known_env_names, load_settings


def test_defaults_point_at_the_local_stack() -> None:
    s = load_settings({})
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.cassandra_hosts == ["127.0.0.1"] and s.cassandra_port == 9042
    assert s.triton_grpc_url == "127.0.0.1:8001"
    assert s.k == 20 and s.web_host == "127.0.0.1"
    assert s.event_topics == {
        "click": "events.click",
        "upload": "events.upload",
        "review": "events.review",
    }


def test_environment_values_are_parsed_and_typed() -> None:
    s = load_settings({"RECSTREAM_K": "50", "RECSTREAM_TOPIC_RECS": "recs.v2", "recstream_decay_tau_s": "60"})
    assert s.k == 50 and s.topic_recs == "recs.v2" and s.decay_tau_s == 60.0


def test_unknown_key_is_rejected_with_its_name() -> None:
    with pytest.raises(SettingsError, match="RECSTREAM_KAFKA_BOOTSTRAP_SERVER"):
        load_settings({"RECSTREAM_KAFKA_BOOTSTRAP_SERVER": "x:1"})  # typo: missing S


@pytest.mark.parametrize(
    "env",
    [
        {"RECSTREAM_K": "0"},
        {"RECSTREAM_K": "many"},
        {"RECSTREAM_CASSANDRA_KEYSPACE": "Drop Table"},
        {"RECSTREAM_KAFKA_BOOTSTRAP_SERVERS": " , "},
        {"RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},  # SASL without credentials
        {"RECSTREAM_TRITON_DEVICE": "tpu"},
    ],
)
def test_invalid_values_fail_at_start(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        load_settings(env)


def test_settings_are_frozen_and_secrets_hidden() -> None:
    s = load_settings({"RECSTREAM_CASSANDRA_USERNAME": "u", "RECSTREAM_CASSANDRA_PASSWORD": "hunter2"})
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        s.k = 3  # type: ignore[misc]
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


def test_every_field_has_one_env_name() -> None:
    assert len(known_env_names()) == len(Settings.model_fields)
    assert all(n.startswith("RECSTREAM_") and n == n.upper() for n in known_env_names())
