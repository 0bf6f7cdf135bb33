"""TensorRT backend: a deserialised engine, pinned host buffers and device buffers
allocated once at the profile's largest shape, input shapes set per call within the
engine's optimisation profiles, ``set_tensor_address`` + ``execute_async_v3`` (the
TensorRT 10/11 I/O API, ``num_io_tensors`` / ``get_tensor_name``).

Double buffering: two buffer slots and three CUDA streams (upload, compute, download).
:meth:`TensorRTBackend.submit` copies a batch into its slot's pinned buffer and starts the
upload on the upload stream at once, so the next batch travels to the GPU while the
current one computes; compute waits for its upload through an event, the download waits
for compute the same way.

One execution context per slot. TensorRT forbids changing a context's shapes, addresses
or profile while an enqueue of it runs, so with a single context each submit had to wait
on the host for the previous execution. Here every slot owns its context: when a slot is
reused its previous batch has been downloaded (the caller collected it, or the submit
waits for it as before), so its context is idle and batch N+1 is configured and enqueued
while batch N still runs. The executions follow each other on the one compute stream (they
never overlap on the GPU; what overlaps is the host's work and the copies).
All contexts may select the same optimisation profile: TensorRT 10 shares profiles across
execution contexts (``PreviewFeature.PROFILE_SHARING_0806`` in NvInfer.h: "Allows
optimization profiles to be shared across execution contexts", "Deprecated in TensorRT 10.0.
The default value for this flag is on and can not be changed"; TensorRT 11 drops the flag,
the behaviour stays; trtexec ``--streams=N`` runs N contexts on the one profile it is given).
Before 8.6 a profile could be selected by one live context only, and 8.6 made sharing an
opt-in preview feature. (The class comment of ``IExecutionContext`` still says "each
execution context in concurrent use must use a separate optimization profile", the older
rule the flag lifted.)
Where that cannot hold -- TensorRT before 10, or an extra context that cannot be created
(GPU memory) or refuses a profile -- the slots share one context and each submit waits for
that context's previous execution before reconfiguring it, as before; ``contexts`` says
which (the number of execution contexts). Each context holds its own activation memory.

CUDA context lifetime. The backend retains the device's primary context when it is
constructed (the context the CUDA runtime, ONNX Runtime's CUDA provider and TensorRT's own
allocations use on that device) and releases that retain (``detach``) in :meth:`close`, last.
Every call pushes the primary context in the calling thread for its duration
(:meth:`TensorRTBackend.cuda_context`), so any thread may submit, collect or close. Close
waits for the streams, then, with the context current, frees the device and pinned buffers
and drops the last references to the streams, events and TensorRT objects (CPython destroys
them at once: ``cuStreamDestroy``/``cuEventDestroy`` run while their context is current and
alive), and only then detaches.

``tensorrt`` and ``pycuda`` are imported when a backend is constructed (or
:func:`~.tensorrt_env.require_tensorrt` is called), never at package import. An engine is checked against
its sidecar (TensorRT release, GPU architecture) before it is deserialised.
"""

from __future__ import annotations

import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ndr_edge.artifact import INPUT_NAME, OUTPUT_NAME
from ndr_edge.errors import ArtifactError, BackendUnavailableError, NDREdgeError
from ndr_edge.runtime.backend import Backend, InputLimits, PendingBatch, check_model_file
from ndr_edge.runtime.engine_sidecar import REBUILD_HINT, EngineSidecar, check_compatibility, pick_profile, union_limits
from ndr_edge.runtime.tensorrt_env import require_tensorrt, tensorrt_unavailable_reason

__all__ = ["TensorRTBackend", "TensorRTSettings", "dims_tuple", "profiles_shared_across_contexts", "require_tensorrt",
           "tensorrt_unavailable_reason"]

#: the first TensorRT major release in which execution contexts share optimisation profiles unconditionally
PROFILE_SHARING_SINCE = 10


@dataclass(frozen=True)
class TensorRTSettings:
    """``device``: CUDA device index; ``slots``: buffer sets, each with its execution context
    (2: the next batch uploads and is enqueued while the current one computes)."""

    device: int = 0
    slots: int = 2

if TYPE_CHECKING:
    import tensorrt as trt

def dims_tuple(dims: trt.Dims) -> tuple[int, ...]:
    """A TensorRT Dims as a tuple (Dims supports len() and indexing)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


def _volume(dims: trt.Dims) -> int:
    return int(np.prod([max(1, d) for d in dims_tuple(dims)]))


def profiles_shared_across_contexts(version: str) -> bool:
    """Whether execution contexts of one engine may use the same optimisation profile at once
    in this TensorRT release (``trt.__version__``): always from 10.0 on."""
    try:
        return int(version.split(".")[0]) >= PROFILE_SHARING_SINCE
    except ValueError:
        return False


class _Execution:
    """An execution context with its selected profile and the event recorded after its last
    enqueue: the context may be reconfigured once that event has completed."""

    def __init__(self, context: trt.IExecutionContext) -> None:
        self.context = context
        self.profile = 0  # a new context is assigned profile 0
        self.last_executed: Any = None


class _Slot:
    """One set of pinned host and device buffers, its execution context, and the events of its
    last batch."""

    def __init__(self, cuda: Any, in_elems: int, in_dtype: Any, out_elems: int, out_dtype: Any,
                 execution: _Execution) -> None:
        self.execution = execution
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
        self._slots: list[_Slot] = []
        self._executions: list[_Execution] = []
        self._primary = gpu.retain_primary_context()  # released (detached) last in close()
        try:
            with self.cuda_context():
                self._open(path, max(1, slots))
        except BaseException as exc:
            with suppress(Exception), self.cuda_context():
                # what the failed set-up held in its frames (engine, contexts, buffers) goes now, in the context
                traceback.clear_frames(exc.__traceback__)
            self.close()  # frees whatever was allocated before the failure
            raise

    def _open(self, path: Path, count: int) -> None:
        """Deserialise the engine and allocate streams, execution contexts and ``count`` slots
        (with the CUDA context current)."""
        import tensorrt as trt

        cuda = self._cuda
        self._upload = cuda.Stream()
        self._compute = cuda.Stream()
        self._download = cuda.Stream()
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
        first = _Execution(context)
        self._executions = [first]
        # Output sizes at the largest input of each profile: set its max shape to ask the engine.
        out_elems = 0
        extra_bytes = dict.fromkeys(self._extra_outputs, 1)
        for index, profile in enumerate(self._profiles):
            self._select_profile(first, index)
            context.set_input_shape(INPUT_NAME, profile.max)
            out_elems = max(out_elems, _volume(context.get_tensor_shape(OUTPUT_NAME)))
            for name in self._extra_outputs:
                itemsize = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).itemsize
                extra_bytes[name] = max(extra_bytes[name], _volume(context.get_tensor_shape(name)) * itemsize)
        self._select_profile(first, 0)
        if profiles_shared_across_contexts(str(trt.__version__)):
            self._executions += self._more_executions(engine, count - 1)
        in_elems = int(np.prod(self._limits.max))
        self._slots = [_Slot(cuda, in_elems, in_dtype, out_elems, out_dtype,
                             self._executions[i % len(self._executions)]) for i in range(count)]
        # Outputs other than OUTPUT_NAME still need an address: scratch buffers, shared by the contexts (their
        # executions follow each other on the compute stream, and nobody reads these outputs).
        self._scratch = {name: cuda.mem_alloc(size) for name, size in extra_bytes.items()}
        self._next_slot = 0
        self._compute.synchronize()  # the profile switches above are done before the first enqueue

    # -- helpers ----------------------------------------------------------------------
    def _engine_profile(self, index: int) -> InputLimits:
        low, opt, high = (dims_tuple(d) for d in self._engine.get_tensor_profile_shape(INPUT_NAME, index))
        if not len(low) == len(opt) == len(high) == 4:
            raise ArtifactError(f"{self.path}: engine input {INPUT_NAME!r} is not NCHW; {REBUILD_HINT}")
        return InputLimits(min=low, opt=opt, max=high)  # type: ignore[arg-type]

    def _select_profile(self, execution: _Execution, index: int) -> None:
        """Select optimisation profile ``index`` on an idle context (its copies go on the compute
        stream, which every later enqueue of it follows)."""
        if index == execution.profile:
            return
        if not execution.context.set_optimization_profile_async(index, self._compute.handle):
            raise NDREdgeError(f"{self.path}: TensorRT refused optimisation profile {index}; {REBUILD_HINT}")
        execution.profile = index

    def _more_executions(self, engine: trt.ICudaEngine, wanted: int) -> list[_Execution]:
        """Up to ``wanted`` further execution contexts that accept every profile, or none: then
        the slots share the first context (and serialise on it)."""
        extra: list[_Execution] = []
        for _ in range(wanted):
            context = engine.create_execution_context()
            if context is None:
                break
            extra.append(_Execution(context))
            # the first context holds profile 0: a context that shares profiles takes it too
            if not context.set_optimization_profile_async(0, self._compute.handle):
                break
        else:
            return extra
        warnings.warn(
            f"{self.path.name}: TensorRT could not give every buffer slot its own execution context (GPU memory, or "
            "no profile sharing); the slots share one and each batch waits for the previous one on the host",
            stacklevel=3,
        )
        extra.clear()  # the contexts made so far go now, while the CUDA context is current
        return extra

    @property
    def contexts(self) -> int:
        """How many execution contexts the slots use (one per slot, or 1 when they share it)."""
        return len(self._executions)

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
        with self.lock:  # one caller at a time owns the slots and the execution contexts
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
            execution = slot.execution
            if execution.last_executed is not None:
                # A context of its own finished with this slot's last download: this returns at once.
                # A context the slots share may still run the other slot's batch: wait for it (the
                # upload above overlaps it), since TensorRT forbids reconfiguring a running context.
                execution.last_executed.synchronize()
            context = execution.context
            self._select_profile(execution, profile)
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
            execution.last_executed = slot.executed
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
        primary = getattr(self, "_primary", None)
        if primary is None:
            return
        try:
            with self.cuda_context():
                self._release_cuda_objects()  # its frame, and the references in it, end inside the context
        finally:
            self._primary = None
            primary.detach()  # the backend's retain of the primary context ends last

    def _release_cuda_objects(self) -> None:
        """Wait for outstanding work, then free and drop everything that lives in the CUDA
        context: buffers, events, streams, TensorRT contexts, engine and runtime. Runs with the
        context current; nothing here may keep a reference past its return."""
        slots: list[_Slot] = getattr(self, "_slots", [])
        try:
            for owner in [s.owner for s in slots if s.owner is not None]:
                owner.materialize()  # the caller's pending results stay readable after close
            for stream_name in ("_upload", "_compute", "_download"):
                stream = getattr(self, stream_name, None)
                if stream is not None:
                    stream.synchronize()
        finally:
            self._slots = []
            while slots:  # device buffers freed now; pinned buffers and events go with the slot
                slots.pop().free()
            scratch: dict[str, Any] = getattr(self, "_scratch", {})
            while scratch:
                scratch.popitem()[1].free()
            for execution in getattr(self, "_executions", []):
                execution.last_executed = None
            self._executions = []  # TensorRT execution contexts before the engine
            for attr in ("_upload", "_compute", "_download", "_engine", "_runtime"):
                if hasattr(self, attr):
                    delattr(self, attr)
