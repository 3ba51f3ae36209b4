"""Validation of the deployment assets under ``deploy/`` (no server, no Docker, no cluster).

* Prometheus: ``promtool check config``, ``promtool check rules`` and the alert unit tests
  (``promtool test rules deploy/prometheus/alerts_test.yml``); promtool comes from the Debian
  ``prometheus`` package (``.ci/run`` installs it) and its absence is a failure, not a skip.
* Grafana: dashboard JSON structure, every PromQL expression parsed by promtool, only metric
  names recstream exports, provisioning consistent with the compose mounts.
* Docker Compose: ``docker compose config`` when the compose plugin works here, always the
  compose-spec JSON schema (vendored by the ``check-jsonschema`` PyPI package) plus structure:
  services, images, GPU reservation, loopback-only ports, and every ``RECSTREAM_*`` value
  accepted by :func:`recstream.settings.load_settings`.
* Kubernetes: the kustomize overlays rendered by a small pure-Python renderer (limited to the
  kustomization fields these manifests use; cross-checked against ``kubectl kustomize`` when
  kubectl is installed), built-in kinds validated against the Kubernetes JSON schemas of the
  ``kubernetes-validate`` PyPI package, operator CRs (Strimzi, K8ssandra, KEDA, Prometheus
  Operator) checked structurally, and cross-references (ConfigMaps, Secrets, Services, probes,
  consumer group, topics, partitions, security contexts) checked between files.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstream import metrics
from recstream.settings import Settings, known_env_names, load_settings
from streams.topics import catalog_topic, input_topics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu", "gpu")
K8S_VERSION = "1.30"
WORKER_JOB, TRITON_JOB = "recstream-worker", "triton"

Doc = dict[str, Any]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def promtool() -> str:
    """Path of promtool, or a test failure explaining how to install it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: install the Debian package `prometheus` "
            "(apt-get install prometheus; .ci/run does this in CI)"
        )
    return path


def run_promtool(*args: str, cwd: Path = PROM) -> str:
    proc = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{out}"
    return out


def exported_metric_names() -> set[str]:
    """Every series name recstream's metrics module exports (with type suffixes)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    return {f.name + s for f in metric_families() for s in suffixes[f.type]}


def metric_families() -> list[Any]:
    """The metric families defined in :mod:`recstream.metrics`."""
    from prometheus_client.metrics import MetricWrapperBase

    objs = [o for o in vars(metrics).values() if isinstance(o, MetricWrapperBase)]
    return [f for o in objs for f in o.describe()]


def metric_refs(expr: str) -> set[str]:
    """recstream_* metric names referenced by a PromQL expression (recording rules excluded)."""
    return set(re.findall(r"\brecstream_[a-z_]+\b", expr))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def settings_from(env: dict[str, str]) -> Settings:
    """Validate an environment the way a recstream process would at start."""
    return load_settings(environ={k: str(v) for k, v in env.items()})


def default_settings() -> Settings:
    return load_settings(environ={})


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------
def test_promtool_check_config() -> None:
    out = run_promtool("check", "config", "prometheus.yml")
    assert "SUCCESS" in out


def test_promtool_check_rules() -> None:
    out = run_promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in out


def test_promtool_alert_unit_tests() -> None:
    out = run_promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in out


def _rules() -> list[Doc]:
    return [r for g in load_yaml(PROM / "alerts.yml")["groups"] for r in g["rules"]]


def test_alerts_have_severity_and_annotations() -> None:
    alerts = [r for r in _rules() if "alert" in r]
    assert alerts
    for rule in alerts:
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, rule["alert"]
        ann = rule.get("annotations", {})
        assert ann.get("summary") and ann.get("description"), rule["alert"]


def test_alerts_cover_the_required_conditions() -> None:
    by_metric: dict[str, list[str]] = {}
    rules = _rules()
    records = {r["record"]: r["expr"] for r in rules if "record" in r}
    for rule in rules:
        if "alert" not in rule:
            continue
        expr = rule["expr"]
        for rec, rec_expr in records.items():
            if rec in expr:
                expr += "\n" + rec_expr
        for name in metric_refs(expr) | ({"up"} if re.search(r"\bup\{", expr) else set()):
            by_metric.setdefault(name, []).append(rule["alert"])
    for needed in (
        "recstream_consumer_lag",
        "recstream_freshness_seconds_bucket",
        "recstream_dead_letters_total",
        "recstream_triton_errors_total",
        "recstream_triton_circuit_state",
        "up",
    ):
        assert needed in by_metric, f"no alert on {needed}"
    # Multi-window burn rate: a fast and a slow burn alert over the freshness SLO.
    slo = [r for r in rules if r.get("labels", {}).get("slo") == "freshness"]
    assert {r["labels"]["severity"] for r in slo} == {"critical", "warning"}
    # The worker-down alert selects the job name the PodMonitor / scrape config produce.
    assert f'up{{job="{WORKER_JOB}"}}' in next(
        r["expr"] for r in rules if r.get("alert") == "RecstreamWorkerDown"
    )


def test_rules_reference_only_exported_metrics() -> None:
    known = exported_metric_names()
    rules = _rules()
    assert rules, "no rules in alerts.yml"
    for rule in rules:
        unknown = metric_refs(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown metrics {unknown}"


def test_slo_bucket_label_matches_the_client_format() -> None:
    # prometheus_client writes le="1.0"; a rule on le="1" would silently match nothing.
    les = {s.labels.get("le") for f in metrics.FRESHNESS.collect() for s in f.samples}
    assert "1.0" in les
    text = (PROM / "alerts.yml").read_text()
    assert 'recstream_freshness_seconds_bucket{le="1.0"}' in text


def test_alert_unit_tests_cover_worker_down_and_dead_letters() -> None:
    tests = load_yaml(PROM / "alerts_test.yml")["tests"]
    tested = {a["alertname"] for t in tests for a in t.get("alert_rule_test", []) if a.get("exp_alerts")}
    assert {"RecstreamWorkerDown", "RecstreamDeadLetterRateHigh"} <= tested


def test_scrape_config_matches_the_services() -> None:
    cfg = load_yaml(PROM / "prometheus.yml")
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert {"prometheus", WORKER_JOB, TRITON_JOB} <= set(jobs)
    defaults = default_settings()
    assert jobs[WORKER_JOB]["dns_sd_configs"][0]["port"] == defaults.web_port
    assert jobs[TRITON_JOB]["static_configs"][0]["targets"] == [f"triton:{defaults.triton_metrics_port}"]
    assert cfg["rule_files"], "no rule_files in prometheus.yml"
    for rule_file in cfg["rule_files"]:
        assert (PROM / rule_file).is_file()


# --------------------------------------------------------------------------------------------
# Grafana
# --------------------------------------------------------------------------------------------
def _dashboard() -> Doc:
    return json.loads((GRAFANA / "dashboards" / "recstream.json").read_text())


def _panels(dash: Doc) -> Iterator[Doc]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def test_dashboard_structure() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"]
    panels = list(_panels(dash))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert panels, "dashboard has no panels"
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t["datasource"]["uid"] == "${datasource}", p["title"]


def test_dashboard_covers_every_exported_metric() -> None:
    exprs = [t["expr"] for p in _panels(_dashboard()) for t in p.get("targets", [])]
    used = set().union(*(metric_refs(e) for e in exprs))
    unknown = used - exported_metric_names()
    assert not unknown, f"dashboard uses unknown metrics {unknown}"
    base = {re.sub(r"_(total|bucket|count|sum|info)$", "", n) for n in used}
    families = metric_families()
    assert families, "recstream.metrics defines no metric"
    for family in families:
        assert family.name in base, f"no panel shows {family.name}"


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """Each panel query, with Grafana variables substituted, parsed by promtool as a rule."""
    rules = []
    for p in _panels(_dashboard()):
        for t in p.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "5m").replace("$job", WORKER_JOB)
            rules.append({"record": f"dashboard:panel{p['id']}:{t['refId'].lower()}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool("check", "rules", str(path), cwd=tmp_path)


def test_grafana_provisioning_matches_compose() -> None:
    ds = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    prom = next(d for d in ds if d["type"] == "prometheus")
    assert prom["uid"] == _dashboard()["templating"]["list"][0]["current"]["value"]
    compose = load_yaml(COMPOSE)
    assert prom["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "recstream.yml")["providers"]
    path = providers[0]["options"]["path"]
    mounts = dict(v.split(":")[:2][::-1] for v in compose["services"]["grafana"]["volumes"])
    assert (DEPLOY / mounts[path]).resolve() == (GRAFANA / "dashboards").resolve()
    assert (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve() == (GRAFANA / "provisioning").resolve()


# --------------------------------------------------------------------------------------------
# Docker Compose and Dockerfiles
# --------------------------------------------------------------------------------------------
def _compose() -> Doc:
    return load_yaml(COMPOSE)


def _docker_compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    proc = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
    return proc.returncode == 0


def test_compose_matches_the_compose_spec_schema() -> None:
    try:
        from importlib.resources import files

        schema_text = (
            files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
        )
    except ModuleNotFoundError:
        pytest.fail(
            "the compose-spec JSON schema comes from the PyPI package check-jsonschema "
            "(dev dependency): pip install 'check-jsonschema>=0.34'"
        )
    import jsonschema

    schema = json.loads(schema_text)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(_compose()), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)
    # The schema is strict enough to catch a typo in a service key.
    broken = copy.deepcopy(_compose())
    broken["services"]["worker"]["enviroment"] = {}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_docker_compose_config(profile: str) -> None:
    """``docker compose config`` (offline) where the compose plugin exists; schema test above otherwise."""
    if not _docker_compose_works():
        pytest.skip("docker compose plugin not installed here; compose checked by schema + structure")
    proc = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--profile", profile, "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_compose_services_and_images() -> None:
    services = _compose()["services"]
    assert {"kafka", "cassandra", "triton", "triton-cpu", "init", "worker", "prometheus", "grafana"} <= set(
        services
    )
    assert re.fullmatch(r"apache/kafka:3\.9(\.\d+)?", services["kafka"]["image"])
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["cassandra"]["image"] == "cassandra:5.0"
    # GPU variant reserves a GPU; the CPU variant does not; both answer as "triton".
    gpu, cpu = services["triton"], services["triton-cpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"
    assert "deploy" not in cpu
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    assert "triton" in cpu["networks"]["default"]["aliases"]
    assert gpu["environment"]["RECSTREAM_TRITON_DEVICE"] == "gpu"
    assert cpu["environment"]["RECSTREAM_TRITON_DEVICE"] == "cpu"
    # Init job applies the schema before workers start.
    assert "schema" in "".join(services["init"]["command"]) and "apply" in "".join(
        services["init"]["command"]
    )
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert worker["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "ports" not in worker, "workers are scraped on the compose network; publishing would clash"
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name


def test_compose_ports_are_loopback_only() -> None:
    services = _compose()["services"]
    assert services, "no services in the compose file"
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_compose_recstream_env_is_valid() -> None:
    known = known_env_names()
    services = _compose()["services"]
    assert services, "no services in the compose file"
    for name, svc in services.items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{name}: use a mapping for environment"
        rec = {k: str(v) for k, v in env.items() if k.startswith("RECSTREAM_")}
        assert set(rec) <= known, f"{name}: unknown settings {set(rec) - known}"
        if not rec:
            continue
        s = settings_from(rec)
        assert s.web_host == "0.0.0.0", name
        assert s.kafka_bootstrap_servers == "kafka:9092"
        assert s.cassandra_hosts == ["cassandra"]
        assert s.triton_grpc_url == "triton:8001"


def _dockerfile_common(dockerfile: str) -> str:
    text = (DEPLOY / "docker" / dockerfile).read_text()
    env_names = set(re.findall(r"\b(RECSTREAM_[A-Z0-9_]+)=", text))
    assert env_names <= known_env_names(), env_names - known_env_names()
    ignore = (DEPLOY / "docker" / f"{dockerfile}.dockerignore").read_text()
    assert "*" in ignore.splitlines(), "the build context must be allow-listed (`*` then `!path`)"
    return text


def test_worker_dockerfile_installs_the_locked_wheel_only() -> None:
    """The worker image: the wheel and the worker lock from a wheelhouse, hashes checked, no
    source tree, a non-root user, its writable paths under RECSTREAM_HOME (a volume)."""
    text = _dockerfile_common("worker.Dockerfile")
    script = (DEPLOY / "docker" / "build-worker-image.sh").read_text()
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M)
    assert re.search(r"^USER 65534:65534", text, re.M), "image must run as a non-root user"
    assert "--no-index" in text and "--require-hashes" in text and "--only-binary :all:" in text
    assert "RECSTREAM_HOME=/var/lib/recstream" in text
    copies = re.findall(r"^COPY (?!--from)(.+) (\S+)$", text, re.M)
    sources = {src for line, _ in copies for src in line.split()}
    assert sources == {"requirements-worker.lock", "recstream.lock", "wheelhouse"}, sources
    for generated in ("recstream.lock", "wheelhouse", "requirements-worker.lock"):
        assert generated in script, f"build-worker-image.sh does not make {generated}"
    assert (ROOT / "requirements-worker.lock").is_file()


def test_triton_dockerfile() -> None:
    text = _dockerfile_common("triton.Dockerfile")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert re.search(r"^USER 10001", text, re.M), "image must run as a non-root user"
    assert '".[serve]"' in text, "the Triton side is the [serve] extra"
    copies = re.findall(r"^COPY (\S+) ", text, re.M)
    assert copies, "triton.Dockerfile: no COPY line"
    for src in copies:
        assert (ROOT / src).exists(), f"triton.Dockerfile: COPY source {src} missing"


# --------------------------------------------------------------------------------------------
# Kubernetes: a small kustomize renderer
# --------------------------------------------------------------------------------------------
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
}
SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "labels", "resources", "images", "patches"}
MERGE_BY_NAME = {"containers", "initContainers", "env", "volumes", "volumeMounts"}
TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def _group_version(doc: Doc) -> tuple[str, str]:
    group, _, version = doc["apiVersion"].rpartition("/")
    return group, version


def _matches(doc: Doc, target: Doc) -> bool:
    group, version = _group_version(doc)
    checks = {
        "kind": doc["kind"],
        "name": doc["metadata"]["name"],
        "group": group,
        "version": version,
    }
    return all(checks[k] == v for k, v in target.items() if k in checks)


def _strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _strategic_merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_BY_NAME:
        # Like kustomize (kyaml): items new in the patch come first, then the merged base items.
        by_name = {item.get("name"): item for item in patch}
        added = [copy.deepcopy(i) for i in patch if i.get("name") not in {b.get("name") for b in base}]
        merged = [
            _strategic_merge(b, by_name[b.get("name")]) if b.get("name") in by_name else b for b in base
        ]
        return added + [copy.deepcopy(b) for b in merged]
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json6902(doc: Doc, ops: list[Doc]) -> Doc:
    out = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if op["op"] == "remove":
            if isinstance(node, list):
                del node[int(last)]
            else:
                assert last in node, f"remove: {op['path']} does not exist"
                del node[last]
        elif op["op"] in ("add", "replace"):
            if isinstance(node, list):
                if last == "-":
                    node.append(op["value"])
                elif op["op"] == "add":
                    node.insert(int(last), op["value"])
                else:
                    node[int(last)] = op["value"]
            else:
                if op["op"] == "replace":
                    assert last in node, f"replace: {op['path']} does not exist"
                node[last] = op["value"]
        else:
            raise AssertionError(f"unsupported JSON patch op {op['op']}")
    return out


def _pod_specs(doc: Doc) -> list[Doc]:
    if doc["kind"] in TEMPLATE_KINDS:
        return [doc["spec"]["template"]["spec"]]
    return []


def render(folder: Path) -> list[Doc]:
    """Render a kustomization (the subset of kustomize these manifests use)."""
    k = load_yaml(folder / "kustomization.yaml")
    unsupported = set(k) - SUPPORTED_FIELDS
    assert not unsupported, f"{folder}: renderer does not support {unsupported}"
    docs: list[Doc] = []
    for res in k.get("resources", []):
        path = (folder / res).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for entry in k.get("patches", []):
        text = (folder / entry["path"]).read_text() if "path" in entry else entry["patch"]
        patch = yaml.safe_load(text)
        target = entry.get("target")
        if isinstance(patch, list):
            assert target, "JSON6902 patches need a target"
            hits = [i for i, d in enumerate(docs) if _matches(d, target)]
            assert hits, f"patch target {target} matches nothing"
            for i in hits:
                docs[i] = _json6902(docs[i], patch)
        else:
            target = target or {"kind": patch["kind"], "name": patch["metadata"]["name"]}
            hits = [i for i, d in enumerate(docs) if _matches(d, target)]
            assert hits, f"patch {entry} matches nothing"
            for i in hits:
                body = {key: v for key, v in patch.items() if key not in ("apiVersion", "kind")}
                body["metadata"] = {kk: vv for kk, vv in patch["metadata"].items() if kk != "name"}
                docs[i] = _strategic_merge(docs[i], body)
    for spec in k.get("labels", []):
        for d in docs:
            d["metadata"].setdefault("labels", {}).update(spec["pairs"])
            if spec.get("includeTemplates") and d["kind"] in TEMPLATE_KINDS:
                d["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {}).update(
                    spec["pairs"]
                )
            assert not spec.get("includeSelectors"), "renderer does not rewrite selectors"
    for img in k.get("images", []):
        for d in docs:
            for pod in _pod_specs(d):
                for c in pod.get("containers", []) + pod.get("initContainers", []):
                    name, _, tag = c["image"].partition(":")
                    if name == img["name"]:
                        c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"
    if "namespace" in k:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d["metadata"]["namespace"] = k["namespace"]
    return docs


def _key(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    name = str(request.param)
    return name, render(K8S / "overlays" / name)


def _index(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
    index = {_key(d): d for d in docs}
    assert len(index) == len(docs), "duplicate kind/name"
    return index


def test_renderer_agrees_with_kubectl_kustomize(overlay: tuple[str, list[Doc]]) -> None:
    """Cross-check of the renderer itself, where kubectl (with built-in kustomize) exists."""
    name, docs = overlay
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: overlays rendered by the built-in renderer only")
    proc = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = _index([d for d in yaml.safe_load_all(proc.stdout) if d])
    ours = _index(docs)
    assert set(theirs) == set(ours)
    assert ours, f"{name}: nothing rendered"
    for key, doc in ours.items():
        assert doc == theirs[key], f"{name}: {key} differs from kubectl kustomize"


def test_builtin_kinds_match_kubernetes_schemas(overlay: tuple[str, list[Doc]]) -> None:
    try:
        import kubernetes_validate
    except ModuleNotFoundError:
        pytest.fail("Kubernetes schemas come from the PyPI package kubernetes-validate (dev dependency)")
    name, docs = overlay
    checked = 0
    for doc in docs:
        group, _ = _group_version(doc)
        if group not in ("", "apps", "batch", "policy", "networking.k8s.io", "autoscaling"):
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {_key(doc)}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 8


# apiVersion/kind of every custom resource used, with the fields each must set.
CRS: dict[tuple[str, str], list[str]] = {
    ("kafka.strimzi.io/v1beta2", "Kafka"): [
        "spec.kafka.version",
        "spec.kafka.listeners",
        "spec.entityOperator",
    ],
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): ["spec.replicas", "spec.roles", "spec.storage"],
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): ["spec.topicName", "spec.partitions", "spec.replicas"],
    ("k8ssandra.io/v1alpha1", "K8ssandraCluster"): [
        "spec.cassandra.serverVersion",
        "spec.cassandra.datacenters",
        "spec.cassandra.superuserSecretRef.name",
    ],
    ("keda.sh/v1alpha1", "ScaledObject"): [
        "spec.scaleTargetRef.name",
        "spec.triggers",
        "spec.maxReplicaCount",
    ],
    ("monitoring.coreos.com/v1", "PodMonitor"): ["spec.selector.matchLabels", "spec.podMetricsEndpoints"],
}


def _get(doc: Doc, dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{_key(doc)}: missing {dotted}"
        node = node[part]
    return node


def test_custom_resources_structure(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    seen = set()
    for doc in docs:
        group, _ = _group_version(doc)
        if group in ("", "apps", "batch"):
            continue
        spec = CRS.get((doc["apiVersion"], doc["kind"]))
        assert spec is not None, f"unexpected custom resource {doc['apiVersion']} {doc['kind']}"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"])
        for field in spec:
            assert _get(doc, field) not in (None, "", [], {}), f"{_key(doc)}: empty {field}"
        seen.add(doc["kind"])
    assert seen == {k for _, k in CRS}

    kafka = next(d for d in docs if d["kind"] == "Kafka")
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["spec"]["kafka"]["version"].startswith("3.9")
    for d in docs:
        if d["kind"] in ("KafkaTopic", "KafkaNodePool"):
            assert d["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"], _key(d)
    cass = next(d for d in docs if d["kind"] == "K8ssandraCluster")
    assert cass["spec"]["cassandra"]["serverVersion"].startswith("5.0")
    for trig in next(d for d in docs if d["kind"] == "ScaledObject")["spec"]["triggers"]:
        assert trig["type"] == "kafka"
        assert {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} <= set(trig["metadata"])


def _config(docs: list[Doc]) -> dict[str, str]:
    env: dict[str, str] = {}
    for d in docs:
        if d["kind"] == "ConfigMap":
            env.update(d["data"])
    return env


def _containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc, Doc]]:
    for d in docs:
        for pod in _pod_specs(d):
            for c in pod.get("initContainers", []) + pod["containers"]:
                yield d, pod, c


def test_recstream_env_is_valid_and_consistent(overlay: tuple[str, list[Doc]]) -> None:
    name, docs = overlay
    index = _index(docs)
    known = known_env_names()
    for d in docs:
        if d["kind"] == "ConfigMap":
            unknown = {k for k in d["data"] if k.startswith("RECSTREAM_")} - known
            assert not unknown, f"{_key(d)}: unknown settings {unknown}"
    secrets_used = set()
    for d, _, c in _containers(docs):
        env: dict[str, str] = {}
        for src in c.get("envFrom", []):
            ref = src["configMapRef"]["name"]
            assert ("ConfigMap", ref) in index, f"{_key(d)}: ConfigMap {ref} missing"
            env.update(index["ConfigMap", ref]["data"])
        for e in c.get("env", []):
            if "valueFrom" in e:
                ref = e["valueFrom"]["secretKeyRef"]
                secrets_used.add(ref["name"])
                env[e["name"]] = "from-secret"
            else:
                env[e["name"]] = e["value"]
        rec = {k: v for k, v in env.items() if k.startswith("RECSTREAM_")}
        assert set(rec) <= known, f"{_key(d)}/{c['name']}: unknown {set(rec) - known}"
        settings_from(rec)  # every value must pass recstream's own validation
        assert "RECSTREAM_CASSANDRA_PASSWORD" not in _config(docs), "passwords belong in a Secret"
    # Secrets: only the one K8ssandra creates (superuser), never committed.
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret with values in the manifests"
    cass = next(d for d in docs if d["kind"] == "K8ssandraCluster")
    assert secrets_used == {cass["spec"]["cassandra"]["superuserSecretRef"]["name"]}

    s = settings_from({k: v for k, v in _config(docs).items() if k.startswith("RECSTREAM_")})
    assert s.web_host == "0.0.0.0"
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    port = kafka["spec"]["kafka"]["listeners"][0]["port"]
    assert s.kafka_bootstrap_servers == f"{kafka['metadata']['name']}-kafka-bootstrap:{port}"
    dc = cass["spec"]["cassandra"]["datacenters"][0]["metadata"]["name"]
    assert s.cassandra_hosts == [f"{cass['metadata']['name']}-{dc}-service"]
    assert f"'{dc}'" in s.cassandra_replication
    host, _, grpc = s.triton_grpc_url.partition(":")
    svc = index["Service", host]
    assert int(grpc) in {p["port"] for p in svc["spec"]["ports"]}
    device = index["ConfigMap", "triton-config"]["data"]["RECSTREAM_TRITON_DEVICE"]
    assert device == name


def test_topics_partitions_and_autoscaling(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    s = settings_from({k: v for k, v in _config(docs).items() if k.startswith("RECSTREAM_")})
    topics = {d["spec"]["topicName"]: d for d in docs if d["kind"] == "KafkaTopic"}
    wanted = {*input_topics(s), s.topic_recs, s.topic_dlq, catalog_topic(s)}
    assert set(topics) == wanted
    assert all(t["spec"]["partitions"] == s.topic_partitions for t in topics.values())
    assert topics[catalog_topic(s)]["spec"]["config"]["cleanup.policy"] == "compact"

    so = next(d for d in docs if d["kind"] == "ScaledObject")
    worker = _index(docs)["Deployment", so["spec"]["scaleTargetRef"]["name"]]
    assert "replicas" not in worker["spec"], "KEDA owns the replica count"
    triggers = so["spec"]["triggers"]
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {s.consumer_group}
    assert {t["metadata"]["topic"] for t in triggers} == set(input_topics(s))
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    ns = kafka["metadata"]["namespace"]
    for t in triggers:  # KEDA runs in its own namespace: the address must be qualified
        assert t["metadata"]["bootstrapServers"].startswith(
            f"{kafka['metadata']['name']}-kafka-bootstrap.{ns}.svc:"
        )
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= s.topic_partitions


def test_workloads_probes_resources_and_security(overlay: tuple[str, list[Doc]]) -> None:
    name, docs = overlay
    index = _index(docs)
    containers = list(_containers(docs))
    assert containers, f"{name}: no container rendered"
    for d, pod, c in containers:
        where = f"{name}: {_key(d)}/{c['name']}"
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"], where
        assert pod.get("automountServiceAccountToken") is False, where
        mounts = {m["name"] for m in c.get("volumeMounts", [])}
        assert mounts <= {v["name"] for v in pod.get("volumes", [])}, where
        for v in pod.get("volumes", []):
            if "persistentVolumeClaim" in v:
                assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in index, where

    worker = index["Deployment", "recstream-worker"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    s = settings_from({k: v for k, v in _config(docs).items() if k.startswith("RECSTREAM_")})
    assert ports["metrics"] == s.web_port
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["args"] == ["worker"]
    job = index["Job", "recstream-schema"]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["schema", "apply"]

    triton = index["Deployment", "triton"]["spec"]["template"]["spec"]
    res = triton["containers"][0]["resources"]
    has_gpu = "nvidia.com/gpu" in res.get("limits", {}) or "nvidia.com/gpu" in res.get("requests", {})
    assert has_gpu == (name == "gpu")
    if has_gpu:
        assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == 1
    assert triton["initContainers"][0]["args"][0] == "build"
    images = {c["image"] for c in triton["containers"] + triton["initContainers"]}
    assert images == {f"recstream-triton:0.1.0-{name}"}
    assert {"repository", "trained-models", "dshm"} <= {v["name"] for v in triton["volumes"]}


def test_services_and_monitors_select_pods(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    pods = [
        (d["spec"]["template"]["metadata"]["labels"], d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] == "Deployment"
    ]

    def selected(selector: dict[str, str]) -> list[Doc]:
        return [spec for labels, spec in pods if selector.items() <= labels.items()]

    for d in docs:
        if d["kind"] == "Service":
            specs = selected(d["spec"]["selector"])
            assert specs, f"{_key(d)} selects no pod"
            names = {p["name"] for s in specs for c in s["containers"] for p in c.get("ports", [])}
            for p in d["spec"]["ports"]:
                assert p["targetPort"] in names, f"{_key(d)}: no container port {p['targetPort']}"
    jobs = set()
    for d in docs:
        if d["kind"] == "PodMonitor":
            specs = selected(d["spec"]["selector"]["matchLabels"])
            assert specs, f"{_key(d)} selects no pod"
            names = {p["name"] for s in specs for c in s["containers"] for p in c.get("ports", [])}
            assert {e["port"] for e in d["spec"]["podMetricsEndpoints"]} <= names
            jobs.add(
                next(
                    labels
                    for labels, _ in pods
                    if d["spec"]["selector"]["matchLabels"].items() <= labels.items()
                )[d["spec"]["jobLabel"]]
            )
    # Same job names as the compose scrape config, so alerts.yml works for both.
    assert jobs == {WORKER_JOB, TRITON_JOB}
    # Kafka's network policy admits recstream's pods (label added by the base kustomization).
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    peers = kafka["spec"]["kafka"]["listeners"][0]["networkPolicyPeers"]
    part_of = {"app.kubernetes.io/part-of": "recstream"}
    assert any(p.get("podSelector", {}).get("matchLabels") == part_of for p in peers)
    for labels, _ in pods:
        assert part_of.items() <= labels.items()


def test_every_resource_is_namespaced(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    assert docs, "nothing rendered"
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "recstream", _key(d)
