"""``recstream model``: what the local Triton serves, and loading a newly trained fusion model."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from recstream.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``model`` command."""
    p = sub.add_parser(
        "model",
        help="show the served fusion model, or load a trained one into the running local Triton",
        description=(
            "`recstream model show` prints the fusion version Triton serves. `recstream model load "
            "[--model DIR]` stages a trained artefact (default: the latest under "
            "RECSTREAM_MODEL_DIR) as the next fusion version of the local stack's model repository "
            "and asks Triton to load it: the new version takes over when ready, no request fails. "
            "Running workers keep the version label and decay they read at start: restart them "
            "(one at a time) to publish lists labelled with the new version."
        ),
    )
    p.add_argument("action", choices=["show", "load"])
    p.add_argument("--model", type=Path, default=None, help="artefact folder (default: latest trained)")
    p.set_defaults(func=run)


async def _show(url: str) -> str:
    from serving.client.triton import TritonClient

    async with TritonClient(url, timeout_s=30) as client:
        return (await client.model_info()).version


async def _load(url: str) -> str:
    from serving.client.triton import TritonClient

    async with TritonClient(url, timeout_s=120) as client:
        await client.load_model("fusion")
        return (await client.model_info()).version


def run(args: argparse.Namespace) -> int:
    """Execute ``model``."""
    from serving.models import instance_kind
    from serving.repository import add_fusion_version, latest_trained

    settings = load_settings()
    if args.action == "show":
        print(asyncio.run(_show(settings.triton_grpc_url)))
        return 0
    artefact = args.model or latest_trained(settings.model_dir)
    if artefact is None or not (artefact / "meta.json").is_file():
        print(f"recstream model: no trained artefact at {artefact or settings.model_dir}", file=sys.stderr)
        return 2
    repo = settings.stack_dir / "triton" / "model_repository"
    if not (repo / "fusion").is_dir():
        print(
            f"recstream model: no local model repository at {repo}; `recstream stack up` first",
            file=sys.stderr,
        )
        return 2
    version = add_fusion_version(repo, artefact, instance_kind(settings.triton_device))
    served = asyncio.run(_load(settings.triton_grpc_url))
    print(f"staged {artefact} as fusion/{version}; Triton serves {served}")
    return 0
