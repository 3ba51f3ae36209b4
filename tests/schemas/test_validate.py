"""``recstream validate``: the pure line validator and the command (run as a subprocess)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.limits import Limits
from schemas.registry import load_example
from schemas.validate import LineResult, iter_lines, validate_lines
from tests.schemas.strategies import LIMITS, NOW_MS

RECSTREAM = Path(sys.executable).parent / "recstream"
GOOD = [load_example(n).replace(b"\n", b"") for n in ("click", "upload", "review")]


def run_cli(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    environ.update(env)
    return subprocess.run(
        [str(RECSTREAM), "validate", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_iter_lines_handles_terminators_and_overlong_lines() -> None:
    data = b"a\r\nbb\n" + b"x" * 50 + b"\n\nlast"
    assert list(iter_lines(io.BytesIO(data), 10)) == [b"a", b"bb", 50, b"", b"last"]
    assert list(iter_lines(io.BytesIO(b"y" * 25), 10)) == [25]
    assert list(iter_lines(io.BytesIO(b""), 10)) == []


def test_validate_lines_reports_each_line() -> None:
    lines: list[bytes | int] = [*GOOD, b"", b"{", 5000, b'{"type":"click"}']
    results = list(validate_lines(lines, limits=LIMITS, now_ms=NOW_MS))
    assert [r.ok for r in results] == [True, True, True, False, False, False, False]
    assert [r.line for r in results] == list(range(1, 8))
    assert results[3].error is not None and results[3].error.startswith("empty: ")
    assert results[4].error is not None and results[4].error.startswith("invalid_json: ")
    assert results[5].error == f"too_large: line is 5000 bytes, limit {LIMITS.max_message_bytes}"
    assert json.loads(results[0].to_json()) == {"line": 1, "ok": True, "error": None}


def test_topic_is_inferred_from_type() -> None:
    # A file mixes types; each line is checked as if it came from its own topic.
    results = list(validate_lines(GOOD, limits=Limits(topic_click="x"), now_ms=NOW_MS))
    assert len(results) == len(GOOD)
    assert all(r == LineResult(r.line, True, None) for r in results)


def test_cli_all_valid_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(b"\n".join(GOOD) + b"\n")
    proc = run_cli(str(path))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [
        {"line": n, "ok": True, "error": None} for n in (1, 2, 3)
    ]


def test_cli_invalid_line_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    bad_click = json.loads(GOOD[0])
    bad_click["weight"] = "heavy"
    path.write_bytes(GOOD[0] + b"\n" + json.dumps(bad_click).encode() + b"\n" + b"\xff\n")
    proc = run_cli(str(path))
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert out[0] == {"line": 1, "ok": True, "error": None}
    assert out[1] == {"line": 2, "ok": False, "error": "invalid_field: weight: must be a number"}
    assert out[2]["ok"] is False and out[2]["error"].startswith("invalid_utf8: ")


def test_cli_reads_stdin() -> None:
    proc = run_cli("-", stdin=GOOD[1] + b"\n[]\n")
    assert proc.returncode == 1
    assert [json.loads(line)["ok"] for line in proc.stdout.splitlines()] == [True, False]


@pytest.mark.parametrize("target", ["missing.jsonl", "."])
def test_cli_unreadable_file_exits_2(tmp_path: Path, target: str) -> None:
    proc = run_cli(str(tmp_path / target))
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr and proc.stdout == ""


def test_cli_uses_settings_limits(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(GOOD[0][:-1] + b', "pad": "' + b"x" * 2000 + b'"}\n')
    assert run_cli(str(path)).returncode == 0
    proc = run_cli(str(path), RECSTREAM_MAX_MESSAGE_BYTES="1024")
    assert proc.returncode == 1 and '"too_large: line is' in proc.stdout
