"""TensorRT backend: a deserialised engine, pinned host buffers and device buffers
allocated once at the profile's largest shape, input shapes set per call within the
engine's optimisation profiles, ``set_tensor_address`` + ``execute_async_v3`` (the
TensorRT 10/11 I/O API, ``num_io_tensors`` / ``get_tensor_name``).

Double buffering: two buffer slots and three CUDA streams (upload, compute, download).
:meth:`TensorRTBackend.submit` copies a batch into its slot's pinned buffer and starts the
upload on the upload stream at once, so the next batch travels to the GPU while the
current one computes; compute waits for its upload through an event, the download waits
for compute the same way. The single execution context is only re-configured once the
previous execution has finished (TensorRT forbids changing a context's shapes and
addresses under a running enqueue), which costs nothing while the upload overlaps.

``tensorrt`` and ``pycuda`` are imported when a backend is constructed (or
:func:`~.tensorrt_env.require_tensorrt` is called), never at package import. An engine is checked against
its sidecar (TensorRT release, GPU architecture) before it is deserialised.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ndr_edge.artifact import INPUT_NAME, OUTPUT_NAME
from ndr_edge.errors import ArtifactError, BackendUnavailableError, NDREdgeError
from ndr_edge.runtime.backend import Backend, InputLimits, PendingBatch, check_model_file
from ndr_edge.runtime.engine_sidecar import REBUILD_HINT, EngineSidecar, check_compatibility, pick_profile, union_limits
from ndr_edge.runtime.tensorrt_env import require_tensorrt, tensorrt_unavailable_reason

__all__ = ["TensorRTBackend", "TensorRTSettings", "dims_tuple", "require_tensorrt", "tensorrt_unavailable_reason"]


@dataclass(frozen=True)
class TensorRTSettings:
    """``device``: CUDA device index; ``slots``: buffer sets (2: the next batch uploads while
    the current one computes)."""

    device: int = 0
    slots: int = 2

if TYPE_CHECKING:
    import tensorrt as trt

def dims_tuple(dims: trt.Dims) -> tuple[int, ...]:
    """A TensorRT Dims as a tuple (Dims supports len() and indexing)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


def _volume(dims: trt.Dims) -> int:
    return int(np.prod([max(1, d) for d in dims_tuple(dims)]))


class _Slot:
    """One set of pinned host and device buffers with the events of its last batch."""

    def __init__(self, cuda: Any, in_elems: int, in_dtype: Any, out_elems: int, out_dtype: Any) -> None:
        self.host_in = cuda.pagelocked_empty(in_elems, in_dtype)
        self.host_out = cuda.pagelocked_empty(out_elems, out_dtype)
        self.dev_in = cuda.mem_alloc(max(1, self.host_in.nbytes))
        self.dev_out = cuda.mem_alloc(max(1, self.host_out.nbytes))
        self.uploaded = cuda.Event()
        self.executed = cuda.Event()
        self.downloaded = cuda.Event()
        self.owner: _TensorRTPending | None = None

    def free(self) -> None:
        self.dev_in.free()
        self.dev_out.free()


class _TensorRTPending(PendingBatch):
    def __init__(self, backend: TensorRTBackend, slot: _Slot, shape: tuple[int, ...]) -> None:
        self._backend = backend
        self._slot: _Slot | None = slot
        self._shape = shape
        self._output: np.ndarray | None = None

    def materialize(self) -> None:
        """Wait for the download and copy out of the pinned buffer, freeing the slot."""
        with self._backend.lock:
            slot = self._slot
            if slot is None:
                return
            with self._backend.cuda_context():
                slot.downloaded.synchronize()
            count = int(np.prod(self._shape))
            self._output = np.asarray(slot.host_out[:count], dtype=np.float32).reshape(self._shape).copy()
            slot.owner = None
            self._slot = None

    def result(self) -> np.ndarray:
        self.materialize()
        assert self._output is not None
        return self._output

    def done(self) -> bool:
        slot = self._slot  # read once: a concurrent materialize() may clear it
        if slot is None:
            return True
        with self._backend.cuda_context():
            return bool(slot.downloaded.query())


class TensorRTBackend(Backend):
    """A TensorRT engine (``X.engine`` with its ``X.engine.json`` sidecar) on one GPU."""

    name = "tensorrt"

    def __init__(self, path: str | Path, settings: TensorRTSettings | None = None) -> None:
        self.settings = settings = settings or TensorRTSettings()
        device, slots = settings.device, settings.slots
        path = Path(path)
        check_model_file(path, "engine", REBUILD_HINT)
        sidecar = EngineSidecar.read(path)
        require_tensorrt(device)
        import pycuda.driver as cuda
        import tensorrt as trt

        self._cuda = cuda
        gpu = cuda.Device(device)
        major, minor = gpu.compute_capability()
        self.gpu_name = str(gpu.name())
        for message in check_compatibility(sidecar, str(trt.__version__), self.gpu_name, f"{major}.{minor}"):
            warnings.warn(message, stacklevel=2)
        super().__init__(path, sidecar.meta)
        self.sidecar = sidecar
        self.lock = threading.RLock()
        self._primary = gpu.retain_primary_context()
        self._slots: list[_Slot] = []
        try:
            with self.cuda_context():
                self._logger = trt.Logger(trt.Logger.WARNING)
                self._runtime = trt.Runtime(self._logger)
                engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
                if engine is None:
                    raise ArtifactError(
                        f"{path}: TensorRT {trt.__version__} could not deserialise this engine (truncated file, or built "
                        f"by another TensorRT release); {REBUILD_HINT}"
                    )
                self._engine: trt.ICudaEngine = engine
                names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
                inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
                outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
                if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
                    raise ArtifactError(
                        f"{path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, found inputs {inputs} and "
                        f"outputs {outputs}; {REBUILD_HINT}"
                    )
                self._extra_outputs = [n for n in outputs if n != OUTPUT_NAME]
                self._profiles = tuple(self._engine_profile(i) for i in range(engine.num_optimization_profiles))
                self._limits = union_limits(self._profiles)
                in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(INPUT_NAME)))
                out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(OUTPUT_NAME)))
                context = engine.create_execution_context()
                if context is None:
                    raise BackendUnavailableError(f"{path}: TensorRT could not create an execution context (GPU memory?)")
                self._context: trt.IExecutionContext = context
                self._active_profile = 0
                # Output sizes at the largest input of each profile: set its max shape to ask the engine.
                out_elems = 0
                extra_bytes = dict.fromkeys(self._extra_outputs, 1)
                for index, profile in enumerate(self._profiles):
                    if index:
                        context.set_optimization_profile_async(index, 0)
                    context.set_input_shape(INPUT_NAME, profile.max)
                    out_elems = max(out_elems, _volume(context.get_tensor_shape(OUTPUT_NAME)))
                    for name in self._extra_outputs:
                        itemsize = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).itemsize
                        extra_bytes[name] = max(extra_bytes[name], _volume(context.get_tensor_shape(name)) * itemsize)
                if len(self._profiles) > 1:
                    context.set_optimization_profile_async(0, 0)
                in_elems = int(np.prod(self._limits.max))
                self._slots = [_Slot(cuda, in_elems, in_dtype, out_elems, out_dtype) for _ in range(max(1, slots))]
                # Outputs other than OUTPUT_NAME still need an address: scratch buffers.
                self._scratch = {name: cuda.mem_alloc(size) for name, size in extra_bytes.items()}
                self._upload = cuda.Stream()
                self._compute = cuda.Stream()
                self._download = cuda.Stream()
                self._last_executed: Any = None
                self._next_slot = 0
        except BaseException:
            self.close()  # frees whatever was allocated before the failure
            raise

    # -- helpers ----------------------------------------------------------------------
    def _engine_profile(self, index: int) -> InputLimits:
        low, opt, high = (dims_tuple(d) for d in self._engine.get_tensor_profile_shape(INPUT_NAME, index))
        if not len(low) == len(opt) == len(high) == 4:
            raise ArtifactError(f"{self.path}: engine input {INPUT_NAME!r} is not NCHW; {REBUILD_HINT}")
        return InputLimits(min=low, opt=opt, max=high)  # type: ignore[arg-type]

    @contextmanager
    def cuda_context(self) -> Iterator[None]:
        """Make this backend's CUDA context current in the calling thread."""
        self._primary.push()
        try:
            yield
        finally:
            self._cuda.Context.pop()

    def input_limits(self) -> InputLimits:
        return self._limits

    def describe(self) -> str:
        return f"tensorrt [{self.gpu_name}] ({self.path.name}, {self.meta.precision})"

    # -- inference --------------------------------------------------------------------
    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self.submit_impl(batch).result()

    def submit_impl(self, batch: np.ndarray) -> PendingBatch:
        with self.lock:  # one caller at a time owns the slots and the execution context
            return self._submit_locked(batch)

    def _submit_locked(self, batch: np.ndarray) -> PendingBatch:
        cuda = self._cuda
        shape = tuple(int(s) for s in batch.shape)
        profile = pick_profile(shape, self._profiles, engine=self.path.name)
        slot = self._slots[self._next_slot]
        self._next_slot = (self._next_slot + 1) % len(self._slots)
        if slot.owner is not None:  # the caller has not collected this slot's last batch yet
            slot.owner.materialize()
        with self.cuda_context():
            slot.uploaded.synchronize()
            count = batch.size
            slot.host_in[:count] = batch.reshape(-1)
            cuda.memcpy_htod_async(slot.dev_in, slot.host_in[:count], self._upload)
            slot.uploaded.record(self._upload)
            # The upload above overlaps the running execution; re-configure the context only
            # once that execution has finished.
            if self._last_executed is not None:
                self._last_executed.synchronize()
            context = self._context
            if profile != self._active_profile:
                context.set_optimization_profile_async(profile, self._compute.handle)
                self._active_profile = profile
            if not context.set_input_shape(INPUT_NAME, shape):
                raise NDREdgeError(f"{self.path}: TensorRT refused input shape {shape}; {REBUILD_HINT}")
            out_shape = dims_tuple(context.get_tensor_shape(OUTPUT_NAME))
            context.set_tensor_address(INPUT_NAME, int(slot.dev_in))
            context.set_tensor_address(OUTPUT_NAME, int(slot.dev_out))
            for name, buffer in self._scratch.items():
                context.set_tensor_address(name, int(buffer))
            self._compute.wait_for_event(slot.uploaded)
            if not context.execute_async_v3(self._compute.handle):
                raise NDREdgeError(f"{self.path}: TensorRT execution failed for input shape {shape}")
            slot.executed.record(self._compute)
            self._last_executed = slot.executed
            self._download.wait_for_event(slot.executed)
            out_count = int(np.prod(out_shape))
            cuda.memcpy_dtoh_async(slot.host_out[:out_count], slot.dev_out, self._download)
            slot.downloaded.record(self._download)
        pending = _TensorRTPending(self, slot, out_shape)
        slot.owner = pending
        return pending

    def close_impl(self) -> None:
        with getattr(self, "lock", threading.RLock()):
            self._close_locked()

    def _close_locked(self) -> None:
        slots: list[_Slot] = getattr(self, "_slots", [])
        for slot in slots:
            if slot.owner is not None:
                slot.owner.materialize()
        primary = getattr(self, "_primary", None)
        if primary is None:
            return
        with self.cuda_context():
            for stream_name in ("_upload", "_compute", "_download"):
                stream = getattr(self, stream_name, None)
                if stream is not None:
                    stream.synchronize()
            for slot in slots:
                slot.free()
            for buffer in getattr(self, "_scratch", {}).values():
                buffer.free()
            self._slots = []
            for attr in ("_context", "_engine", "_runtime"):  # TensorRT objects go while the context is current
                if hasattr(self, attr):
                    delattr(self, attr)
        primary.detach()
