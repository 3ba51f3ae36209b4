"""Settings: defaults, environment parsing, validation, unknown keys rejected, writable paths."""

from __future__ import annotations

from pathlib import Path

import pytest

import recstream
from recstream import settings as settings_module
from recstream.settings import (
    REPO_ROOT,
    WRITABLE_PATH_FIELDS,
    Settings,
    SettingsError,
    known_env_names,
    load_settings,
    source_checkout,
)


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


# --- writable paths ----------------------------------------------------------------------------

PACKAGE_DIR = Path(recstream.__file__).resolve().parent


def _paths(s: Settings) -> dict[str, Path]:
    return {name: getattr(s, name) for name in WRITABLE_PATH_FIELDS}


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@pytest.fixture()
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As if installed from a wheel: no source checkout; a private HOME, XDG_DATA_HOME unset."""
    monkeypatch.setattr(settings_module, "source_checkout", lambda: None)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return tmp_path / "user"


def test_every_path_field_is_listed_as_writable() -> None:
    paths = {n for n, f in Settings.model_fields.items() if f.annotation is Path}
    assert paths == set(WRITABLE_PATH_FIELDS)


def test_from_the_checkout_the_defaults_are_the_checkout_layout_as_before() -> None:
    assert source_checkout() == REPO_ROOT
    s = load_settings({})
    assert _paths(s) == {
        "home": REPO_ROOT,
        "stack_dir": REPO_ROOT / ".stack",
        "model_dir": REPO_ROOT / "artifacts" / "models",
        "reports_dir": REPO_ROOT / "reports",
        "docs_dir": REPO_ROOT / "docs",
        "cache_dir": Path.home() / ".cache" / "recstream",
        "embedding_cache_dir": REPO_ROOT / "artifacts" / "cache",
    }


@pytest.mark.parametrize("in_checkout", [True, False])
def test_recstream_home_moves_every_writable_default(
    in_checkout: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not in_checkout:
        monkeypatch.setattr(settings_module, "source_checkout", lambda: None)
    home = tmp_path / "data"
    s = load_settings({"RECSTREAM_HOME": str(home)})
    assert _paths(s) == {
        "home": home,
        "stack_dir": home / "stack",
        "model_dir": home / "models",
        "reports_dir": home / "reports",
        "docs_dir": home / "reports",
        "cache_dir": home / "cache",
        "embedding_cache_dir": home / "cache" / "embeddings",
    }


def test_installed_defaults_are_under_the_xdg_data_home(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings({})
    home = installed / ".local" / "share" / "recstream"
    assert s.home == home and s.stack_dir == home / "stack" and s.model_dir == home / "models"
    assert s.reports_dir == s.docs_dir == home / "reports"
    assert s.cache_dir == installed / ".cache" / "recstream"  # caches: the per-user cache folder
    assert s.embedding_cache_dir == s.cache_dir / "embeddings"
    monkeypatch.setenv("XDG_DATA_HOME", str(installed / "xdg"))
    assert load_settings({}).stack_dir == installed / "xdg" / "recstream" / "stack"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/xdg")  # the XDG spec: ignore relative paths
    assert load_settings({}).home == home


def test_explicit_paths_win_in_the_checkout(tmp_path: Path) -> None:
    s = load_settings({"RECSTREAM_STACK_DIR": str(tmp_path / "s"), "RECSTREAM_DOCS_DIR": str(tmp_path / "d")})
    assert s.stack_dir == tmp_path / "s" and s.docs_dir == tmp_path / "d"
    assert s.model_dir == REPO_ROOT / "artifacts" / "models" and s.reports_dir == REPO_ROOT / "reports"


def test_explicit_paths_win_over_home(installed: Path, tmp_path: Path) -> None:
    s = load_settings(
        {
            "RECSTREAM_HOME": str(tmp_path / "h"),
            "RECSTREAM_STACK_DIR": str(tmp_path / "s"),
            "RECSTREAM_REPORTS_DIR": str(tmp_path / "r"),
            "RECSTREAM_CACHE_DIR": str(tmp_path / "c"),
        }
    )
    assert s.stack_dir == tmp_path / "s" and s.model_dir == tmp_path / "h" / "models"
    assert s.reports_dir == s.docs_dir == tmp_path / "r"  # the Markdown goes with the JSON
    assert s.embedding_cache_dir == tmp_path / "c" / "embeddings"
    both = load_settings({"RECSTREAM_DOCS_DIR": str(tmp_path / "d")}, model_dir=tmp_path / "m")
    assert both.docs_dir == tmp_path / "d" and both.model_dir == tmp_path / "m"
    no_home = load_settings({"RECSTREAM_STACK_DIR": str(tmp_path / "s")})
    assert no_home.stack_dir == tmp_path / "s" and no_home.model_dir == no_home.home / "models"


def test_empty_means_unset_and_a_tilde_is_the_user_home(installed: Path) -> None:
    s = load_settings({"RECSTREAM_HOME": "", "RECSTREAM_STACK_DIR": ""})
    assert s.stack_dir == installed / ".local" / "share" / "recstream" / "stack"
    assert load_settings({"RECSTREAM_HOME": "~/rs"}).model_dir == installed / "rs" / "models"


def test_installed_defaults_never_point_into_the_package_or_its_site_packages(installed: Path) -> None:
    s = load_settings({})
    for name, value in s.model_dump().items():
        if isinstance(value, Path):
            assert not _inside(value, PACKAGE_DIR), f"{name}={value} is inside {PACKAGE_DIR}"
            assert not _inside(value, REPO_ROOT), f"{name}={value} is inside {REPO_ROOT}"
    assert all(_inside(p, installed) for p in _paths(s).values())


def test_path_settings_keep_rejecting_unknown_keys_and_stay_frozen(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="RECSTREAM_HOME_DIR"):
        load_settings({"RECSTREAM_HOME_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="RECSTREAM_REPORT_DIR"):
        load_settings({"RECSTREAM_REPORT_DIR": str(tmp_path)})  # typo: REPORTS
    s = load_settings({"RECSTREAM_HOME": str(tmp_path)})
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        s.stack_dir = tmp_path  # type: ignore[misc]
    assert "RECSTREAM_HOME" in known_env_names()


def test_a_checkout_is_recstreams_own_pyproject_outside_site_packages(tmp_path: Path) -> None:
    ours = tmp_path / "clone"
    ours.mkdir()
    (ours / "pyproject.toml").write_text('[project]\nname = "recstream"\n')
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "pyproject.toml").write_text('[project]\nname = "recstream"\n')
    assert settings_module._is_checkout(ours)
    assert not settings_module._is_checkout(other)
    assert not settings_module._is_checkout(site)
    assert not settings_module._is_checkout(tmp_path / "missing")
