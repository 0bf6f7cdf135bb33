"""One interface over the inference backends (Polygraphy-style runners).

A :class:`Backend` takes a model batch -- float32 NCHW, three channels, already in the
model's channel order and value range, H and W multiples of the model's size multiple --
and returns the model's output batch as float32 NCHW. :meth:`Backend.infer` checks the
batch and the backend's state, then calls the backend's :meth:`Backend.infer_impl`.
:meth:`Backend.submit` starts a batch and returns a :class:`PendingBatch`; backends that
can overlap transfers with compute (TensorRT) override :meth:`Backend.submit_impl`, the
others run synchronously. Backends own their native resources: :meth:`close` (or a
``with`` block) frees them, and a closed backend refuses work with a clear error.

Torch-free; heavy imports (onnxruntime, tensorrt, pycuda) live in the backend modules and
happen when a backend is constructed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ndr_edge.artifact import ArtifactMeta
from ndr_edge.errors import ArtifactError, BackendClosedError, InputError
from ndr_edge.runtime.closing import Closing


def check_model_file(path: Path, what: str, fix: str) -> None:
    """ArtifactError unless ``path`` is a non-empty file (``what``: model / engine; ``fix``: what to do)."""
    if not path.exists():
        raise ArtifactError(f"{path}: {what} file not found; {fix}")
    if not path.is_file():
        raise ArtifactError(f"{path}: not a file; pass an .onnx file, an .engine file or an export folder")
    if path.stat().st_size == 0:
        raise ArtifactError(f"{path}: empty {what} file; {fix}")


@dataclass(frozen=True)
class InputLimits:
    """Shapes (N, C, H, W) a backend accepts: a TensorRT optimisation profile. ``None``
    from :meth:`Backend.input_limits` means any shape (ONNX Runtime with dynamic axes)."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and all(lo <= s <= hi for s, lo, hi in zip(shape, self.min, self.max))

    def describe(self) -> str:
        def fmt(dims: tuple[int, ...]) -> str:
            return "x".join(str(d) for d in dims)

        return f"min {fmt(self.min)}, opt {fmt(self.opt)}, max {fmt(self.max)}"

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


class PendingBatch(ABC):
    """A submitted batch; :meth:`result` waits for it and returns float32 NCHW."""

    @abstractmethod
    def result(self) -> np.ndarray: ...

    @abstractmethod
    def done(self) -> bool: ...


class CompletedBatch(PendingBatch):
    """The result of a synchronous backend, already there."""

    def __init__(self, output: np.ndarray) -> None:
        self._output = output

    def result(self) -> np.ndarray:
        return self._output

    def done(self) -> bool:
        return True


class Backend(Closing, ABC):
    """Base of every backend: shared checks, state, and resource ownership."""

    name: ClassVar[str] = "backend"

    def __init__(self, path: Path, meta: ArtifactMeta) -> None:
        self.path = path
        self.meta = meta
        self._closed = False

    # -- what subclasses provide ------------------------------------------------------
    @abstractmethod
    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """Run one checked batch (float32, C-contiguous NCHW) and return float32 NCHW."""

    def submit_impl(self, batch: np.ndarray) -> PendingBatch:
        """Start one checked batch; the default runs it synchronously."""
        return CompletedBatch(self.infer_impl(batch))

    def close_impl(self) -> None:
        """Free native resources (called once)."""

    def input_limits(self) -> InputLimits | None:
        """The shapes this backend accepts, or None for any shape."""
        return None

    def describe(self) -> str:
        """One line for logs and summaries: backend, device/providers, file."""
        return f"{self.name} ({self.path.name})"

    # -- the public, checked interface ------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """Validate a model batch; return it float32 and C-contiguous, or raise InputError."""
        if self._closed:
            raise BackendClosedError(f"{self.describe()}: backend is closed; open the model again")
        if not isinstance(batch, np.ndarray):
            raise InputError(f"batch: expected a numpy array, got {type(batch).__name__}")
        if batch.dtype != np.float32:
            raise InputError(f"batch: expected float32 NCHW, got dtype {batch.dtype}; convert frames with Restorer.restore")
        if batch.ndim != 4 or batch.shape[1] != 3 or 0 in batch.shape:
            raise InputError(f"batch: expected a non-empty Nx3xHxW array, got shape {batch.shape}")
        multiple = self.meta.size_multiple
        if batch.shape[2] % multiple or batch.shape[3] % multiple:
            raise InputError(
                f"batch: H and W must be multiples of {multiple}, got {batch.shape[2]}x{batch.shape[3]}; "
                "pad with ndr_edge.frames.pad_to_multiple (Restorer.restore does it)"
            )
        limits = self.input_limits()
        if limits is not None and not limits.accepts(batch.shape):
            raise InputError(
                f"{self.path}: input shape {'x'.join(map(str, batch.shape))} is outside the engine's profile "
                f"({limits.describe()}); use tiling (--tile) or rebuild the engine with a larger max shape"
            )
        return np.ascontiguousarray(batch)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.infer_impl(self.check_batch(batch))

    def submit(self, batch: np.ndarray) -> PendingBatch:
        return self.submit_impl(self.check_batch(batch))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.close_impl()


    def __del__(self) -> None:  # best effort; close() is the contract
        with suppress(Exception):  # never raise from a finaliser
            self.close()
