"""Access to the shipped JSON Schema files and examples, with validators compiled once.

Example:
    >>> get_validator("click").is_valid({"type": "click"})
    False
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError

from schemas.errors import SchemaFileError

SCHEMA_DIR = Path(__file__).resolve().parent / "json"
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: Contract name -> schema file name.
SCHEMA_FILES = {
    "click": "click.v1.json",
    "upload": "upload.v1.json",
    "review": "review.v1.json",
    "recs_updated": "recs_updated.v1.json",
    "dead_letter": "dead_letter.v1.json",
}


def load_schema(name: str) -> dict[str, Any]:
    """Read one contract's JSON Schema.

    Args:
        name: A key of :data:`SCHEMA_FILES` (``click``, ``upload``, ``review``...).

    Raises:
        SchemaFileError: Unknown name, or the file is missing or not JSON.
    """
    if name not in SCHEMA_FILES:
        raise SchemaFileError(f"unknown contract {name!r}; known: {', '.join(SCHEMA_FILES)}")
    path = SCHEMA_DIR / SCHEMA_FILES[name]
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaFileError(f"{path}: {exc}") from exc
    return schema


@cache
def get_validator(name: str) -> Draft202012Validator:
    """A compiled, cached draft 2020-12 validator for one contract.

    Raises:
        SchemaFileError: The file cannot be read or is not a valid draft 2020-12 schema.
    """
    schema = load_schema(name)
    try:
        Draft202012Validator.check_schema(schema)
    except JsonSchemaError as exc:
        raise SchemaFileError(f"{SCHEMA_FILES[name]}: {exc.message}") from exc
    return Draft202012Validator(schema)


def load_example(name: str) -> bytes:
    """The shipped example document of one contract, as bytes."""
    return (EXAMPLES_DIR / f"{name}.json").read_bytes()
