"""Every contract validates alike in Ajv 8 (strict), a Go validator (RE2) and Python jsonschema.

A service in another language validates recstream's documents with its own library; the
schema files must compile there without complaint and give the same verdicts. The corpus is
every shipped example plus one-change mutations of each (members dropped, nulled, retyped,
added) and the edge cases of the patterns (a trailing newline, where Python's ``$`` differs).
Python jsonschema (which tests/schemas/test_agreement.py binds to the typed records) gives the
expected verdict; Ajv and Go must match it. The tools come from the npm registry and the Go
module proxy, pinned by tests/schemas/portable/package-lock.json and go.sum. No server needed.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas.registry import SCHEMA_DIR, SCHEMA_FILES, get_validator, load_example

PORTABLE = Path(__file__).resolve().parent / "portable"
#: Hand-made documents on the patterns' edges: (contract, path to a string member, value).
PATTERN_CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("dead_letter", ("value_b64",), "QUJD"),
    ("dead_letter", ("value_b64",), "QUJD\n"),
    ("dead_letter", ("value_b64",), "QUI="),
    ("dead_letter", ("value_b64",), "QU=I"),
    ("dead_letter", ("value_b64",), "QUJ"),
    ("dead_letter", ("key_b64",), "dS0x\n"),
    ("dead_letter", ("value_sha256",), "a" * 64),
    ("dead_letter", ("value_sha256",), "a" * 64 + "\n"),
    ("dead_letter", ("value_sha256",), "A" * 64),
    ("dead_letter", ("reason",), "missing_key"),
    ("dead_letter", ("reason",), "missing_key\n"),
    ("dead_letter", ("reason",), "Missing"),
    ("upload", ("image", "b64"), "iVBORw0KGgo="),
    ("upload", ("image", "b64"), "iVBORw0KGgo=\n"),
    ("upload", ("image", "uri"), "https://cdn.example/p/1.png?x=1"),
    ("upload", ("image", "uri"), "https://cdn.example/p/1.png\n"),
    ("upload", ("image", "uri"), "ftp://cdn.example/p.png"),
    ("upload", ("image", "uri"), "s3://bucket/key with space"),
]
WRONG_VALUES: list[Any] = [None, 7, "x", [], {}, True, 1.5]


def _examples() -> dict[str, dict[str, Any]]:
    return {name: json.loads(load_example(name)) for name in SCHEMA_FILES}


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return out


def corpus() -> list[tuple[str, dict[str, Any]]]:
    """(contract, document) pairs: examples, their mutations and the pattern cases."""
    docs: list[tuple[str, dict[str, Any]]] = []
    examples = _examples()
    for name, ex in examples.items():
        docs.append((name, ex))
        docs.append((name, {**ex, "x_future_member": {"any": ["thing"]}}))
        for key in ex:
            docs.append((name, {k: v for k, v in ex.items() if k != key}))
            docs.extend((name, _set(ex, (key,), v)) for v in WRONG_VALUES)
    upload = {k: v for k, v in examples["upload"].items() if k != "image"}
    for name, path, value in PATTERN_CASES:
        base = upload if name == "upload" else examples[name]
        if path[0] == "image":
            base = {**base, "image": {}}
        docs.append((name, _set(base, path, value)))
    return docs


def _run(cmd: list[str], cwd: Path, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.fixture(scope="module")
def node_tools() -> Path:
    """``tests/schemas/portable/node_modules`` from the lockfile (``npm ci``, once)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("needs Node.js >= 20.17 and npm (https://nodejs.org; .ci/run checks them)")
    lock = PORTABLE / "package-lock.json"
    stamp = PORTABLE / "node_modules" / ".recstream-lock"
    if not stamp.exists() or stamp.read_text() != lock.read_text():
        done = _run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], PORTABLE)
        assert done.returncode == 0, done.stderr[-3000:]
        stamp.write_text(lock.read_text())
    return PORTABLE


@pytest.fixture(scope="module")
def go_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go checker, built from tests/schemas/portable/go (modules from the Go proxy, go.sum)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("needs the Go toolchain >= 1.22 (https://go.dev/dl; Debian 12's golang-go is too old)")
    binary = tmp_path_factory.mktemp("go") / "portable"
    done = _run([go, "build", "-mod=readonly", "-o", str(binary), "."], PORTABLE / "go")
    assert done.returncode == 0, done.stderr[-3000:]
    return binary


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """The corpus on disk as the checkers' CASES file; with the counts of valid and invalid."""
    root = tmp_path_factory.mktemp("corpus")
    documents = []
    valid = invalid = 0
    for i, (name, doc) in enumerate(corpus()):
        path = root / f"{i:04d}-{name}.json"
        path.write_text(json.dumps(doc))
        ok = get_validator(name).is_valid(doc)
        valid += ok
        invalid += not ok
        documents.append({"schema": name, "path": str(path), "valid": ok})
    spec = {
        "schemas": {name: str(SCHEMA_DIR / file) for name, file in SCHEMA_FILES.items()},
        "documents": documents,
    }
    file = root / "cases.json"
    file.write_text(json.dumps(spec))
    return file, valid, invalid


def test_the_corpus_holds_both_verdicts_for_every_contract() -> None:
    by_name: dict[str, set[bool]] = {}
    for name, doc in corpus():
        by_name.setdefault(name, set()).add(get_validator(name).is_valid(doc))
    assert by_name == {name: {True, False} for name in SCHEMA_FILES}
    # The cases that tell engines apart: Python's "$" matches before a final newline.
    for name, path, value in PATTERN_CASES:
        if value.endswith("\n"):
            doc = next(d for n, d in corpus() if n == name and _get(d, path) == value)
            assert not get_validator(name).is_valid(doc), (name, path)


def _get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        raise AssertionError(
            f"no report (rc {done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}"
        ) from None


def test_ajv_strict_compiles_every_schema_and_agrees(node_tools: Path, cases: tuple[Path, int, int]) -> None:
    file, valid, invalid = cases
    done = _run(["node", "check_ajv.mjs", str(file)], node_tools)
    report = _report(done)
    assert report["problems"] == [] and done.returncode == 0, report["problems"][:5]
    assert report["schemas"] == len(SCHEMA_FILES) and report["documents"] == valid + invalid
    assert report["validator"].startswith("ajv 8.")


def test_go_re2_validator_compiles_every_schema_and_agrees(
    go_checker: Path, cases: tuple[Path, int, int]
) -> None:
    file, valid, invalid = cases
    done = _run([str(go_checker), str(file)], PORTABLE)
    report = _report(done)
    assert report["problems"] in (None, []) and done.returncode == 0, report["problems"][:5]
    assert report["schemas"] == len(SCHEMA_FILES) and report["documents"] == valid + invalid


def test_the_checkers_can_fail(node_tools: Path, go_checker: Path, tmp_path: Path) -> None:
    """Negative control: the schemas as they were (a lookahead, an unknown keyword) fail both."""
    old = json.loads((SCHEMA_DIR / "dead_letter.v1.json").read_text())
    old["properties"]["reason"]["pattern"] = "^[a-z][a-z0-9_]*(?![\\s\\S])"
    old["x-recstream-order"] = "score descending"
    schema = tmp_path / "old.json"
    schema.write_text(json.dumps(old))
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps({"schemas": {"dead_letter": str(schema)}, "documents": []}))
    ajv = _report(_run(["node", "check_ajv.mjs", str(spec)], node_tools))
    assert ajv["problems"] and "x-recstream-order" in json.dumps(ajv["problems"])
    go = _report(_run([str(go_checker), str(spec)], PORTABLE))
    assert go["problems"] and go["problems"][0]["kind"] == "compile"


def test_asyncapi_document_parses_and_its_payloads_are_the_schema_files(
    node_tools: Path, tmp_path: Path
) -> None:
    """The AsyncAPI parser accepts schemas/asyncapi.yaml, in the repo and in the exported bundle."""
    from schemas.bundle import export_bundle
    from schemas.registry import load_schema

    export_bundle(tmp_path / "bundle", "test")
    for doc in (SCHEMA_DIR.parent / "asyncapi.yaml", tmp_path / "bundle" / "asyncapi.yaml"):
        report = _report(_run(["node", "check_asyncapi.mjs", str(doc)], node_tools))
        assert report["errors"] == [] and report["version"] == "3.0.0", report["errors"][:5]
        assert report["channels"] == report["operations"] == report["messages"] == len(SCHEMA_FILES)
        names = {"click": "click", "upload": "upload", "review": "review", "list": "recs_updated"}
        names["deadLetter"] = "dead_letter"
        assert {m: load_schema(names[m])["required"] for m in names} == report["payloads"]
    # Negative control: an operation on a channel that does not exist is an error.
    broken = tmp_path / "bundle" / "broken.yaml"
    text = (tmp_path / "bundle" / "asyncapi.yaml").read_text()
    broken.write_text(text.replace("$ref: '#/channels/reviews'\n", "$ref: '#/channels/nowhere'\n", 1))
    report = _report(_run(["node", "check_asyncapi.mjs", str(broken)], node_tools))
    assert report["errors"], report


def test_exported_bundle_is_the_shipped_files(tmp_path: Path) -> None:
    import hashlib

    from schemas.bundle import export_bundle

    written = export_bundle(tmp_path, "9.9.9")
    manifest = json.loads((tmp_path / "bundle.json").read_text())
    assert manifest["recstream_version"] == "9.9.9"
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(manifest["sha256"]) | {"bundle.json"}
    for rel, digest in manifest["sha256"].items():
        assert hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest() == digest
    for name, file in SCHEMA_FILES.items():
        assert (tmp_path / "json" / file).read_bytes() == (SCHEMA_DIR / file).read_bytes()
        assert manifest["contracts"][name]["schema"] == f"json/{file}"
        assert get_validator(name).is_valid(json.loads((tmp_path / "examples" / f"{name}.json").read_text()))


def test_schema_export_command_writes_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recstream.cli import main

    with pytest.raises(SystemExit) as done:
        main(["schema", "export", str(tmp_path / "contracts")])
    assert done.value.code == 0
    assert (tmp_path / "contracts" / "asyncapi.yaml").exists()
    assert "bundle.json" in capsys.readouterr().out


def test_openapi_document_of_the_read_api_validates(node_tools: Path, tmp_path: Path) -> None:
    """swagger-parser validates schemas/openapi.yaml (OpenAPI 3.1) with its $refs resolved."""
    from schemas.bundle import export_bundle
    from schemas.registry import load_schema

    export_bundle(tmp_path / "bundle", "test")
    for doc in (SCHEMA_DIR.parent / "openapi.yaml", tmp_path / "bundle" / "openapi.yaml"):
        report = _report(_run(["node", "check_openapi.mjs", str(doc)], node_tools))
        assert report["errors"] == [] and report["openapi"] == "3.1.0", report["errors"]
        assert "/v1/users/{user_id}/recommendations" in report["paths"]
        assert report["list_required"] == load_schema("recs_updated")["required"]
    broken = tmp_path / "bundle" / "broken.yaml"
    text = (tmp_path / "bundle" / "openapi.yaml").read_text()
    broken.write_text(text.replace("operationId: getRecommendations", "operationId: [not, a, string]", 1))
    assert _report(_run(["node", "check_openapi.mjs", str(broken)], node_tools))["errors"]
