"""Known-vulnerability audit of the locked dependencies (``make audit``, called by ``make lint``).

``deploy/local/install.sh`` builds one cached dependency environment and freezes it to
``<env>/requirements.lock`` (reached as ``.venv/deps/requirements.lock``). This runs
``pip-audit`` over exactly those pins (``--no-deps --disable-pip``: nothing is resolved or
installed) against a vulnerability service (PyPI's JSON API by default, or OSV) and decides:

* a known vulnerability that is not in :data:`IGNORED_VULNS` fails the audit, naming the
  package, the advisory and the fixed versions;
* a package the service could not answer for fails it too (an audit that silently skips
  packages proves nothing), unless it is in :data:`UNAUDITABLE`;
* when the service answers for no package at all (offline, or a PyPI mirror without the
  per-version JSON API), ``--if-unreachable`` decides: ``fail`` (``make audit``) or ``warn``
  (``make lint``, so linting works offline; the warning says that nothing was audited).

Exceptions live here and nowhere else, each with its justification.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_LOCK = REPO / ".venv" / "deps" / "requirements.lock"

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
    proc = subprocess.run(
        pip_audit_argv(args.lock, args.service, args.timeout), capture_output=True, text=True, check=False
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        print(f"audit: pip-audit failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr)
        return 2
    verdict = evaluate(report, if_unreachable=args.if_unreachable)
    for line in verdict.lines:
        print(line, file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
