"""Exceptions of the ``schemas`` package.

Hierarchy::

    SchemaError                      base of every error this package raises on purpose
    ├── RecordError (+ ValueError)   bytes or data could not be turned into a typed record
    │   └── InvalidJsonError         bytes are not strict JSON (``reason``: invalid_json, ...)
    └── SchemaFileError              a JSON Schema file is missing or is not a valid schema

The edge (:func:`schemas.edge.decode_event`) never raises: it returns a
:class:`schemas.edge.Rejection` instead. Building a record directly (``ClickEvent(...)``) raises
pydantic's ``ValidationError`` (also a ``ValueError``), as pydantic models do.
"""

from __future__ import annotations


class SchemaError(Exception):
    """Base class of the ``schemas`` package's exceptions."""


class RecordError(SchemaError, ValueError):
    """Bytes or data do not form a valid record (the message says which field and why)."""


class SchemaFileError(SchemaError):
    """A JSON Schema file shipped in ``schemas/json`` is missing or invalid."""


class InvalidJsonError(RecordError):
    """Text is not acceptable JSON: syntax, NaN/Infinity, duplicate keys, too deep, bad strings.

    Attributes:
        reason: Machine code (``invalid_json`` or ``duplicate_key``).
        detail: Human-readable explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
