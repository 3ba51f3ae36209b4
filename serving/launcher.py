"""Launch ``tritonserver`` from the ``nvidia-pytriton`` wheel on this machine.

The wheel ships the server binary, its bundled shared libraries and one Python-backend stub per
Python version. Two details make the Python backend use *our* interpreter:

* ``LD_LIBRARY_PATH`` starts with this interpreter's own lib dir, so the stub loads the same
  ``libpython3.11.so.1.0`` (not a system Python's);
* ``PATH`` starts with this interpreter's ``bin/``, because the embedded interpreter finds its
  prefix (and so the venv's site-packages) through the ``python3`` it sees on ``PATH``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from serving.errors import ServerNotFound


@dataclass(frozen=True)
class TritonInstall:
    """Paths inside the installed nvidia-pytriton wheel."""

    root: Path  # .../site-packages/pytriton/tritonserver

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        return self.root.parent.parent / "nvidia_pytriton.libs"

    def stub(self) -> Path:
        ver = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "python_backend_stubs" / ver / "triton_python_backend_stub"


def find_triton() -> TritonInstall:
    """Locate the Triton server shipped in the nvidia-pytriton wheel.

    Raises:
        ServerNotFound: The wheel is not installed or lacks the binary/stub for this Python.
    """
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerNotFound("nvidia-pytriton is not installed (run `make install`)")
    inst = TritonInstall(Path(next(iter(spec.submodule_search_locations))) / "tritonserver")
    for path in (inst.binary, inst.stub()):
        if not path.exists():
            raise ServerNotFound(f"missing {path}")
    return inst


def prepare_backends(inst: TritonInstall, dest: Path) -> Path:
    """A backend directory whose ``python`` backend uses the stub built for this Python."""
    py = dest / "python"
    py.mkdir(parents=True, exist_ok=True)
    links = {p.name: p for p in (inst.root / "backends" / "python").iterdir() if p.name != "__pycache__"}
    links["triton_python_backend_stub"] = inst.stub()
    for name, target in links.items():
        link = py / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return dest


def server_env(inst: TritonInstall, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for tritonserver so the Python backend runs this very interpreter."""
    env = dict(os.environ if base is None else base)
    libdir = sysconfig.get_config_var("LIBDIR") or str(Path(sys.base_prefix) / "lib")
    parts = [libdir, str(inst.libs)] + [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
    env["LD_LIBRARY_PATH"] = ":".join(parts)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def server_argv(
    inst: TritonInstall,
    *,
    model_repository: Path,
    backend_dir: Path,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
) -> list[str]:
    """Command line for a loopback-only server in explicit model-control mode.

    Explicit mode with ``--load-model=*`` loads every model at start and lets clients load a
    new version later through the repository API (hot swap without a restart).
    """
    return [
        str(inst.binary),
        f"--model-repository={model_repository}",
        f"--backend-directory={backend_dir}",
        "--model-control-mode=explicit",
        "--load-model=*",
        "--strict-readiness=true",
        "--exit-on-error=true",
        "--http-address=127.0.0.1",
        f"--http-port={http_port}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={grpc_port}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={metrics_port}",
        "--allow-metrics=true",
        # Distinct shared-memory names per server, so two servers on one host never collide.
        f"--backend-config=python,shm-region-prefix-name=recstream{grpc_port}_",
        "--log-verbose=0",
    ]
