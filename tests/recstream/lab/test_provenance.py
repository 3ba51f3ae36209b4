"""Provenance of reports: commit and tree state, machine, chosen settings, never a secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from recstream.lab import provenance as pv
from recstream.settings import REPO_ROOT, SECRET_FIELDS, load_settings


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("reports/\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_git_state_names_the_commit_and_sees_changes_but_not_ignored_files(repo: Path) -> None:
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    clean = pv.git_state(repo)
    assert clean["commit"] == head.stdout.strip() and clean["commit_short"] == clean["commit"][:10]
    assert clean["branch"] == "main" and clean["dirty"] is False and clean["dirty_paths"] == []
    (repo / "reports").mkdir()
    (repo / "reports" / "bench.json").write_text("{}")  # what a run writes: ignored
    assert pv.git_state(repo)["dirty"] is False
    (repo / "a.py").write_text("x = 2\n")
    (repo / "new.py").write_text("")
    dirty = pv.git_state(repo)
    assert dirty["dirty"] is True and dirty["dirty_count"] == 2
    assert sorted(dirty["dirty_paths"]) == ["a.py", "new.py"]


def test_git_state_outside_a_repository_says_unknown(tmp_path: Path) -> None:
    state = pv.git_state(tmp_path)
    assert state["commit"] is None and state["dirty"] is None


def test_parse_porcelain_and_meminfo() -> None:
    assert pv.parse_porcelain(" M a.py\n?? b/c.txt\nR  old.py -> new.py\n") == ["a.py", "b/c.txt", "new.py"]
    mem = "MemTotal:       24683620 kB\nMemFree:  1 kB\nMemAvailable:   16851212 kB\n"
    assert pv.parse_meminfo(mem) == {"memory_gib": 23.54, "memory_available_gib": 16.07}
    assert pv.parse_meminfo("") == {}


def test_settings_are_the_chosen_list_and_never_a_secret(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "RECSTREAM_BATCH_SIZE": "64",
            "RECSTREAM_CASSANDRA_USERNAME": "bench",
            "RECSTREAM_CASSANDRA_PASSWORD": "hunter2-secret",
        }
    )
    recorded = pv.settings_of(settings)
    assert recorded["batch_size"] == 64 and list(recorded) == [
        n for n in pv.RECORDED_SETTINGS if hasattr(settings, n)
    ]
    # Even when asked for by name, secrets and their files are skipped.
    asked = pv.settings_of(settings, ("cassandra_password", "cassandra_password_file", "k"))
    assert asked == {"k": settings.k}
    assert not set(pv.RECORDED_SETTINGS) & set(SECRET_FIELDS)
    whole = json.dumps(pv.provenance(settings))
    assert "hunter2" not in whole and "password" not in whole


def test_provenance_records_code_machine_and_whose_settings(repo: Path) -> None:
    p = pv.provenance(load_settings({}), root=repo)
    assert p["commit"] and p["dirty"] is False and p["settings_from"] == "measured process"
    m = p["machine"]
    assert m["cores"] and m["python"] and set(m["load_average"]) == {"1m", "5m", "15m"}
    json.dumps(p)  # JSON-ready as it is
    assert pv.provenance(root=repo)["settings_from"] == "environment of the report writer"


def test_with_provenance_adds_once_and_commit_of_reads_it() -> None:
    report = {"outcome": "pass"}
    stamped = pv.with_provenance(report)
    assert "provenance" not in report and stamped["outcome"] == "pass"
    assert pv.commit_of(stamped) == stamped["provenance"]["commit"]
    kept = pv.with_provenance({"provenance": {"commit": "abc"}})
    assert pv.commit_of(kept) == "abc" and pv.commit_of({"outcome": "pass"}) is None


def test_describe_is_one_line() -> None:
    prov = {
        "commit_short": "4e09550037",
        "dirty": True,
        "date": "2026-11-23T03:32:00+00:00",
        "machine": {"host": "vm", "cores": 2, "memory_gib": 23.54, "load_average": {"1m": 4.2}},
    }
    assert pv.describe(prov) == (
        "commit `4e09550037` (dirty tree), 2026-11-23T03:32:00+00:00, vm, 2 cores, 23.5 GiB, load 4.20"
    )
    assert pv.describe({}).startswith("commit `unknown commit` (tree state unknown)")


def test_a_folder_without_its_own_git_is_not_a_checkout_even_inside_a_repository(repo: Path) -> None:
    """A package installed inside some other repository must not record that one's commit."""
    inner = repo / "venv" / "site-packages"
    inner.mkdir(parents=True)
    state = pv.git_state(inner)
    assert state["checkout"] is False and state["commit"] is None and state["dirty"] is None
    assert pv.git_state(repo)["checkout"] is True


def test_installed_code_records_not_a_checkout_and_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pv, "source_checkout", lambda: None)
    p = pv.provenance(load_settings({}))
    assert p["checkout"] is False and p["commit"] is None and p["dirty"] is None
    assert p["version"] == pv.installed_version() and p["version"]
    assert pv.describe(p).startswith(f"recstream {p['version']} (not a checkout), ")
    assert pv.commit_of({"provenance": p}) is None
    json.dumps(p)


def test_the_running_checkout_is_recorded_by_default() -> None:
    state = pv.git_state()
    if (REPO_ROOT / ".git").exists():  # a clone; a copy of its files without .git is no checkout
        assert state["checkout"] is True and state["commit"]
    else:
        assert state["checkout"] is False and state["commit"] is None
