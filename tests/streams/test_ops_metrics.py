"""A running worker's /metrics shows exactly the metrics of the README's metrics table."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from recstream.testing import Deployment
from tests.streams.ops_support import bad_json, clicks, http, produce, summary_when, uploads

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- metrics-table:start -->", "<!-- metrics-table:end -->"


def documented_metrics(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """``{name: (type, labels)}`` from the README's metrics table."""
    table = text[text.index(START) + len(START) : text.index(END)]
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for line in table.strip().splitlines()[2:]:  # skip the header and the |---| row
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        out[name] = (cells[1], frozenset(re.findall(r"`([a-z_]+)`", cells[2])))
    return out


def exposed_metrics(text: str) -> tuple[dict[str, str], dict[str, set[frozenset[str]]]]:
    """Families (``# TYPE`` lines) and the label-name sets of their samples, ``recstream_*`` only."""
    types = dict(re.findall(r"^# TYPE (recstream_\w+) (\w+)$", text, re.M))
    labels: dict[str, set[frozenset[str]]] = defaultdict(set)
    for name, body in re.findall(r"^(recstream_\w+)(?:\{([^}]*)\})? \S+$", text, re.M):
        family = next((f for f in types if name in (f, f + "_bucket", f + "_sum", f + "_count")), name)
        labels[family].add(frozenset(re.findall(r'(\w+)="', body)) - {"le"})
    return types, labels


def test_readme_table_parses() -> None:
    doc = documented_metrics(README.read_text())
    assert doc["recstream_events_total"] == ("counter", frozenset({"type", "outcome"}))
    assert doc["recstream_freshness_seconds"] == ("histogram", frozenset())
    assert len(doc) >= 10


@pytest.mark.integration
def test_worker_metrics_match_the_readme_table(deployment_factory: Callable[[], Deployment]) -> None:
    documented = documented_metrics(README.read_text())
    env = deployment_factory()
    port = env.start_worker().port
    produce(env.settings, uploads(12))
    summary_when(port, lambda s: s["throughput"]["events_total"] >= 12, "the uploads")
    produce(env.settings, clicks(["m-alice"], ["ops-m1", "ops-m2"]) + bad_json(1))
    summary_when(port, lambda s: s["throughput"]["events_total"] >= 15 and s["lag"], "clicks and lag")

    status, _, body = http(port, "/metrics")
    assert status == 200
    types, labels = exposed_metrics(body.decode())
    # prometheus_client adds a *_created gauge beside each counter and histogram: not separate metrics.
    created = {n for n in types if n.endswith("_created") and {n[:-8], n[:-8] + "_total"} & set(types)}
    exposed = {n: t for n, t in types.items() if n not in created}

    assert set(documented) - set(exposed) == set(), "documented in the README but not exported"
    assert set(exposed) - set(documented) == set(), "exported but missing from the README's metrics table"
    assert len(documented) >= 10, documented
    for name, (kind, doc_labels) in documented.items():
        assert exposed[name] == kind, (name, exposed[name], kind)
        for got in labels.get(name, set()):
            assert got == doc_labels, (name, sorted(got), sorted(doc_labels))
    # The traffic above produced samples for the pipeline's metrics.
    for name in (
        "recstream_events_total",
        "recstream_dead_letters_total",
        "recstream_freshness_seconds",
        "recstream_stage_seconds",
        "recstream_triton_request_seconds",
        "recstream_consumer_lag",
        "recstream_catalog_items",
        "recstream_model_info",
    ):
        assert labels.get(name), f"{name} has no samples"
    events = re.findall(r"^recstream_events_total\{[^}]*\} (\S+)$", body.decode(), re.M)
    assert sum(float(v) for v in events) == 15
