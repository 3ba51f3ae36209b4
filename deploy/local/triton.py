"""Triton Inference Server from the nvidia-pytriton wheel, serving the repository in serving/."""

from __future__ import annotations

import urllib.request

from deploy.local.base import Launch, Service
from serving.launcher import find_triton, prepare_backends, server_argv, server_env
from serving.models import instance_kind
from serving.repository import build_repository, text_encoder_params


class TritonService(Service):
    """Triton with HTTP 8000, gRPC 8001, metrics 8002 on 127.0.0.1."""

    name = "triton"

    @property
    def ports(self) -> list[int]:
        s = self.settings
        return [s.triton_http_port, s.triton_grpc_port, s.triton_metrics_port]

    def describe(self) -> str:
        s = self.settings
        return f"HTTP :{s.triton_http_port}, gRPC :{s.triton_grpc_port}, metrics :{s.triton_metrics_port}"

    def prepare(self) -> Launch:
        inst = find_triton()
        kind = instance_kind(self.settings.triton_device)
        repo = self.home / "model_repository"
        image_params = {
            "max_bytes": str(self.settings.max_image_bytes),
            "max_pixels": str(self.settings.max_image_pixels),
        }
        if self.settings.image_model_path:
            image_params["image_model_path"] = str(self.settings.image_model_path)
        text_params = text_encoder_params(self.settings.text_encoder, kind, self.settings.cache_dir)
        build_repository(
            repo, kind, model_dir=self.settings.model_dir, image_params=image_params, text_params=text_params
        )
        backends = prepare_backends(inst, self.home / "backends")
        s = self.settings
        argv = server_argv(
            inst,
            model_repository=repo,
            backend_dir=backends,
            http_port=s.triton_http_port,
            grpc_port=s.triton_grpc_port,
            metrics_port=s.triton_metrics_port,
        )
        return Launch(argv, server_env(inst), self.home)

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.settings.triton_http_port}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except Exception as exc:
            self.last_error = repr(exc)
            return False
