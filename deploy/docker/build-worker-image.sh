#!/usr/bin/env bash
# Build the worker image (deploy/docker/worker.Dockerfile) from this checkout, without a registry.
#
#   deploy/docker/build-worker-image.sh [-t TAG] [--context DIR] [--no-build] [--force] [--keep]
#   make image-worker                          # the same, default tag
#
# 1. copies the checkout's files (tracked, plus untracked ones git does not ignore: what a fresh
#    clone of this working tree holds) to a temporary folder outside the repo and builds the
#    wheel there (`pip wheel --no-deps --no-build-isolation`), so the repo gets no build/ or
#    *.egg-info; SOURCE_DATE_EPOCH (HEAD's commit time) makes the wheel's bytes depend only on
#    the source files, not on when it was built;
# 2. downloads every wheel of requirements-worker.lock (`pip download --require-hashes`, for
#    CPython 3.11 on manylinux x86-64, whatever the host's Python) into a cache keyed by the lock,
#    and copies them into the build context beside the wheel. The lock pins wheels only: every
#    file matches a hash of the lock (an sdist would be rebuilt by `pip wheel` into a file with a
#    different hash, so the lock must not need one; --only-binary makes that an error here);
# 3. writes recstream.lock (`recstream==VERSION --hash=sha256:<wheel's hash>`), so the image
#    installs the wheel and the lock in one `pip install --no-index --require-hashes`;
# 4. runs `podman build` (CONTAINER_ENGINE=docker for Docker) on that context. The image is
#    tagged twice: TAG (default localhost/recstream-worker:VERSION) and a content tag
#    localhost/recstream-worker:VERSION-<12 hex> keyed on the wheel, the lock, the Dockerfile
#    and the build arguments; when the content tag exists already the build is skipped (--force
#    rebuilds). Older content tags of the same version and the build stage's leftover images are
#    then removed (--keep keeps them), so repeated builds do not fill the disk.
# --context DIR keeps the build context in DIR (must be empty or absent); --no-build only makes it.
#
# The last line printed is `image: <content tag>`. Environment: PYTHON (default .venv/bin/python,
# needs pip, setuptools and wheel), CONTAINER_ENGINE (podman), BUILD_ARGS (extra
# `--build-arg K=V ...` words, e.g. BASE_IMAGE=python:3.11-slim-bookworm and friends, see the
# Dockerfile), RECSTREAM_CACHE_DIR (wheelhouse cache; default ~/.cache/recstream).
# On the machines without Docker, /work/shared/containers/podman-setup.sh installs podman and
# makes the base image localhost/debian-base:bookworm; its containers.conf is used when present.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dockerfile=$repo/deploy/docker/worker.Dockerfile
name=localhost/recstream-worker
tag=""
context=""
build=1
force=0
keep=0
while [ $# -gt 0 ]; do
  case $1 in
    -t | --tag) tag=$2; shift 2 ;;
    --context) context=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --force) force=1; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-worker-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

py=${PYTHON:-$repo/.venv/bin/python}
engine=${CONTAINER_ENGINE:-podman}
read -r -a build_args <<<"${BUILD_ARGS:-}"
if [ -z "${CONTAINERS_CONF:-}" ] && [ -f /var/tmp/recstream-containers.conf ]; then
  export CONTAINERS_CONF=/var/tmp/recstream-containers.conf
fi
[ -x "$py" ] || { echo "build-worker-image: no Python at $py (make install, or set PYTHON)" >&2; exit 1; }
if [ "$build" = 1 ] && ! command -v "$engine" >/dev/null; then
  echo "build-worker-image: $engine is not installed (CONTAINER_ENGINE=docker to use Docker)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/recstream-worker-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -z "$context" ]; then
  context=$work/context
elif [ -e "$context" ] && [ -n "$(ls -A "$context")" ]; then
  echo "build-worker-image: --context $context is not empty" >&2
  exit 1
fi
mkdir -p "$context/wheelhouse" "$work/src"
started=$(date +%s)

# 1. The wheel, built from a copy of the checkout's files.
(
  cd "$repo"
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -
) | tar -xf - -C "$work/src"
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 315532800)
export SOURCE_DATE_EPOCH
if ! "$py" -m pip wheel -q --no-deps --no-build-isolation --no-index -w "$work/dist" "$work/src" \
  >"$work/wheel.log" 2>&1; then
  cat "$work/wheel.log" >&2
  echo "build-worker-image: building the wheel failed" >&2
  exit 1
fi
wheel=$(ls "$work"/dist/recstream-*.whl)
version=$(basename "$wheel" | cut -d- -f2)
cp "$wheel" "$context/wheelhouse/"
printf 'recstream==%s \\\n    --hash=sha256:%s\n' "$version" "$(sha256sum "$wheel" | cut -d' ' -f1)" \
  >"$context/recstream.lock"
cp "$repo/requirements-worker.lock" "$context/requirements-worker.lock"

# 2. The locked dependencies' wheels (cached by the lock's hash; pip re-checks each file's hash).
lock_hash=$(sha256sum "$repo/requirements-worker.lock" | cut -c1-16)
cache=${RECSTREAM_CACHE_DIR:-$HOME/.cache/recstream}/wheelhouse/worker-$lock_hash
mkdir -p "$cache"
# The image's platform, not the host's: CPython 3.11, glibc 2.36 (Debian 12) on x86-64. pip does
# not widen a custom manylinux_2_36 to older glibc tags, so each is named.
platforms=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
for minor in $(seq 5 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
"$py" -m pip download -q --require-hashes --only-binary :all: --no-deps \
  --implementation cp --python-version 3.11 --abi cp311 "${platforms[@]}" \
  -r "$repo/requirements-worker.lock" -d "$cache"
cp "$cache"/*.whl "$context/wheelhouse/"
cp "$repo/deploy/docker/worker.Dockerfile.dockerignore" "$context/.dockerignore"

# 3. Content key: what the image is made of.
key=$(
  {
    cat "$dockerfile" "$context/recstream.lock" "$context/requirements-worker.lock"
    printf '%s\n' "${build_args[@]}"
  } | sha256sum | cut -c1-12
)
content_tag=$name:$version-$key
tag=${tag:-$name:$version}
echo "build-worker-image: context $context ($(du -sh "$context" | cut -f1)), wheel $(basename "$wheel")"

if [ "$build" = 1 ]; then
  if [ "$force" = 0 ] && "$engine" image inspect "$content_tag" >/dev/null 2>&1; then
    echo "build-worker-image: $content_tag exists (same wheel, lock, Dockerfile): not rebuilt"
  else
    "$engine" build --network host -f "$dockerfile" -t "$content_tag" "${build_args[@]}" "$context"
  fi
  "$engine" tag "$content_tag" "$tag"
  if [ "$keep" = 0 ]; then
    # Each changed wheel makes a new image (~270 MB of its own): drop the older content tags of
    # this version (an image still tagged otherwise, or used by a container, stays) and the
    # build stage's leftovers (label io.recstream.stage=worker-build; they hold the wheelhouse).
    "$engine" images --format '{{.Repository}}:{{.Tag}}' \
      | grep -E "^${name}:${version//./\\.}-[0-9a-f]{12}\$" | grep -vxF "$content_tag" \
      | while read -r old; do "$engine" rmi "$old" >/dev/null 2>&1 || true; done || true
    "$engine" image prune -f --filter label=io.recstream.stage=worker-build >/dev/null 2>&1 || true
  fi
  size=$("$engine" image inspect --format '{{.Size}}' "$content_tag")
  echo "build-worker-image: $tag = $content_tag, $((size / 1000000)) MB, $(($(date +%s) - started)) s"
fi
echo "image: $content_tag"
