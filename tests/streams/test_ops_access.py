"""Who may read the ops page and ``/api/*``: the pure access rule of streams/web/access.py.

The live check (a worker bound beyond loopback, with and without the token) is in
tests/streams/test_worker_startup_live.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from recstream.settings import SettingsError, load_settings
from streams.web.access import WebAccess, is_loopback

TOKEN = "s3cret-token-0123456789"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_binds(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "worker.example", ""])
def test_other_binds_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_loopback_serves_everyone() -> None:
    access = WebAccess.from_settings(load_settings({}))
    assert not access.required and access.refusal(None) is None


def test_beyond_loopback_without_a_token_serves_nobody() -> None:
    access = WebAccess.from_settings(load_settings({"RECSTREAM_WEB_HOST": "0.0.0.0"}))
    assert access.required and access.token is None
    reason = access.refusal(f"Bearer {TOKEN}")
    assert reason is not None and "RECSTREAM_WEB_TOKEN" in reason


def test_beyond_loopback_the_token_is_required() -> None:
    s = load_settings({"RECSTREAM_WEB_HOST": "0.0.0.0", "RECSTREAM_WEB_TOKEN": TOKEN})
    access = WebAccess.from_settings(s)
    assert access.refusal(f"Bearer {TOKEN}") is None
    assert access.refusal(f"bearer   {TOKEN} ") is None
    assert access.refusal(_basic("ops", TOKEN)) is None
    for bad in (None, "", "Bearer", f"Bearer {TOKEN}x", f"Token {TOKEN}", _basic("ops", "nope"), "Basic !!!"):
        reason = access.refusal(bad)
        assert reason is not None and TOKEN not in reason, bad


def test_token_from_a_file_never_shown(tmp_path: Path) -> None:
    f = tmp_path / "web-token"
    f.write_text(TOKEN + "\n")
    s = load_settings({"RECSTREAM_WEB_HOST": "0.0.0.0", "RECSTREAM_WEB_TOKEN_FILE": str(f)})
    assert s.web_token is not None and s.web_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())
    assert WebAccess.from_settings(s).refusal(f"Bearer {TOKEN}") is None


def test_short_tokens_are_refused_at_start_without_quoting_them() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"RECSTREAM_WEB_TOKEN": "tiny-token"})
    assert "RECSTREAM_WEB_TOKEN" in str(err.value) and "tiny-token" not in str(err.value)
