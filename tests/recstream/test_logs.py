"""Structured logs: one valid JSON object per line, extras and exceptions kept, secrets never."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from recstream import logs
from recstream.settings import load_settings

SECRETS = {
    "RECSTREAM_CASSANDRA_USERNAME": "cass",
    "RECSTREAM_CASSANDRA_PASSWORD": 'p"w\\d-Cassandra-9',  # quote and backslash: JSON-escaped in output
    "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "RECSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
    "RECSTREAM_KAFKA_SASL_USERNAME": "kuser",
    "RECSTREAM_KAFKA_SASL_PASSWORD": "kafka-s3cret-ü",
}


def _record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("recstream.test")
    return logger.makeRecord(logger.name, level, "f.py", 1, msg, args, None, extra=extra)


def test_json_line_has_the_fields_and_extras() -> None:
    fmt = logs.JsonFormatter()
    rec = _record("applied %d events", 3, event_id="e-1", topic="events.click", partition=2, offset=41)
    line = fmt.format(rec)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc == {
        "ts": doc["ts"],
        "level": "INFO",
        "logger": "recstream.test",
        "msg": "applied 3 events",
        "event_id": "e-1",
        "topic": "events.click",
        "partition": 2,
        "offset": 41,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["ts"])


def test_multiline_messages_and_odd_extras_stay_one_json_line() -> None:
    fmt = logs.JsonFormatter()
    rec = _record("line one\nline two \u2603", items=("a", 1), obj=object(), nested={"k": [1, 2]})
    line = fmt.format(rec)
    assert len(line.splitlines()) == 1
    doc = json.loads(line)
    assert doc["msg"] == "line one\nline two \u2603" and doc["items"] == ["a", 1]
    assert doc["obj"].startswith("<object object") and doc["nested"] == {"k": [1, 2]}


def test_exceptions_are_included_as_one_field() -> None:
    fmt = logs.JsonFormatter()
    try:
        raise ValueError("bad value 42")
    except ValueError:
        rec = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, "f.py", 1, "failed", (), __import__("sys").exc_info()
        )
    doc = json.loads(fmt.format(rec))
    assert doc["level"] == "ERROR" and doc["msg"] == "failed"
    assert doc["exc"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad value 42" in doc["exc"]


def test_settings_secrets_never_appear_anywhere() -> None:
    settings = load_settings(SECRETS)
    secrets = logs.secret_values(settings)
    assert sorted(secrets) == sorted(
        [SECRETS["RECSTREAM_CASSANDRA_PASSWORD"], SECRETS["RECSTREAM_KAFKA_SASL_PASSWORD"]]
    )
    for fmt in (logs.JsonFormatter(secrets), logs.TextFormatter(secrets)):
        cass, kafka = SECRETS["RECSTREAM_CASSANDRA_PASSWORD"], SECRETS["RECSTREAM_KAFKA_SASL_PASSWORD"]
        try:
            raise ConnectionError(f"auth failed with {kafka}")
        except ConnectionError:
            exc_info = __import__("sys").exc_info()
        rec = logging.getLogger("x").makeRecord(
            "x",
            logging.WARNING,
            "f.py",
            1,
            "connecting with %s",
            (cass,),
            exc_info,
            extra={
                "password": "whatever-it-is",
                "cfg": {"sasl_plain_password": kafka, "host": "h"},
                "raw": f"pw={cass}",
                "secret_obj": SecretStr("hidden-value"),
                "settings_repr": repr(settings),
            },
        )
        out = fmt.format(rec)
        for s in (*secrets, "whatever-it-is", "hidden-value", '\\"w\\\\d-Cassandra'):
            assert s not in out, (type(fmt).__name__, s, out)
        assert logs.MASK in out
        if isinstance(fmt, logs.JsonFormatter):
            doc = json.loads(out)
            assert doc["password"] == logs.MASK and doc["cfg"]["sasl_plain_password"] == logs.MASK
            assert doc["cfg"]["host"] == "h" and doc["secret_obj"] == logs.MASK
            assert "ConnectionError" in doc["exc"]


def test_text_format() -> None:
    line = logs.TextFormatter().format(_record("dead letter", level=logging.WARNING, reason="invalid_json"))
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING recstream\.test: dead letter reason=invalid_json",
        line,
    )


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        logs.make_formatter("xml")


@pytest.fixture()
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize(("fmt", "level"), [("json", "WARNING"), ("text", "DEBUG")])
def test_configure_sets_root_level_format_and_captures_warnings(
    fmt: str, level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    settings = load_settings({"RECSTREAM_LOG_FORMAT": fmt, "RECSTREAM_LOG_LEVEL": level, **SECRETS})
    logs.configure(settings)
    assert logging.getLogger().level == getattr(logging, level)
    logging.getLogger("recstream.x").info("info line")
    logging.getLogger("recstream.x").warning("warn %s", SECRETS["RECSTREAM_KAFKA_SASL_PASSWORD"])
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", UserWarning, stacklevel=1)
    lines = buf.getvalue().splitlines()
    assert SECRETS["RECSTREAM_KAFKA_SASL_PASSWORD"] not in buf.getvalue()
    if fmt == "json":
        docs = [json.loads(ln) for ln in lines]
        assert [d["msg"] for d in docs][:1] == [f"warn {logs.MASK}"]  # INFO is below WARNING
        assert docs[1]["logger"] == "py.warnings" and "deprecated thing" in docs[1]["msg"]
    else:
        assert " INFO recstream.x: info line" in lines[0] and f"warn {logs.MASK}" in lines[1]


def test_repeats_are_held_back_within_the_window_and_counted_after() -> None:
    f = logs.RepeatFilter(window_s=5.0)
    first = _record("Unable connect to node %d", 1, level=logging.ERROR)
    first.created = 100.0
    assert f.filter(first)
    held = []
    for i in range(1000):
        r = _record("Unable connect to node %d", 1, level=logging.ERROR)
        r.created = 100.0 + i * 0.004  # 1,000 repeats in 4 s
        held.append(f.filter(r))
    assert len(held) == 1000 and not any(held)
    other = _record("Unable connect to node %d", 2, level=logging.ERROR)  # another text passes
    other.created = 101.0
    assert f.filter(other)
    after = _record("Unable connect to node %d", 1, level=logging.ERROR)
    after.created = 105.5
    assert f.filter(after)
    assert after.repeated == 1000  # type: ignore[attr-defined]
    again = _record("Unable connect to node %d", 1, level=logging.ERROR)
    again.created = 111.0
    assert f.filter(again) and not hasattr(again, "repeated")


@pytest.mark.usefixtures("restore_root")
def test_configured_handler_holds_back_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    logs.configure(load_settings({}))
    log = logging.getLogger("recstream.test.repeats")
    for _ in range(50):
        log.warning("the same line")
    for offset in (7, 8):  # same text, other context: both kept (e.g. two dead letters)
        log.warning("dead letter", extra={"offset": offset})
    lines = [ln for ln in buf.getvalue().splitlines() if "the same line" in ln]
    assert len(lines) == 1
    letters = [json.loads(ln) for ln in buf.getvalue().splitlines() if "dead letter" in ln]
    assert [d["offset"] for d in letters] == [7, 8]
