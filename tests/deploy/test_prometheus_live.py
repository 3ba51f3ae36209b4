"""A real Prometheus scrapes a real worker: the dashboard's queries return the worker's series.

``/usr/bin/prometheus`` (Debian package ``prometheus``, installed by ``.ci/run``) runs on a free
loopback port with a generated scrape config (1 s interval) pointing at a worker started by
``deployment_factory``; events are produced while it scrapes, then the freshness p99 and
``recstream_events_total`` are read back through Prometheus's HTTP API.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstream.metrics import _LATENCY_BUCKETS
from recstream.testing import Deployment, free_port
from tests.streams.conftest import deployment_factory  # noqa: F401 - fixture
from tests.streams.ops_support import bad_json, clicks, get_json, produce, summary_when, uploads, wait_until

pytestmark = pytest.mark.integration

JOB = "recstream-worker"
P99 = "histogram_quantile(0.99, sum(rate(recstream_freshness_seconds_bucket[1m])) by (le))"


def _scrape_config(worker_port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": JOB,
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
            }
        ],
    }


def _query(prom_port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def _scalar(prom_port: int, expr: str) -> float | None:
    """The value of a one-series query, None when it has no finite value yet."""
    result = _query(prom_port, expr)
    if len(result) != 1:
        return None
    value = float(result[0]["value"][1])
    return value if math.isfinite(value) else None


def _bucket_of(value: float) -> tuple[float, float]:
    """The histogram bucket ``(lower, upper]`` that holds ``value``."""
    lower = 0.0
    for upper in (*_LATENCY_BUCKETS, math.inf):
        if value <= upper:
            return lower, upper
        lower = upper
    raise AssertionError(value)


def _start_prometheus(tmp_path: Path, worker_port: int) -> tuple[subprocess.Popen[bytes], int, Path]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("needs /usr/bin/prometheus: apt-get install -y prometheus")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(_scrape_config(worker_port)))
    port = free_port()
    log = tmp_path / "prometheus.log"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, port, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_prometheus_scrapes_worker_freshness_and_events(
    deployment_factory: Callable[[], Deployment],  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    env = deployment_factory()
    worker_port = env.start_worker().port
    proc, prom, log = _start_prometheus(tmp_path, worker_port)
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {log.read_text()[-3000:]}")
            try:
                return _scalar(prom, f'up{{job="{JOB}"}}') == 1.0
            except OSError:
                return False  # not listening yet

        wait_until(up, "prometheus to scrape the worker", timeout_s=60)

        # Events while Prometheus scrapes: uploads first (the catalogue), then two waves of clicks.
        produce(env.settings, uploads(12))
        summary_when(worker_port, lambda s: s["throughput"]["events_total"] >= 12, "the uploads")
        produce(env.settings, clicks(["prom-a", "prom-b"], ["ops-m1", "ops-m2"]) + bad_json(1))
        time.sleep(2.0)
        produce(env.settings, clicks(["prom-c"], ["ops-m3", "ops-m4", "ops-m5"]))
        total = 12 + 4 + 1 + 3
        summary = summary_when(worker_port, lambda s: s["throughput"]["events_total"] >= total, "every event")

        # recstream_events_total: the worker's series, by type and outcome, summing to what was sent.
        got = wait_until(
            lambda: _scalar(prom, f'sum(recstream_events_total{{job="{JOB}"}})') == total,
            f"Prometheus to see {total} events",
            timeout_s=30,
        )
        assert got
        series = {
            (r["metric"]["type"], r["metric"]["outcome"]): float(r["value"][1])
            for r in _query(prom, f'recstream_events_total{{job="{JOB}"}}')
        }
        assert series == {("upload", "processed"): 12, ("click", "processed"): 7, ("click", "dead_letter"): 1}
        rows = _query(prom, f'recstream_events_total{{job="{JOB}"}}')
        assert len(rows) == 3, rows
        for r in rows:
            assert r["metric"]["instance"] == f"127.0.0.1:{worker_port}"

        # The dashboard's freshness p99 over the worker's histogram: finite, sane, and in the
        # bucket of the exact p99 the worker computes over the same lists.
        p99 = wait_until(lambda: _scalar(prom, P99), "a finite freshness p99", timeout_s=30)
        assert 0 < p99 <= 10.0, p99
        status, now = get_json(worker_port, "/api/ops/summary")
        exact = now["freshness"]["p99"] if status == 200 else summary["freshness"]["p99"]
        lower, upper = _bucket_of(exact)
        assert lower <= p99 <= upper, (p99, exact, (lower, upper))
    finally:
        _stop(proc)
    assert proc.returncode is not None
