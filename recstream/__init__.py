"""recstream: real-time multimodal recommendation stream processor."""

__version__ = "0.1.0"
