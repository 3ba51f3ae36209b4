"""Container entry point of the Triton image: build the model repository, then run Triton.

The image runs the ``tritonserver`` shipped in the ``nvidia-pytriton`` wheel with this
interpreter as the Python backend (the same arrangement as the local stack, see
:mod:`serving.launcher`), but listening on all interfaces of the container: which ports are
reachable from outside is decided by the compose file / Kubernetes Service, not here.

Usage::

    python triton_entrypoint.py build --repository /models/repository   # init container
    python triton_entrypoint.py serve --repository /models/repository   # build unless --no-build

Settings come from ``RECSTREAM_*`` (``RECSTREAM_TRITON_DEVICE``, ``RECSTREAM_MODEL_DIR``,
``RECSTREAM_TRITON_*_PORT``, ``RECSTREAM_IMAGE_MODEL_PATH``, ``RECSTREAM_MAX_IMAGE_*``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from recstream.settings import Settings, load_settings
from serving.launcher import find_triton, prepare_backends, server_argv, server_env
from serving.models import instance_kind
from serving.repository import build_repository, text_encoder_params

LOOPBACK_FLAGS = ("--http-address=", "--grpc-address=", "--metrics-address=")


def build(settings: Settings, repository: Path) -> list[str]:
    """Write the model repository for the configured device; returns the model names."""
    image_params = {
        "max_bytes": str(settings.max_image_bytes),
        "max_pixels": str(settings.max_image_pixels),
    }
    if settings.image_model_path:
        image_params["image_model_path"] = str(settings.image_model_path)
    kind = instance_kind(settings.triton_device)
    text_params = text_encoder_params(settings.text_encoder, kind, settings.cache_dir)
    names = build_repository(
        repository, kind, model_dir=settings.model_dir, image_params=image_params, text_params=text_params
    )
    print(f"triton-entrypoint: built {', '.join(names)} ({kind}) in {repository}", flush=True)
    return names


def container_argv(argv: list[str], address: str) -> list[str]:
    """``server_argv`` with the loopback bind addresses replaced by ``address``."""
    out = []
    for arg in argv:
        flag = next((f for f in LOOPBACK_FLAGS if arg.startswith(f)), None)
        out.append(f"{flag}{address}" if flag else arg)
    return out


def main(args: list[str] | None = None) -> int:
    """Parse the command line and build and/or exec Triton."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["build", "serve"])
    parser.add_argument("--repository", type=Path, default=Path("/models/repository"))
    parser.add_argument("--no-build", action="store_true", help="serve an already built repository")
    parser.add_argument("--address", default="0.0.0.0", help="bind address inside the container")
    parser.add_argument("--backends", type=Path, default=Path("/tmp/triton-backends"))
    ns = parser.parse_args(args)
    settings = load_settings()
    if ns.action == "build" or not ns.no_build:
        build(settings, ns.repository)
    if ns.action == "build":
        return 0
    inst = find_triton()
    argv = server_argv(
        inst,
        model_repository=ns.repository,
        backend_dir=prepare_backends(inst, ns.backends),
        http_port=settings.triton_http_port,
        grpc_port=settings.triton_grpc_port,
        metrics_port=settings.triton_metrics_port,
    )
    argv = container_argv(argv, ns.address)
    sys.stdout.flush()
    os.execve(argv[0], argv, server_env(inst))  # Triton replaces this process
    return 1  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
