# syntax=docker/dockerfile:1
# recstream worker image: `recstream worker` (default) and the one-shot init job
# (`recstream schema apply` + topic creation).
#
# The image holds the built wheel and the worker's locked dependencies (requirements-worker.lock:
# the base dependencies only, no torch, no Triton server, no lab) in a virtual environment under
# /opt/recstream, and no source tree. Its build context is NOT the repository: it is a folder
# made by deploy/docker/build-worker-image.sh (or `make image-worker`):
#
#   <context>/requirements-worker.lock   the lock, verbatim
#   <context>/recstream.lock             `recstream==X --hash=sha256:<the built wheel's hash>`
#   <context>/wheelhouse/*.whl           recstream's wheel + every wheel of the lock (pip download)
#
# and pip installs from it with --no-index --require-hashes: nothing is fetched from an index
# during the build and every wheel must match a hash of the lock. (The lock holds only wheels for
# Linux x86-64 / CPython 3.11, so no sdist is ever built and the hashes match the files.)
#
# Runs as nobody (65534:65534) and is meant to run with a read-only root filesystem; the one
# writable place it needs is RECSTREAM_HOME=/var/lib/recstream (a volume, an emptyDir or a tmpfs):
#
#   podman run --rm --read-only --tmpfs /var/lib/recstream:U --network host \
#     -e RECSTREAM_KAFKA_BOOTSTRAP_SERVERS=... localhost/recstream-worker:0.1.0
#
# No registry needed: the default base is a local Debian 12 image
# (/work/shared/containers/podman-setup.sh makes one with debootstrap). Elsewhere point BASE_IMAGE
# at any Debian/Ubuntu image with Python 3.11, e.g. for python:3.11-slim-bookworm (whose Python
# is /usr/local/bin/python3):
#   --build-arg BASE_IMAGE=python:3.11-slim-bookworm --build-arg PYTHON_PACKAGES= \
#   --build-arg PYTHON=/usr/local/bin/python3
ARG BASE_IMAGE=localhost/debian-base:bookworm

# ---- python: the base plus the interpreter and CA certificates (shared by both stages) ----
FROM ${BASE_IMAGE} AS python
# Debian packages of the interpreter; empty when the base has Python 3.11 already.
ARG PYTHON_PACKAGES=python3
# ca-certificates: RECSTREAM_KAFKA_SSL_CAFILE / _CASSANDRA_SSL_CAFILE unset means "trust the
# system's CAs" (recstream/security.py), which needs the system's CA bundle.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ${PYTHON_PACKAGES} ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
      /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
 && install -d -o 65534 -g 65534 -m 0755 /var/lib/recstream

# ---- build: the virtual environment, filled from the wheelhouse (which stays in this stage) ----
FROM python AS build
# The venv's python is a symlink to ${PYTHON}: the final stage has it at the same path.
ARG PYTHON=/usr/bin/python3
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_CONFIG_FILE=/dev/null \
    LANG=C.UTF-8
# Marks this stage's images (they hold the wheelhouse): the build script prunes stale ones.
LABEL io.recstream.stage=worker-build
COPY requirements-worker.lock recstream.lock /tmp/build/
COPY wheelhouse /tmp/build/wheelhouse
# `venv --without-pip` needs no python3-venv/ensurepip: the lock's own pip wheel (hash-checked
# when downloaded) runs from the wheel file and installs, in one run, recstream's wheel and the
# whole lock, pip included, resolving recstream's dependencies against the lock only (one
# missing from the lock fails here, not at run time). `pip check` verifies the result.
RUN "${PYTHON}" -m venv --without-pip /opt/recstream \
 && pip_wheel=$(ls /tmp/build/wheelhouse/pip-*.whl) \
 && /opt/recstream/bin/python "${pip_wheel}/pip" install -q --no-index \
      --find-links /tmp/build/wheelhouse --require-hashes --only-binary :all: \
      -r /tmp/build/requirements-worker.lock -r /tmp/build/recstream.lock \
 && /opt/recstream/bin/python -m pip check \
 && /opt/recstream/bin/recstream --help >/dev/null

# ---- the image: interpreter, CA certificates and the venv; nothing else ----
FROM python
COPY --from=build /opt/recstream /opt/recstream

# RECSTREAM_HOME: every path recstream writes (Faust's table metadata under <home>/stack,
# caches) defaults below it (recstream/settings.py). HOME points there too, for any library that
# writes under ~. The web server (metrics, /healthz, /readyz) listens on all interfaces inside
# the container; which ports are reachable is decided by the runtime (compose, Service, -p).
ENV PATH=/opt/recstream/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RECSTREAM_HOME=/var/lib/recstream \
    HOME=/var/lib/recstream \
    RECSTREAM_WEB_HOST=0.0.0.0 \
    RECSTREAM_WEB_PORT=6066 \
    RECSTREAM_LOG_FORMAT=json

# Without a mount, Docker/podman give /var/lib/recstream an anonymous volume, so
# `run --read-only` works as is; a tmpfs, named volume or emptyDir replaces it.
VOLUME ["/var/lib/recstream"]
WORKDIR /var/lib/recstream
USER 65534:65534
EXPOSE 6066
# Docker honours this; podman only in --format docker (OCI images have no healthcheck);
# Kubernetes uses its own probes (deploy/k8s/base/worker.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RECSTREAM_WEB_PORT', '6066'), timeout=4)"]
ENTRYPOINT ["recstream"]
CMD ["worker"]
