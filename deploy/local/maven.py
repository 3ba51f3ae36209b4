"""Resolve a server's runtime jars from Maven Central into a cache, once.

Each server has a small POM under ``deploy/local/maven/<name>/``; its runtime dependency
closure is copied into ``<cache_dir>/jars/<name>-<hash of the POM>/``. A second ``stack up`` (or a
second clone) finds the folder and resolves nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from deploy.local.errors import ResolveError, ToolMissing

POM_DIR = Path(__file__).resolve().parent / "maven"


def find_java() -> str:
    """Path of a JDK 17+ ``java`` (``$JAVA_HOME/bin/java`` first, then PATH)."""
    home = os.environ.get("JAVA_HOME")
    candidates = [str(Path(home) / "bin" / "java")] if home else []
    which = shutil.which("java")
    if which:
        candidates.append(which)
    for cand in candidates:
        if not Path(cand).exists():
            continue
        out = subprocess.run([cand, "-version"], capture_output=True, text=True, check=False).stderr
        try:
            major = int(out.split('"')[1].split(".")[0])
        except (IndexError, ValueError):
            continue
        if major >= 17:
            return cand
    raise ToolMissing("JDK 17 or newer is required (install openjdk-17-jdk-headless or set JAVA_HOME)")


def resolve_jars(name: str, cache_dir: Path) -> Path:
    """Return a folder holding every runtime jar of server ``name``, resolving it if needed.

    Raises:
        ToolMissing: Maven is not installed.
        ResolveError: Maven failed (its output is in the message).
    """
    pom = POM_DIR / name / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    dest = cache_dir / "jars" / f"{name}-{digest}"
    if (dest / ".complete").exists():
        return dest
    mvn = shutil.which("mvn")
    if not mvn:
        raise ToolMissing("Maven (mvn) is required to fetch server jars (apt-get install maven)")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not any(partial.glob("*.jar")):
        raise ResolveError(f"resolving {name} jars failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    (dest / ".complete").touch()
    return dest
