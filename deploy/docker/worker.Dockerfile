# syntax=docker/dockerfile:1
# recstream worker image: `recstream worker` (default) and the one-shot init job
# (`recstream schema apply` + topic creation). Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t recstream-worker:0.1.0 .
# (BuildKit reads deploy/docker/worker.Dockerfile.dockerignore beside this file.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# The worker never runs a model itself (Triton does), so torch comes from PyTorch's CPU index:
# ~200 MB instead of the CUDA wheels' several GB. Override to use another index/mirror.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HOME=/home/recstream

# Unprivileged user with a fixed uid/gid (Kubernetes runAsUser: 10001 matches).
RUN groupadd --system --gid 10001 recstream \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/recstream --create-home \
      --shell /usr/sbin/nologin recstream

RUN pip install --index-url "${TORCH_INDEX_URL}" torch

# Install the project (not editable): only the packages, no tests/data/artefacts.
WORKDIR /tmp/recstream-src
COPY pyproject.toml README.md ./
COPY recstream ./recstream
COPY streams ./streams
COPY encoders ./encoders
COPY serving ./serving
COPY schemas ./schemas
COPY deploy/__init__.py ./deploy/__init__.py
COPY deploy/local ./deploy/local
RUN pip install . && rm -rf /tmp/recstream-src

# Faust keeps its local table state in the working directory: a writable volume in
# Kubernetes (readOnlyRootFilesystem) and a plain directory here.
RUN install -d -o 10001 -g 10001 /var/lib/recstream /opt/recstream/models
WORKDIR /var/lib/recstream

# Inside a container the web server (metrics, /healthz, /readyz) must listen on all
# interfaces; which ports are reachable is decided by the compose file or the Service.
ENV RECSTREAM_WEB_HOST=0.0.0.0 \
    RECSTREAM_WEB_PORT=6066 \
    RECSTREAM_MODEL_DIR=/opt/recstream/models \
    RECSTREAM_LOG_FORMAT=json

USER 10001:10001
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/healthz', timeout=4)"]
ENTRYPOINT ["recstream"]
CMD ["worker"]
