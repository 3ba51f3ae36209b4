"""Triton Inference Server: model repository (typed configs), client, local launcher."""
