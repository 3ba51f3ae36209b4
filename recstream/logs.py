"""Process logging: one line per record, JSON (structured) or text, secrets scrubbed.

``RECSTREAM_LOG_FORMAT=json`` (the default) writes one JSON object per line with ``ts`` (UTC,
ISO 8601, milliseconds), ``level``, ``logger`` and ``msg``, plus whatever the call passed with
``extra=`` (``event_id``, ``topic``, ``partition``, ``offset``, ``reason``...) and ``exc`` (the
formatted traceback) when the record carries an exception. ``text`` writes the same fields as
``ts level logger: msg key=value...``.

Secrets never reach the output: values of type ``SecretStr`` and extras whose name looks like a
credential are masked, and the secret values of the settings are replaced wherever they would
appear (in a message, an exception text or an extra).

Example:
    >>> from recstream import logs
    >>> logs.configure(settings)  # root logger: level and format from the settings
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from recstream.settings import Settings

MASK = "**********"
#: Extras whose name matches are masked whatever their value.
SECRET_NAME = re.compile(r"pass(word)?|secret|token|credential|api_?key|authorization", re.IGNORECASE)
#: Shorter secret values are not scrubbed from text (they would mask ordinary words).
MIN_SCRUB_CHARS = 4

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def secret_values(settings: Settings) -> list[str]:
    """The secret values held by ``settings`` (every ``SecretStr`` field that is set)."""
    out = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            out.append(value.get_secret_value())
    return out


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call passed with ``extra=`` (masked where they look secret)."""
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _RESERVED or key.startswith("_"):
            continue
        out[key] = MASK if SECRET_NAME.search(key) else _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): (MASK if SECRET_NAME.search(str(k)) else _plain(v)) for k, v in value.items()}
    return repr(value)


class _Scrubbing(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SCRUB_CHARS}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret value masked."""
        for s in self.secrets:
            text = text.replace(s, MASK)
        return text

    @staticmethod
    def timestamp(record: logging.LogRecord) -> str:
        """The record's time as UTC ISO 8601 with milliseconds (``2024-05-01T12:00:00.123Z``)."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"

    def exception_text(self, record: logging.LogRecord) -> str | None:
        """Formatted traceback (and stack) of the record, if any."""
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts) if parts else None


class JsonFormatter(_Scrubbing):
    """One JSON object per record, on one line.

    Args:
        secrets: Values to mask wherever they appear (the settings' secrets).
    """

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": self.scrub(record.getMessage()),
        }
        for key, value in record_extras(record).items():
            doc.setdefault(key, value)
        exc = self.exception_text(record)
        if exc:
            doc["exc"] = self.scrub(exc)
        line = json.dumps(doc, ensure_ascii=False, default=repr)
        # Secrets could also sit in extras: mask their JSON-escaped form in the final line.
        for s in self.secrets:
            line = line.replace(json.dumps(s, ensure_ascii=False)[1:-1], MASK)
        return line


class TextFormatter(_Scrubbing):
    """``ts level logger: msg key=value ...`` and the traceback on the following lines.

    Args:
        secrets: Values to mask wherever they appear (the settings' secrets).
    """

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in record_extras(record).items())
        line = f"{self.timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if extras:
            line += " " + extras
        exc = self.exception_text(record)
        if exc:
            line += "\n" + exc
        return self.scrub(line)


class RepeatFilter(logging.Filter):
    """Let the first of identical records through, hold back its repeats for ``window_s``.

    A client that loses its server can log the same line thousands of times a second (aiokafka
    logged "Unable connect to node" 13,000 times in 9 s of a broker restart): that drowns the
    lines that matter and costs CPU when the worker needs it. Records are identical when their
    logger, level, message text and extras are (two dead letters differ by their offsets, so
    both are written); the first record after a window carries
    ``repeated=N`` (how many were held back), so counts are never lost from the output.

    Args:
        window_s: How long repeats of a record are held back after it was written.
    """

    def __init__(self, window_s: float = 5.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._last: dict[tuple[str, int, str, tuple[tuple[str, str], ...]], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        extras = tuple(sorted((k, repr(v)) for k, v in record_extras(record).items()))
        key = (record.name, record.levelno, record.getMessage(), extras)
        now = record.created
        last = self._last.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.repeated = last[1]
        self._last[key] = (now, 0)
        if len(self._last) > 4096:  # forget windows long closed (bounded memory)
            self._last = {k: v for k, v in self._last.items() if now - v[0] < self.window_s}
        return True


def make_formatter(fmt: str = "json", secrets: Iterable[str] = ()) -> logging.Formatter:
    """A formatter for ``RECSTREAM_LOG_FORMAT`` (``json`` or ``text``).

    Raises:
        ValueError: Unknown format.
    """
    if fmt == "json":
        return JsonFormatter(secrets)
    if fmt == "text":
        return TextFormatter(secrets)
    raise ValueError(f"unknown log format {fmt!r} (json or text)")


def logging_config(settings: Settings) -> dict[str, Any]:
    """``logging.config.dictConfig`` document: the root logger writes to stderr.

    Faust's worker applies it (``logging_config`` of the app) when it sets up logging; the
    ``recstream`` commands apply it through :func:`configure`.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "recstream": {
                "()": make_formatter,
                "fmt": settings.log_format,
                "secrets": secret_values(settings),
            }
        },
        "filters": {"repeats": {"()": RepeatFilter, "window_s": 5.0}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "recstream",
                "filters": ["repeats"],
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
    }


def configure(settings: Settings) -> None:
    """Configure the root logger from ``settings.log_level`` and ``settings.log_format``.

    Python warnings are routed through logging too (logger ``py.warnings``), so they come out
    in the same format.
    """
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)
