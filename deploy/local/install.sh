#!/usr/bin/env bash
# Creates .venv/ at the repo root with every dependency and the `recstream` command.
#
# Third-party packages (torch alone is several GB) are installed exactly as pinned, with their
# hashes, from requirements.lock (base + every extra; `make lock` re-resolves it from
# pyproject.toml). They live in one cached environment keyed by a hash of that lock file and
# the interpreter, under $RECSTREAM_CACHE_DIR (default ~/.cache/recstream). .venv/ itself is a
# small real venv whose site-packages points at that cache through a .pth file, plus an
# editable install of this checkout: a second clone or a re-install costs seconds, and two
# clones never fight over one editable path.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
py=${RECSTREAM_PYTHON:-}
if [ -z "$py" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      py=$(command -v "$cand"); break
    fi
  done
fi
[ -n "$py" ] || { echo "install: Python 3.11 is required (set RECSTREAM_PYTHON)" >&2; exit 1; }
# The Triton Python-backend stub links libpython3.11.so.1.0: the interpreter must be a shared build.
"$py" - <<'PY' || exit 1
import sys, sysconfig
if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
    sys.exit(f"install: {sys.executable} is not a shared-library build; Triton's Python backend needs libpython3.11.so.1.0")
PY

cache=${RECSTREAM_CACHE_DIR:-$HOME/.cache/recstream}
lock=requirements.lock
[ -f "$lock" ] || { echo "install: $lock is missing (run \`make lock\`)" >&2; exit 1; }
key=$( { "$py" -c 'import sys; print(sys.version)'; cat "$lock"; } | sha256sum | cut -c1-16)
env="$cache/envs/$key"

if [ ! -f "$env/.complete" ]; then
  echo "install: building dependency environment $env (first time only; torch is large)"
  rm -rf "$env.partial"
  mkdir -p "$cache/envs"
  start=$(date +%s)
  "$py" -m venv "$env.partial"
  # Exactly the locked files (pip, setuptools and wheel included): nothing is resolved here, and
  # a file whose hash differs from the lock's is refused. `pip check` catches a lock missing a
  # dependency (--no-deps would not).
  "$env.partial/bin/python" -m pip install --progress-bar off --disable-pip-version-check \
    --require-hashes --no-deps -r "$lock"
  "$env.partial/bin/python" -m pip check
  cp "$lock" "$env.partial/requirements.hashes.lock"
  # Plain name==version pins of what is installed: read by `make audit` (deploy/local/audit.py).
  "$env.partial/bin/python" -m pip freeze > "$env.partial/requirements.lock"
  # venv scripts embed their absolute path; fix them up after the move.
  mv "$env.partial" "$env"
  grep -rlI --exclude-dir=lib "$env.partial" "$env/bin" | xargs -r sed -i "s#$env.partial#$env#g"
  touch "$env/.complete"
  echo "install: dependency environment built in $(( $(date +%s) - start ))s"
else
  echo "install: reusing cached dependency environment $env"
fi

# The lock must still satisfy pyproject.toml (base + every extra): an edit there without
# `make lock` would otherwise install stale pins silently.
"$env/bin/python" - <<'PY' || exit 1
import sys, tomllib
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(p["dependencies"]) + [r for extra in p.get("optional-dependencies", {}).values() for r in extra]
bad = []
for r in map(Requirement, reqs):
    if r.marker is not None and not r.marker.evaluate():
        continue
    try:
        v = version(r.name)
    except PackageNotFoundError:
        bad.append(f"{r} (not in the lock)")
        continue
    if not r.specifier.contains(v, prereleases=True):
        bad.append(f"{r} (locked {v})")
if bad:
    sys.exit("install: requirements.lock does not satisfy pyproject.toml; run `make lock`:\n  " + "\n  ".join(bad))
PY

rm -rf .venv
"$py" -m venv --without-pip .venv
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
dsite=$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('$dsite')" > "$site/_recstream_deps.pth"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v -i 'notice' || true
# Python tools run through .venv's interpreter (so they see this checkout); ruff is a native
# binary and is linked, since `python -m ruff` itself looks for bin/ruff and would loop.
for tool in pytest mypy faust pip-audit; do
  mod=$tool; [ "$tool" = pip-audit ] && mod=pip_audit
  printf '#!/bin/sh\nexec "$(dirname "$0")/python" -m %s "$@"\n' "$mod" > ".venv/bin/$tool"
  chmod +x ".venv/bin/$tool"
done
ln -sfn "$env/bin/ruff" .venv/bin/ruff
ln -sfn "$env" .venv/deps
.venv/bin/recstream --help >/dev/null
echo "install: ready: .venv/bin/recstream (deps: $env)"
