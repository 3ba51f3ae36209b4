"""The contract bundle a consumer team vendors: ``recstream schema export DIR``.

It holds every JSON Schema (``json/``), the AsyncAPI document that references them
(``asyncapi.yaml``), the worker's HTTP API with the read API (``openapi.yaml``), an example of
every contract (``examples/``), the rules (``COMPATIBILITY.md``) and ``bundle.json``: each
file's SHA-256 and each contract's topic and key.
The files are read from the installed package, so the bundle of a release is that release's.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from schemas.registry import SCHEMA_FILES

#: Contract -> (default topic, Kafka key).
TOPICS = {
    "click": ("events.click", "user_id"),
    "upload": ("events.upload", "user_id"),
    "review": ("events.review", "user_id"),
    "recs_updated": ("recs.updated", "user_id"),
    "dead_letter": ("events.dlq", "the refused message's key (null when it had none)"),
}


def bundle_files() -> dict[str, bytes]:
    """Relative path in the bundle -> content."""
    root = resources.files("schemas")
    files: dict[str, bytes] = {
        "asyncapi.yaml": root.joinpath("asyncapi.yaml").read_bytes(),
        "openapi.yaml": root.joinpath("openapi.yaml").read_bytes(),
        "COMPATIBILITY.md": root.joinpath("COMPATIBILITY.md").read_bytes(),
    }
    for name, file in SCHEMA_FILES.items():
        files[f"json/{file}"] = root.joinpath("json", file).read_bytes()
        files[f"examples/{name}.json"] = root.joinpath("examples", f"{name}.json").read_bytes()
    return files


def export_bundle(dest: Path, version: str) -> list[Path]:
    """Write the bundle into ``dest`` (created; files there are replaced). Returns the paths.

    Args:
        dest: The directory.
        version: The recstream version recorded in ``bundle.json``.
    """
    files = bundle_files()
    manifest = {
        "recstream_version": version,
        "contracts": {
            name: {
                "schema": f"json/{SCHEMA_FILES[name]}",
                "example": f"examples/{name}.json",
                "topic": TOPICS[name][0],
                "key": TOPICS[name][1],
            }
            for name in SCHEMA_FILES
        },
        "asyncapi": "asyncapi.yaml",
        "openapi": "openapi.yaml",
        "sha256": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    files["bundle.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    written = []
    for rel, data in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
