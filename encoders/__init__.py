"""Models that turn items into embeddings: text (PyTorch and its ONNX export), image, fusion.

Also their artefacts on disk. Training lives in :mod:`recstream.lab.training`; this package
imports only :mod:`schemas` (``.importlinter``).
"""
