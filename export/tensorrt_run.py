"""Run a serialized TensorRT engine on NCHW float32 batches, to verify what stage 6 built
against ONNX Runtime. Not the deployment runtime (that is ``ndr_edge.runtime``): the
smallest correct use of the TensorRT 10/11 name-based I/O API (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``).

Device memory comes from PyTorch's CUDA build when it has one, otherwise from pycuda.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifact import INPUT_NAME, OUTPUT_NAME
from ..errors import ArtifactError, BackendUnavailableError
from .tensorrt_build import dims_list, import_tensorrt

if TYPE_CHECKING:
    import tensorrt as trt


class _TorchMemory:
    """Buffers and a stream from a CUDA build of PyTorch."""

    def __init__(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError("PyTorch has no CUDA here")
        self.torch = torch
        self.stream = torch.cuda.Stream()

    def run(self, context: trt.IExecutionContext, batch: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        torch = self.torch
        with torch.cuda.stream(self.stream):
            device_in = torch.from_numpy(np.ascontiguousarray(batch)).cuda(non_blocking=False)
            device_out = torch.empty(out_shape, dtype=torch.float32, device="cuda")
            context.set_tensor_address(INPUT_NAME, int(device_in.data_ptr()))
            context.set_tensor_address(OUTPUT_NAME, int(device_out.data_ptr()))
            if not context.execute_async_v3(self.stream.cuda_stream):
                raise ArtifactError("TensorRT execute_async_v3 failed")
            self.stream.synchronize()
            return np.asarray(device_out.cpu().numpy())


class _PycudaMemory:
    """Buffers and a stream from pycuda (its own primary context)."""

    def __init__(self) -> None:
        try:
            import pycuda.autoinit  # noqa: F401  (creates and activates a context)
            import pycuda.driver as cuda
        except ImportError as exc:
            raise BackendUnavailableError(f"neither a CUDA PyTorch nor pycuda is installed ({exc}); pip install pycuda") from None
        self.cuda = cuda
        self.stream = cuda.Stream()

    def run(self, context: trt.IExecutionContext, batch: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        cuda = self.cuda
        host_in = np.ascontiguousarray(batch, dtype=np.float32)
        host_out: np.ndarray = np.empty(out_shape, dtype=np.float32)
        device_in, device_out = cuda.mem_alloc(host_in.nbytes), cuda.mem_alloc(host_out.nbytes)
        try:
            cuda.memcpy_htod_async(device_in, host_in, self.stream)
            context.set_tensor_address(INPUT_NAME, int(device_in))
            context.set_tensor_address(OUTPUT_NAME, int(device_out))
            if not context.execute_async_v3(self.stream.handle):
                raise ArtifactError("TensorRT execute_async_v3 failed")
            cuda.memcpy_dtoh_async(host_out, device_out, self.stream)
            self.stream.synchronize()
        finally:
            device_in.free()
            device_out.free()
        return host_out


def _memory() -> _TorchMemory | _PycudaMemory:
    try:
        return _TorchMemory()
    except (ImportError, BackendUnavailableError):
        return _PycudaMemory()


class EngineRunner:
    """``runner(batch) -> output`` for an engine with one float32 input and one float32 output."""

    def __init__(self, engine_path: str | Path) -> None:
        import_tensorrt()
        import tensorrt as trt

        self.path = Path(engine_path)
        self.memory = _memory()  # before deserialising: pycuda must own a current context
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise ArtifactError(f"{self.path}: TensorRT cannot deserialize this engine (other TensorRT version "
                                "or GPU?); rebuild it with ndr-export on this machine")
        self.engine: trt.ICudaEngine = engine
        self.context: trt.IExecutionContext = engine.create_execution_context()
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        if names != {INPUT_NAME, OUTPUT_NAME}:
            raise ArtifactError(f"{self.path}: expected tensors {INPUT_NAME!r} and {OUTPUT_NAME!r}, found {sorted(names)}")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import tensorrt as trt

        if not self.context.set_input_shape(INPUT_NAME, trt.Dims(list(batch.shape))):
            raise ArtifactError(f"{self.path.name}: input shape {batch.shape} is outside the engine's profile")
        out_shape = tuple(dims_list(self.context.get_tensor_shape(OUTPUT_NAME)))
        return self.memory.run(self.context, batch.astype(np.float32, copy=False), out_shape)


def engine_runner(engine_path: str | Path) -> Any:
    """A batch function for ``ndr_edge.export.compare`` (float32 NCHW in and out)."""
    return EngineRunner(engine_path)
