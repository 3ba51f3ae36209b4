"""Where a report's figures come from: code, machine, date and the settings that matter.

Every report (``reports/chaos/*.json``, soak, bench, eval) carries a ``provenance`` entry::

    {"commit": "4e09550...", "commit_short": "4e09550037", "branch": "main", "dirty": false,
     "dirty_count": 0, "dirty_paths": [], "checkout": true, "version": "0.1.0",
     "date": "2026-11-23T03:32:00+00:00",
     "machine": {"host": ..., "arch": ..., "python": ..., "cores": 2, "cores_usable": 2,
                 "memory_gib": 7.8, "memory_available_gib": 3.1,
                 "load_average": {"1m": 2.1, "5m": 1.9, "15m": 1.7}},
     "settings": {"batch_size": 256, ...}, "settings_from": "measured process"}

``settings`` holds only the names in :data:`RECORDED_SETTINGS`; secrets are never recorded,
even when asked for. ``settings_from`` says whose they are: the measured process's (passed by
the caller) or, when the caller had none to pass, the ``RECSTREAM_*`` environment of the
process writing the report (a worker started with other variables may differ).

The commit is that of the source checkout the code runs from (:func:`recstream.settings.source_checkout`,
with its own ``.git``). Run from an installed wheel there is none: ``checkout`` is false, the
git fields are null (:func:`describe` says "not a checkout") and ``version``, the installed
distribution's, is what names the code. ``git`` is never asked about a folder without its own
``.git``, so a package installed inside some other repository never records that one's commit.

Nothing here raises: a report must not be lost because ``git`` or ``/proc`` is unavailable
(the fields then say ``null``).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from recstream.settings import SECRET_FIELDS, SECRET_FILE_FIELDS, Settings, load_settings, source_checkout

#: Settings that change figures: batching, commit cadence, back-pressure, caches, retrieval,
#: concurrency, consistency, and where the servers are. Never a secret (see :func:`settings_of`).
RECORDED_SETTINGS = (
    "kafka_bootstrap_servers",
    "kafka_security_protocol",
    "topic_partitions",
    "cassandra_contact_points",
    "cassandra_consistency",
    "cassandra_max_concurrency",
    "triton_grpc_url",
    "triton_device",
    "triton_max_concurrency",
    "triton_timeout_s",
    "k",
    "decay_tau_s",
    "ann_backend",
    "seen_items_max",
    "recent_events_max",
    "unknown_item_wait_s",
    "batch_size",
    "batch_timeout_s",
    "commit_interval_s",
    "max_pending_events",
    "state_cache_max_users",
    "log_level",
)
_NEVER = frozenset(SECRET_FIELDS) | frozenset(SECRET_FILE_FIELDS)
#: Dirty paths listed at most (the count is always exact).
MAX_DIRTY_PATHS = 20


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def parse_porcelain(text: str) -> list[str]:
    """Paths of ``git status --porcelain`` output (renames: the new path)."""
    paths = []
    for line in text.splitlines():
        if len(line) > 3:
            paths.append(line[3:].split(" -> ")[-1])
    return paths


def git_state(root: Path | None = None) -> dict[str, Any]:
    """Commit, branch and whether the tree differs from it (tracked or untracked, not ignored).

    Args:
        root: The git checkout; None: the source checkout the code runs from, if any.
            ``checkout`` is false (and the rest null) when it is none or has no ``.git`` of its
            own, true when it has (the commit may still be null if ``git`` fails).
    """
    unknown: dict[str, Any] = {
        "commit": None, "commit_short": None, "branch": None, "dirty": None, "dirty_count": 0,
        "dirty_paths": [],
    }  # fmt: skip
    if root is None:
        root = source_checkout()
    if root is None or not (root / ".git").exists():
        return {**unknown, "checkout": False}
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {**unknown, "checkout": True}
    status = _git(root, "status", "--porcelain")
    paths = parse_porcelain(status) if status is not None else []
    branch = (_git(root, "rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None
    return {
        "commit": commit.strip(),
        "commit_short": commit.strip()[:10],
        "branch": branch,
        "dirty": None if status is None else bool(paths),
        "dirty_count": len(paths),
        "dirty_paths": paths[:MAX_DIRTY_PATHS],
        "checkout": True,
    }


def installed_version() -> str | None:
    """The version of the installed ``recstream`` distribution (None when it is not installed)."""
    try:
        return importlib.metadata.version("recstream")
    except importlib.metadata.PackageNotFoundError:
        return None


def parse_meminfo(text: str) -> dict[str, float]:
    """``{"memory_gib", "memory_available_gib"}`` from ``/proc/meminfo`` text (absent: omitted)."""
    kib = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable") and rest.split():
            kib[key] = int(rest.split()[0])
    names = {"MemTotal": "memory_gib", "MemAvailable": "memory_available_gib"}
    return {names[k]: round(v / 1024**2, 2) for k, v in kib.items()}


def machine_state() -> dict[str, Any]:
    """Host, cores (all and usable by this process), memory, load averages, Python."""
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    try:
        memory = parse_meminfo(Path("/proc/meminfo").read_text())
    except OSError:
        memory = {}
    try:
        l1, l5, l15 = os.getloadavg()
        load: dict[str, float] | None = {"1m": round(l1, 2), "5m": round(l5, 2), "15m": round(l15, 2)}
    except OSError:
        load = None
    return {
        "host": platform.node(),
        "arch": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        **memory,
        "load_average": load,
    }


def settings_of(settings: Settings, names: tuple[str, ...] = RECORDED_SETTINGS) -> dict[str, Any]:
    """The ``names`` of ``settings`` as JSON values; secrets are skipped whatever ``names`` says."""
    out: dict[str, Any] = {}
    for name in names:
        if name in _NEVER or not hasattr(settings, name):
            continue
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            continue
        out[name] = str(value) if isinstance(value, Path) else value
    return out


def provenance(settings: Settings | None = None, root: Path | None = None) -> dict[str, Any]:
    """The ``provenance`` entry of a report, taken now.

    Args:
        settings: The settings the measured process ran with; None: this process's environment
            (a failure to load them is recorded instead of raised).
        root: The repository whose commit is recorded (default: the source checkout, if any).
    """
    recorded: dict[str, Any]
    try:
        recorded = settings_of(settings if settings is not None else load_settings())
    except Exception as exc:  # never lose a report over its metadata; the message names no value
        recorded = {"error": type(exc).__name__}
    return {
        **git_state(root),
        "version": installed_version(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_state(),
        "settings": recorded,
        "settings_from": "measured process" if settings is not None else "environment of the report writer",
    }


def with_provenance(report: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """``report`` with a ``provenance`` entry (one it already has is kept)."""
    if "provenance" in report:
        return dict(report)
    return {**report, "provenance": provenance(settings)}


def commit_of(report: Mapping[str, Any]) -> str | None:
    """The commit a report records; None when it has no provenance (written before it existed)."""
    prov = report.get("provenance")
    return prov.get("commit") if isinstance(prov, Mapping) else None


def describe(prov: Mapping[str, Any]) -> str:
    """One line for a Markdown report: commit and tree state (or the installed version), date, machine."""
    if prov.get("checkout") is False:
        code = f"recstream {prov.get('version') or '(unknown version)'} (not a checkout)"
    else:
        commit = prov.get("commit_short") or "unknown commit"
        tree = {True: "dirty tree", False: "clean tree", None: "tree state unknown"}[prov.get("dirty")]
        code = f"commit `{commit}` ({tree})"
    m = prov.get("machine") or {}
    load = (m.get("load_average") or {}).get("1m")
    parts = [
        f"{m.get('host', '?')}",
        f"{m.get('cores', '?')} cores",
        f"{m['memory_gib']:.1f} GiB" if "memory_gib" in m else None,
        f"load {load:.2f}" if load is not None else None,
    ]
    machine = ", ".join(p for p in parts if p)
    return f"{code}, {prov.get('date', '?')}, {machine}"
