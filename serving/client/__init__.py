"""Clients for the served models: one interface, a Triton gRPC backend and an in-process one.

``TritonClient`` is what workers use; ``InProcessClient`` runs the same encoders inside the
process for the fast evaluation mode and unit tests (never in place of Triton in an
integration test).
"""

from serving.client.base import FusionInputs, InferenceClient

__all__ = ["FusionInputs", "InferenceClient"]
