"""The live ops page in headless Chromium, on a real worker fed with real events.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) driven by selenium.
The page must show the worker's numbers, update them when more events arrive, and show a user's
latest list with titles; a JavaScript error on the page fails the test. A screenshot is saved
under the test's tmp dir (its path is printed).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recstream.testing import Deployment
from streams.topics import input_topics
from tests.streams.ops_support import bad_json, clicks, get_json, produce, uploads

pytestmark = pytest.mark.integration

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--window-size=1280,1500",
)
SECONDS = re.compile(r"\d[\d,]*(\.\d+)? (ms|s)")


@pytest.fixture()
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_bin:
        pytest.fail(
            "needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver"
        )
    opts = Options()
    opts.binary_location = chromium
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)  # explicit paths: no downloads
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: Any, element_id: str) -> str:
    return str(driver.execute_script("return document.getElementById(arguments[0]).textContent;", element_id))


def _rows(driver: Any, table_id: str) -> list[list[str]]:
    """Cell texts of a table's body, read in one script call (the page replaces rows on every poll)."""
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
        "  .map((tr) => Array.from(tr.cells).map((td) => td.textContent));",
        table_id,
    )
    return [[str(c) for c in r] for r in rows]


def _wait(driver: Any, what: str, cond: Callable[[Any], Any], timeout_s: float = 90) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(cond)
    except TimeoutException:
        body = driver.find_element("tag name", "body").text
        raise AssertionError(f"page never showed {what}; page text:\n{body}") from None


def test_ops_page_shows_live_numbers_and_a_users_list(
    deployment_factory: Callable[[], Deployment], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    env = deployment_factory()
    port = env.start_worker().port
    shot = tmp_path / "ops-page.png"
    try:
        browser.get(f"http://127.0.0.1:{port}/ops")
        assert browser.title == "recstream · ops"
        _wait(browser, "a first successful poll", lambda d: _text(d, "status").startswith("live"))
        assert (
            _text(browser, "events-total") == "0" and _text(browser, "fresh-p99") == "\u2013"
        )  # en dash: no value yet
        assert _text(browser, "worker-group") == env.settings.consumer_group

        # Events arrive: the numbers appear.
        produce(env.settings, uploads(16))
        _wait(browser, "16 events", lambda d: _text(d, "events-total") == "16")
        # Freshness is observed when a list's delivery completes, after the event is counted.
        _wait(browser, "16 lists delivered", lambda d: _text(d, "fresh-count") == "16")
        assert float(_text(browser, "throughput")) > 0
        for pid in ("fresh-p50", "fresh-p95", "fresh-p99"):
            assert SECONDS.fullmatch(_text(browser, pid)), (pid, _text(browser, pid))
        assert _text(browser, "worker-catalog") == "16 items"

        # More events: the numbers change, dead letters and lag appear.
        produce(env.settings, clicks(["ops-alice", "ops-bob"], ["ops-m1", "ops-m2", "ops-m3"]) + bad_json(2))
        _wait(browser, "24 events", lambda d: _text(d, "events-total") == "24")
        _wait(browser, "the dead letters", lambda d: _rows(d, "dlq-table") == [["invalid_json", "2"]])
        # Click, upload, review and the retry topic, 2 partitions each.
        _wait(browser, "lag of 4 topics x 2 partitions", lambda d: len(_rows(d, "lag-table")) == 8)
        _wait(browser, "22 lists delivered", lambda d: _text(d, "fresh-count") == "22")
        assert _text(browser, "dlq-total") == "2"
        inputs = set(input_topics(env.settings))
        assert {r[0] for r in _rows(browser, "lag-table")} == inputs
        status, summary = get_json(port, "/api/ops/summary")
        assert status == 200 and summary["throughput"]["events_total"] == 24  # page and API agree

        # A user's latest list, with the uploads' titles.
        box = browser.find_element(By.ID, "user-input")
        box.clear()
        box.send_keys("ops-alice")
        browser.find_element(By.ID, "user-submit").click()
        rows = _wait(browser, "alice's list", lambda d: (r := _rows(d, "list-table")) and len(r) == 10 and r)
        assert [r[0] for r in rows] == [str(n) for n in range(1, 11)]
        for _, item, title, score in rows:
            assert title == f"Ops film {item.removeprefix('ops-m')}", (item, title)
            assert item not in {"ops-m1", "ops-m2", "ops-m3"}  # clicked items are excluded
            float(score)
        assert "ops-alice" in _text(browser, "list-meta") and "click" in _text(browser, "list-meta")
        browser.save_screenshot(str(shot))
        print(f"ops page screenshot: {shot}")

        # An unknown user says so instead of showing a stale list.
        box.clear()
        box.send_keys("nobody-here")
        browser.find_element(By.ID, "user-submit").click()
        _wait(browser, "the unknown-user message", lambda d: "no list published" in _text(d, "list-meta"))
        assert _rows(browser, "list-table") == []

        # No script error, CSP violation or failed request, except the 404 asked for above.
        errors = [
            e
            for e in browser.get_log("browser")
            if e["level"] == "SEVERE" and "/api/users/nobody-here/list - " not in e["message"]
        ]
        assert errors == [], errors
    finally:
        if not shot.exists():  # failed before the screenshot: keep what the page showed
            failed = tmp_path / "ops-page-failure.png"
            browser.save_screenshot(str(failed))
            print(f"ops page screenshot (failure): {failed}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
