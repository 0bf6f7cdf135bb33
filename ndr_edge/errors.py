"""Typed errors of the toolkit. Library code raises these; the CLIs print them as one
line (``ndr-xxx: error: <message>``) and exit non-zero. Torch-free.
"""

from __future__ import annotations


class NDREdgeError(Exception):
    """Base of every error the toolkit raises on purpose (bad input, missing files)."""

    exit_code = 2


class InputError(NDREdgeError):
    """An input file, folder or array that cannot be used; the message names it and the fix."""


class CheckpointError(NDREdgeError):
    """A checkpoint that is missing, corrupt, or does not fit the model."""


class ArtifactError(NDREdgeError):
    """An exported artifact (ONNX file, engine, manifest) that is missing, corrupt or mismatched."""


class ConfigError(InputError, ValueError):
    """A configuration that cannot describe an NDR-Restore network (or a training run)."""


class BackendClosedError(NDREdgeError):
    """A backend (or a restorer or stream built on it) used after ``close()``."""


class StreamClosedError(NDREdgeError):
    """A stream used after close() (push), or pulled past its last frame after close()."""


class LatencyError(NDREdgeError, RuntimeError):
    """A report worker could not measure a variant; the message is the reason."""


class BackendUnavailableError(NDREdgeError):
    """A backend (TensorRT, CUDA, ONNX Runtime) that is not installed or has no device here."""

    exit_code = 3


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters (its type name
    when the message is empty): what a one-line error quotes from a library's exception."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
