"""Errors raised by the encoders package.

Every failure of an encoder, the fusion model or training is an :class:`EncoderError`, so
callers (the Triton Python backend, the CLI) can catch one type::

    EncoderError
    ├── ModelLoadError           a model file or folder is missing, unreadable or malformed
    ├── BackendUnavailableError  an optional runtime (onnxruntime) is not installed
    ├── ModelOutputError         a user-supplied model broke its input/output contract
    ├── ArtefactError            a fusion artefact is missing, incomplete or of another format
    └── TrainingError            training cannot run (no data before the cut, bad settings)

Bad *input* bytes are not encoder failures: the image encoders let
:class:`schemas.imaging.ImageError` (a ``ValueError``) through unchanged, because the edge
validation raises the same type and the stream sends both to the dead-letter topic.
"""

from __future__ import annotations


class EncoderError(Exception):
    """Base class of every error raised by ``encoders``."""


class ModelLoadError(EncoderError):
    """A model (MiniLM folder, TorchScript or ONNX file) could not be loaded."""


class BackendUnavailableError(EncoderError):
    """An optional runtime the configuration asks for is not installed."""


class ModelOutputError(EncoderError):
    """A model returned an output that violates the documented contract (shape, finiteness)."""


class ArtefactError(EncoderError):
    """A fusion artefact folder is missing files or has an unsupported format version."""


class TrainingError(EncoderError):
    """Training was asked for something impossible (e.g. no interactions before the cut)."""
