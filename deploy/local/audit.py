"""Known-vulnerability audit of the locked dependencies (``make audit``, called by ``make lint``).

``deploy/local/install.sh`` builds one cached dependency environment and freezes it to
``<env>/requirements.lock`` (reached as ``.venv/deps/requirements.lock``). This runs
``pip-audit`` over exactly those pins (``--no-deps --disable-pip``: nothing is resolved or
installed) against a vulnerability service (PyPI's JSON API by default, or OSV) and decides:

* a known vulnerability that is not in :data:`IGNORED_VULNS` fails the audit, naming the
  package, the advisory and the fixed versions;
* a package the service could not answer for fails it too (an audit that silently skips
  packages proves nothing), unless it is in :data:`UNAUDITABLE`.

When pip-audit's service answers for no package at all (offline, OSV unresolvable, or a PyPI
proxy without the per-version JSON API ``/pypi/<name>/<version>/json``), the audit falls back to
PyPI's *project* JSON (``/pypi/<name>/json``), whose ``vulnerabilities`` cover only the project's
latest release (``info.version``). So, per pinned package:

* installed version == latest: its advisories are authoritative, judged as above (audited);
* installed version older (or otherwise different): the advisories of that release are not
  available there, so the package is reported ``NOT AUDITED (installed X, latest Y)``, never
  counted as clean. A partial audit passes (so ``make lint`` works) but prints ``PARTIAL AUDIT``
  with the names of the packages it could not audit.

When neither source can audit any package, ``--if-unreachable`` decides: ``fail`` (``make
audit``) or ``warn`` (``make lint``, so linting works offline; the warning says that nothing was
audited).

Exceptions live here and nowhere else, each with its justification.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_LOCK = REPO / ".venv" / "deps" / "requirements.lock"

#: PyPI's project-level JSON (the fallback source); its ``vulnerabilities`` are the latest release's.
PYPI_PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
#: Fallback network limits: per socket operation, concurrent requests, whole fallback run.
FALLBACK_TIMEOUT_S = 6.0
FALLBACK_WORKERS = 16
FALLBACK_DEADLINE_S = 40.0
#: pip-audit queries sequentially; past this wall time it counts as not answering.
PIP_AUDIT_WALL_S = 120.0

#: Advisory id (or alias) -> why it does not apply to recstream and when to revisit. Keep empty
#: unless a fix cannot be taken; an entry that no longer matches is reported as stale.
IGNORED_VULNS: dict[str, str] = {}

#: Package -> why no vulnerability service can know it (e.g. a wheel built in-house).
UNAUDITABLE: dict[str, str] = {}


@dataclass
class Verdict:
    """Outcome of an audit: whether it passes, and what to print."""

    ok: bool
    lines: list[str] = field(default_factory=list)


def _ignored(vuln: Mapping[str, Any], ignored: Mapping[str, str]) -> str | None:
    for vid in [vuln.get("id", ""), *vuln.get("aliases", [])]:
        if vid in ignored:
            return str(vid)
    return None


def evaluate(
    report: Mapping[str, Any],
    *,
    ignored: Mapping[str, str] = IGNORED_VULNS,
    unauditable: Mapping[str, str] = UNAUDITABLE,
    if_unreachable: str = "fail",
) -> Verdict:
    """Judge a ``pip-audit --format json`` report.

    Args:
        report: The parsed report (``{"dependencies": [{"name", "version", "vulns"} or
            {"name", "skip_reason"}]}``).
        ignored: Advisory ids accepted with a justification.
        unauditable: Packages allowed to be skipped by the service.
        if_unreachable: ``fail`` or ``warn`` when the service answered for no package.
    """
    deps = list(report.get("dependencies", []))
    audited = [d for d in deps if "skip_reason" not in d]
    skipped = [d for d in deps if "skip_reason" in d and d["name"] not in unauditable]
    lines: list[str] = []
    ok = True
    used: set[str] = set()
    for dep in audited:
        for vuln in dep.get("vulns", []):
            hit = _ignored(vuln, ignored)
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            what = f"{dep['name']} {dep['version']}: {vuln.get('id')} (fixed in: {fixes})"
            if hit:
                used.add(hit)
                lines.append(f"ignored  {what}: {ignored[hit]}")
            else:
                ok = False
                lines.append(f"VULNERABLE  {what}")
    if deps and not audited:
        reason = skipped[0]["skip_reason"] if skipped else "no answer"
        msg = (
            f"the vulnerability service answered for none of the {len(deps)} packages "
            f"(first: {reason}); nothing was audited"
        )
        if if_unreachable == "warn":
            lines.append(f"WARNING: {msg}. Run `make audit` where the service is reachable.")
        else:
            ok = False
            lines.append(f"ERROR: {msg}")
    elif skipped:
        ok = False
        lines += [f"NOT AUDITED  {d['name']}: {d['skip_reason']}" for d in skipped]
    for stale in sorted(set(ignored) - used):
        lines.append(f"note: ignore entry {stale} matched nothing; remove it from deploy/local/audit.py")
    if audited and ok:
        lines.append(f"audit: {len(audited)} packages audited, no known vulnerabilities left unaddressed")
    if not deps:
        ok = False
        lines.append("ERROR: the report lists no dependencies (empty lock file?)")
    return Verdict(ok, lines)


# --- fallback: PyPI project JSON (latest release only) -----------------------------------------


def canonical_name(name: str) -> str:
    """PEP 503 normalized project name (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(name, version)`` of each ``name==version`` line of a pip-freeze lock, and the other
    requirement lines (URLs, editables...), which no release feed can audit."""
    pins: list[tuple[str, str]] = []
    other: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        req = line.split(";", 1)[0].split(" --hash", 1)[0].strip().rstrip("\\").strip()
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([^\s,]+)", req)
        if m:
            pins.append((m.group(1), m.group(2)))
        elif not line.startswith("-") or line.startswith(("-e", "--editable")):
            other.append(line)
    return pins, other


#: A project's answer: the reduced JSON document, or why there is none.
Answer = Mapping[str, Any] | str


class _Breaker:
    """Stops querying once the first ``threshold`` requests all failed without any HTTP answer."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.failures = 0
        self.answers = 0
        self.lock = threading.Lock()

    def record(self, *, answered: bool) -> None:
        with self.lock:
            if answered:
                self.answers += 1
            else:
                self.failures += 1

    @property
    def open(self) -> bool:
        with self.lock:
            return self.answers == 0 and self.failures >= self.threshold


def _reduce(doc: Any) -> Answer:
    """Keep what the audit reads: ``info.version`` and (only if present) ``vulnerabilities``."""
    info = doc.get("info") if isinstance(doc, dict) else None
    reduced: dict[str, Any] = {"info": {"version": info.get("version") if isinstance(info, dict) else None}}
    if isinstance(doc, dict) and "vulnerabilities" in doc:
        reduced["vulnerabilities"] = doc["vulnerabilities"]
    return reduced


def fetch_project(
    name: str, *, timeout_s: float, deadline: float, breaker: _Breaker, attempts: int = 2
) -> Answer:
    """GET PyPI's project JSON for ``name``, reduced by :func:`_reduce` (whole documents run to
    megabytes); a string says why there is no usable answer. A request that got no HTTP answer,
    or a 429/5xx, is tried once more while time is left."""
    url = PYPI_PROJECT_JSON.format(name=urllib.parse.quote(canonical_name(name)))
    req = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "recstream-audit"})
    why = "not queried"
    for _ in range(attempts):
        if breaker.open:
            return f"{why}: PyPI did not answer the first {breaker.threshold} requests"
        if time.monotonic() > deadline:
            return f"no answer within the audit's time limit ({why})"
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                chunks = []
                while chunk := resp.read(1 << 16):
                    if time.monotonic() > deadline:
                        breaker.record(answered=True)
                        return "no answer: the audit's time limit ran out while reading"
                    chunks.append(chunk)
            breaker.record(answered=True)
            return _reduce(json.loads(b"".join(chunks)))
        except urllib.error.HTTPError as e:
            breaker.record(answered=True)
            why = f"HTTP {e.code} from {url}"
            if e.code != 429 and e.code < 500:
                return why
        except (OSError, http.client.HTTPException) as e:
            breaker.record(answered=False)
            why = f"no answer ({getattr(e, 'reason', None) or e})"
        except ValueError:
            return f"the answer of {url} is not JSON"
    return why


def fetch_projects(
    names: Iterable[str],
    *,
    fetch: Callable[..., Answer] = fetch_project,
    workers: int = FALLBACK_WORKERS,
    timeout_s: float = FALLBACK_TIMEOUT_S,
    deadline_s: float = FALLBACK_DEADLINE_S,
) -> dict[str, Answer]:
    """Query every project concurrently, bounded by ``deadline_s`` (plus one socket timeout)."""
    names = list(names)
    deadline = time.monotonic() + deadline_s
    breaker = _Breaker(workers)

    def one(name: str) -> Answer:
        if time.monotonic() > deadline:
            return "not queried: the audit's time limit ran out"
        return fetch(name, timeout_s=timeout_s, deadline=deadline, breaker=breaker)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def evaluate_latest_only(
    pins: Sequence[tuple[str, str]],
    answers: Mapping[str, Answer],
    *,
    other: Sequence[str] = (),
    ignored: Mapping[str, str] = IGNORED_VULNS,
    unauditable: Mapping[str, str] = UNAUDITABLE,
    if_unreachable: str = "fail",
) -> Verdict:
    """Judge the pins against PyPI project JSON documents (``answers``, keyed by pinned name).

    A document speaks for its latest release (``info.version``) only: a pin at that version is
    audited with its ``vulnerabilities``; any other pin, an unanswered query or a document without
    vulnerability data is NOT AUDITED. Vulnerabilities not ignored fail; no package audited at all
    is ``if_unreachable``; a partial audit passes, printing what it could not audit.
    """
    exempt = {canonical_name(n) for n in unauditable}
    lines: list[str] = []
    ok = True
    used: set[str] = set()
    clean: list[str] = []
    vulnerable: list[str] = []
    not_audited: list[tuple[str, str]] = [(line, "not a release pin") for line in other]
    skipped_exempt: list[str] = []
    for name, version in pins:
        if canonical_name(name) in exempt:
            skipped_exempt.append(name)
            continue
        answer = answers.get(name, "not queried")
        if isinstance(answer, str):
            not_audited.append((name, answer))
            continue
        info = answer.get("info")
        latest = info.get("version") if isinstance(info, Mapping) else None
        vulns = answer.get("vulnerabilities")
        if not isinstance(latest, str) or not isinstance(vulns, list):
            not_audited.append((name, "the answer carries no latest version or no vulnerability data"))
            continue
        if version.strip().lower() != latest.strip().lower():
            not_audited.append((name, f"installed {version}, latest {latest}"))
            continue
        found = False
        for vuln in vulns:
            if not isinstance(vuln, Mapping) or vuln.get("withdrawn"):
                continue
            hit = _ignored(vuln, ignored)
            fixes = ", ".join(map(str, vuln.get("fixed_in") or [])) or "none yet"
            link = f" {vuln['link']}" if vuln.get("link") else ""
            what = f"{name} {version}: {vuln.get('id')} (fixed in: {fixes}){link}"
            if hit:
                used.add(hit)
                lines.append(f"ignored  {what}: {ignored[hit]}")
            else:
                ok = False
                found = True
                lines.append(f"VULNERABLE  {what}")
        (vulnerable if found else clean).append(name)
    audited = len(clean) + len(vulnerable)
    if audited:  # with nothing audited, the one summary line below says it all
        lines += [f"NOT AUDITED  {n}: {why}" for n, why in not_audited]
    if skipped_exempt:
        lines.append(f"exempt (UNAUDITABLE in deploy/local/audit.py): {', '.join(skipped_exempt)}")
    for stale in sorted(set(ignored) - used):
        if not_audited:
            lines.append(f"note: ignore entry {stale} matched none of the audited packages (partial audit)")
        else:
            lines.append(f"note: ignore entry {stale} matched nothing; remove it from deploy/local/audit.py")
    total = audited + len(not_audited)
    found_txt = (
        f"{len(vulnerable)} with vulnerabilities not ignored" if vulnerable else "no known vulnerability"
    )
    if total == 0:
        ok = False
        lines.append("ERROR: the lock lists no dependencies (empty lock file?)")
    elif audited == 0:
        first = not_audited[0]
        msg = (
            f"the fallback (PyPI project JSON) could audit none of the {total} packages "
            f"(first: {first[0]}: {first[1]}); nothing was audited"
        )
        if if_unreachable == "warn":
            lines.append(f"WARNING: {msg}. Run `make audit` where the service is reachable.")
        else:
            ok = False
            lines.append(f"ERROR: {msg}")
    elif not_audited:
        names = ", ".join(n for n, _ in not_audited)
        lines.append(
            f"PARTIAL AUDIT: {audited} of {total} packages audited (latest releases; {found_txt}); "
            f"{len(not_audited)} NOT AUDITED: {names}"
        )
        if ok:
            lines.append(
                f"audit: passes as PARTIAL: the {len(not_audited)} packages above were NOT checked for "
                "vulnerabilities; rerun where pip-audit's service is reachable for a full audit"
            )
    else:
        lines.append(f"audit: all {audited} packages audited (latest releases; {found_txt})")
    return Verdict(ok, lines)


def pip_audit_argv(lock: Path, service: str, timeout_s: int) -> list[str]:
    """The pip-audit command over exact pins, JSON to stdout."""
    return [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        str(lock),
        "--no-deps",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--vulnerability-service",
        service,
        "--timeout",
        str(timeout_s),
    ]


#: pip-audit's tracebacks when its service cannot be reached (requests / pip-audit exceptions).
_NETWORK_FAILURE = re.compile(
    r"ConnectionError|ProxyError|ConnectTimeout|ReadTimeout|NameResolution|Max retries exceeded|"
    r"Could not connect|SSLError|Temporary failure in name resolution"
)


class PipAuditFailed(Exception):
    """pip-audit failed for a reason other than reaching its service (a bad lock, a bug...)."""


def run_pip_audit(lock: Path, service: str, timeout_s: int) -> tuple[dict[str, Any] | None, str]:
    """pip-audit's JSON report, or ``None`` and why its service could not be reached.

    Raises:
        PipAuditFailed: pip-audit printed no report, and not because of the network.
    """
    try:
        proc = subprocess.run(
            pip_audit_argv(lock, service, timeout_s),
            capture_output=True,
            text=True,
            check=False,
            timeout=PIP_AUDIT_WALL_S,
        )
    except subprocess.TimeoutExpired:
        return None, f"pip-audit did not finish within {PIP_AUDIT_WALL_S:.0f} s"
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    if isinstance(report, dict):
        return report, ""
    err = proc.stderr.strip().splitlines()
    why = f"pip-audit failed (exit {proc.returncode}): {err[-1] if err else 'no output'}"
    if _NETWORK_FAILURE.search(proc.stderr):
        return None, why
    raise PipAuditFailed(f"pip-audit failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def service_unreachable(report: Mapping[str, Any]) -> str | None:
    """Why pip-audit's report means its service answered for no package, or ``None``."""
    deps = list(report.get("dependencies", []))
    if deps and all("skip_reason" in d for d in deps):
        return f"its service answered for none of the {len(deps)} packages (first: {deps[0]['skip_reason']})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the audit; exit status 0 when it passes."""
    p = argparse.ArgumentParser(prog="python -m deploy.local.audit", description=__doc__.split("\n")[0])
    p.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="pinned requirements (pip freeze)")
    p.add_argument("--service", choices=["pypi", "osv"], default="pypi", help="vulnerability service")
    p.add_argument("--if-unreachable", choices=["fail", "warn"], default="fail")
    p.add_argument("--timeout", type=int, default=15, help="per-request timeout of pip-audit, seconds")
    args = p.parse_args(argv)
    if not args.lock.is_file():
        print(f"audit: {args.lock} not found; run `make install` first", file=sys.stderr)
        return 2
    try:
        report, why = run_pip_audit(args.lock, args.service, args.timeout)
    except PipAuditFailed as e:
        print(f"audit: {e}", file=sys.stderr)
        return 2
    if report is not None:
        why = service_unreachable(report) or ""
    if report is not None and not why:
        verdict = evaluate(report, if_unreachable=args.if_unreachable)
    else:
        pins, other = read_pins(args.lock.read_text())
        print(
            f"audit: pip-audit ({args.service}) could not audit: {why}\n"
            f"audit: falling back to PyPI's project JSON ({PYPI_PROJECT_JSON}) for {len(pins)} pins; "
            "it lists advisories of each project's LATEST release only",
            flush=True,
        )
        exempt = {canonical_name(n) for n in UNAUDITABLE}
        answers = fetch_projects(n for n, _ in pins if canonical_name(n) not in exempt)
        verdict = evaluate_latest_only(pins, answers, other=other, if_unreachable=args.if_unreachable)
    for line in verdict.lines:
        print(line, file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
