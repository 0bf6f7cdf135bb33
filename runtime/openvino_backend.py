"""OpenVINO backend: our exported ONNX files (FP32, FP16, INT8) compiled for an Intel/AMD CPU,
an Intel GPU or an NPU. ``openvino`` is imported when a backend is constructed, never at
package import. Its settings are one :class:`OpenVinoSettings`.

OpenVINO reads the ONNX metadata (``ndr_edge.*`` props) into the model's ``framework``
runtime info, so the artifact's channel order, value range and size multiple come from the
file as with ONNX Runtime. On a CPU the graph runs at its own precision (hint ``f32``)
unless a hint is given: OpenVINO's CPU default is bf16 wherever the CPU has native bf16,
which would change an FP32 graph's numbers with the machine. The hint ``bf16`` needs native
bf16 on the CPU (AVX512-BF16 or AMX, read from the CPU at run time): elsewhere the backend
falls back to ``f32`` and says so in :meth:`describe` and :attr:`precision_note`.

By default each input shape gets its own compiled model (the ONNX file's dynamic N/H/W
reshaped to the batch's static shape; ``OpenVinoSettings.static_shapes``): OpenVINO 2026.4's
CPU plugin miscomputes an INT8 (Q/DQ) convolution whose output is both a residual and the
input of the next branch when the input shape is dynamic, and is exact once it is static
(``benchmarks/int8_crossruntime_repro.py`` A4). Tiles and video frames have one shape, so
that is one compilation (cached in ``cache_dir`` across starts).

Cores come from :func:`open_core`, whose every call runs inside
:func:`ndr_edge.signal_stack.preserved_signal_stack`: OpenVINO's CPU plugin replaces the
thread's alternate signal stack when it makes a plugin engine or compiles a model and can
leave it on freed memory, after which the next handled signal (Ctrl-C, SIGCHLD) is a
segmentation fault. Put back at once, the stack OpenVINO later restores is our own, so
freeing needs no guard.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.artifact import INPUT_NAME, OUTPUT_NAME, ArtifactMeta
from ndr_edge.cpu import cpu_features
from ndr_edge.errors import ArtifactError, BackendUnavailableError, InputError, first_line
from ndr_edge.export.variants import OPENVINO_DEVICES, OPENVINO_HINTS
from ndr_edge.runtime.backend import Backend, PendingBatch, check_model_file
from ndr_edge.signal_stack import preserved_signal_stack


@dataclass(frozen=True)
class OpenVinoSettings:
    """``device``: an OpenVINO device name (``CPU``, ``GPU``, ``GPU.1``, ``NPU``, ``AUTO``).
    ``precision_hint``: OpenVINO's ``INFERENCE_PRECISION_HINT`` (None: f32 on a CPU, the
    device default elsewhere, f16 on Intel GPUs and NPUs). ``threads``: CPU inference threads (None: OpenVINO's choice).
    ``cache_dir``: where compiled models are cached, so a second start skips compilation.
    ``requests``: parallel infer requests for :meth:`Backend.submit` (streams overlap), per
    compiled shape. ``static_shapes``: compile once per input shape (see the module docstring;
    False: one dynamic-shape compilation, wrong on INT8 graphs with residual convolutions);
    ``max_shapes`` compiled models are kept, the least recently used idle one goes first."""

    device: str = "CPU"
    precision_hint: str | None = None
    threads: int | None = None
    cache_dir: str | None = None
    requests: int = 2
    static_shapes: bool = True
    max_shapes: int = 8

    def __post_init__(self) -> None:
        if self.device.split(".")[0].upper() not in OPENVINO_DEVICES:
            raise InputError(f"unknown OpenVINO device {self.device!r}; use one of {', '.join(OPENVINO_DEVICES)} (GPU.1 for a second GPU)")
        if self.precision_hint is not None and self.precision_hint not in OPENVINO_HINTS:
            raise InputError(f"unknown OpenVINO precision hint {self.precision_hint!r}; use one of {', '.join(OPENVINO_HINTS)}")
        if self.requests < 1:
            raise InputError(f"OpenVINO requests must be at least 1, got {self.requests}")
        if self.max_shapes < 1:
            raise InputError(f"OpenVINO max_shapes must be at least 1, got {self.max_shapes}")


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError("openvino is not installed; pip install openvino, i.e. ndr-edge[openvino]") from exc
    return openvino


class _GuardedCore:
    """An ``openvino.Core`` whose attribute reads and calls keep the thread's signal stack."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def __getattr__(self, name: str) -> Any:
        with preserved_signal_stack():  # properties too: available_devices loads the plugins
            value = getattr(self._core, name)
        if not callable(value):
            return value

        def guarded(*args: Any, **kwargs: Any) -> Any:
            with preserved_signal_stack():
                return value(*args, **kwargs)

        return guarded


def open_core() -> Any:
    """An OpenVINO ``Core`` that leaves the calling thread's alternate signal stack alone
    (see the module docstring); use it for every Core, in tests and benchmarks too."""
    ov = import_openvino()
    with preserved_signal_stack():
        return _GuardedCore(ov.Core())


def resolve_hint(settings: OpenVinoSettings) -> tuple[str | None, str]:
    """The hint actually used and a note: bf16 on a CPU without native bf16 becomes f32."""
    hint = settings.precision_hint
    cpu = settings.device.upper().startswith("CPU")
    if hint is None and cpu:  # OpenVINO's own CPU default is bf16 wherever the CPU has it
        return "f32", "f32 (the graph's own precision; bf16 only when asked for)"
    if hint == "bf16" and cpu and not cpu_features().bf16:
        return "f32", "bf16 asked for, but this CPU has no AVX512-BF16/AMX: running f32"
    return hint, f"{hint} hint" if hint else "device default precision"


def _metadata(model: Any, path: Path) -> ArtifactMeta:
    info = model.get_rt_info()
    props: dict[str, str] = {}
    if "framework" in list(info.keys()):
        framework = model.get_rt_info(["framework"]).astype(dict)
        props = {str(k): (v.astype(str) if hasattr(v, "astype") else str(v)) for k, v in framework.items()}
    return ArtifactMeta.from_props(props, source=str(path))


class _Pending(PendingBatch):
    """A batch on one infer request; collecting it copies the output and frees the request."""

    def __init__(self, request: Any, backend: OpenVinoBackend, owner: _Compiled) -> None:
        self._request: Any = request
        self._backend = backend
        self.owner = owner
        self._output: np.ndarray | None = None
        self._lock = threading.Lock()

    def done(self) -> bool:
        with self._lock:
            return self._output is not None or bool(self._request.wait_for(0))

    def result(self) -> np.ndarray:
        with self._lock:
            if self._output is None:
                self._request.wait()
                self._output = np.array(self._request.get_tensor(OUTPUT_NAME).data, dtype=np.float32, copy=True)
                self._backend._release(self._request, self)
                self._request = None
            return self._output


class _Compiled:
    """One compiled model (one input shape, or dynamic) and its pool of infer requests.
    ``waiting``: submitters that hold it but have no request yet (it is not idle then)."""

    def __init__(self, compiled: Any, requests: int) -> None:
        self.model: Any = compiled
        self.requests = [compiled.create_infer_request() for _ in range(requests)]
        self.free = list(self.requests)
        self.waiting = 0

    def idle(self) -> bool:
        return not self.waiting and len(self.free) == len(self.requests)


class OpenVinoBackend(Backend):
    """One ndr-edge ONNX artifact under OpenVINO, compiled per input shape (or once, dynamic)."""

    name = "openvino"

    def __init__(self, path: str | Path, settings: OpenVinoSettings | None = None) -> None:
        self.settings = settings = settings or OpenVinoSettings()
        path = Path(path)
        check_model_file(path, "model", "check the path or re-run ndr-export")
        self._ov = import_openvino()
        self._core = core = open_core()
        available = list(core.available_devices)
        family = settings.device.split(".")[0].upper()
        if family != "AUTO" and not any(d.upper().startswith(family) for d in available):
            raise BackendUnavailableError(
                f"OpenVINO device {settings.device} is not available here (available: {', '.join(available)}); "
                "install its driver or choose one of those"
            )
        if settings.cache_dir:
            Path(settings.cache_dir).mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(settings.cache_dir)})
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses per failure
            raise ArtifactError(f"{path}: OpenVINO cannot read the model ({first_line(exc)}); re-export it with ndr-export") from exc
        meta = _metadata(model, path)
        super().__init__(path, meta)
        names = [n for port in model.inputs for n in port.get_names()]
        if INPUT_NAME not in names:
            raise ArtifactError(f"{path}: expected an input {INPUT_NAME!r}, found {names}; export it with ndr-export")
        hint, self.precision_note = resolve_hint(settings)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        if settings.threads and family == "CPU":
            config["INFERENCE_NUM_THREADS"] = settings.threads
        self.hint = hint
        self._model: Any = model
        self._config = config
        #: compiled models by input shape (None: the one dynamic-shape compilation)
        self._compiled: OrderedDict[tuple[int, ...] | None, _Compiled] = OrderedDict()
        self._in_flight: list[_Pending] = []
        self._cond = threading.Condition()
        self._compile_lock = threading.Lock()
        if not settings.static_shapes:
            self._compiled[None] = self._compile(None)

    @property
    def compiled_shapes(self) -> list[tuple[int, ...] | None]:
        """The input shapes compiled so far (None: dynamic)."""
        return list(self._compiled)

    def describe(self) -> str:
        shapes = "per-shape" if self.settings.static_shapes else "dynamic shape"
        return f"openvino [{self.settings.device}, {self.precision_note}, {shapes}] ({self.path.name}, {self.meta.precision})"

    def _compile(self, shape: tuple[int, ...] | None) -> _Compiled:
        model = self._model
        if shape is not None:
            model = self._model.clone()
            model.reshape({INPUT_NAME: self._ov.PartialShape(list(shape))})
        try:
            compiled = self._core.compile_model(model, self.settings.device, self._config)
        except Exception as exc:
            at = f" at input shape {'x'.join(map(str, shape))}" if shape else ""
            raise ArtifactError(f"{self.path}: OpenVINO cannot compile the model{at} ({first_line(exc)}); "
                                "re-export it with ndr-export or try backend onnxruntime") from exc
        return _Compiled(compiled, self.settings.requests)

    def _hold(self, key: tuple[int, ...] | None) -> _Compiled | None:
        """The compilation for ``key``, marked as waited on (under ``_cond``), or None."""
        found = self._compiled.get(key)
        if found is not None:
            self._compiled.move_to_end(key)
            found.waiting += 1
        return found

    def _for_shape(self, shape: tuple[int, ...]) -> _Compiled:
        """The compilation for this input shape, held (``waiting``) until a request is taken.
        Only a new shape takes the compile lock, so other shapes' batches never wait on it."""
        key = shape if self.settings.static_shapes else None
        with self._cond:
            found = self._hold(key)
        if found is not None:
            return found
        with self._compile_lock:
            with self._cond:
                found = self._hold(key)
            if found is not None:
                return found
            compiled = self._compile(key)
            with self._cond:  # room for one more: the least recently used idle compilations go
                idle = [k for k, c in self._compiled.items() if c.idle()]
                evicted = []
                while len(self._compiled) >= self.settings.max_shapes and idle:
                    evicted.append(self._compiled.pop(idle.pop(0)))
                self._compiled[key] = compiled
                compiled.waiting += 1
        del evicted  # freed outside the lock
        return compiled

    def _release(self, request: Any, pending: _Pending) -> None:
        with self._cond:
            pending.owner.free.append(request)
            if pending in self._in_flight:
                self._in_flight.remove(pending)
            self._cond.notify_all()

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self.submit_impl(batch).result()

    def submit_impl(self, batch: np.ndarray) -> PendingBatch:
        owner = self._for_shape(tuple(batch.shape))
        while True:
            with self._cond:
                if owner.free:
                    request = owner.free.pop()
                    owner.waiting -= 1
                    break
                oldest = next((p for p in self._in_flight if p.owner is owner), None)
            if oldest is not None:
                oldest.result()  # every request busy: collect the oldest batch (kept for its caller)
            else:
                with self._cond:
                    self._cond.wait(0.01)
        request.start_async({INPUT_NAME: batch}, share_inputs=False)
        pending = _Pending(request, self, owner)
        with self._cond:
            self._in_flight.append(pending)
        return pending

    def close_impl(self) -> None:
        # torn down in order, requests before their compiled model before the core, rather than
        # left to the garbage collector (pending batches and the backend refer to each other)
        for compiled in self._compiled.values():
            for request in compiled.requests:
                request.wait()
            compiled.requests.clear()
            compiled.free.clear()
        with self._cond:
            self._in_flight.clear()
        self._compiled = OrderedDict()
        self._model = None
