"""OpenVINO backend: our exported ONNX files (FP32, FP16, INT8) compiled for an Intel/AMD CPU,
an Intel GPU or an NPU. ``openvino`` is imported when a backend is constructed, never at
package import. Its settings are one :class:`OpenVinoSettings`.

OpenVINO reads the ONNX metadata (``ndr_edge.*`` props) into the model's ``framework``
runtime info, so the artifact's channel order, value range and size multiple come from the
file as with ONNX Runtime. The inference-precision hint ``bf16`` needs native bf16 on the
CPU (AVX512-BF16 or AMX, read from the CPU at run time): elsewhere the backend falls back
to ``f32`` and says so in :meth:`describe` and :attr:`precision_note`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.artifact import INPUT_NAME, OUTPUT_NAME, ArtifactMeta
from ndr_edge.cpu import cpu_features
from ndr_edge.errors import ArtifactError, BackendUnavailableError, InputError
from ndr_edge.export.variants import OPENVINO_DEVICES, OPENVINO_HINTS
from ndr_edge.runtime.backend import Backend, PendingBatch, check_model_file


@dataclass(frozen=True)
class OpenVinoSettings:
    """``device``: an OpenVINO device name (``CPU``, ``GPU``, ``GPU.1``, ``NPU``, ``AUTO``).
    ``precision_hint``: OpenVINO's ``INFERENCE_PRECISION_HINT`` (None: the device default,
    f32 on CPUs without bf16). ``threads``: CPU inference threads (None: OpenVINO's choice).
    ``cache_dir``: where compiled models are cached, so a second start skips compilation.
    ``requests``: parallel infer requests for :meth:`Backend.submit` (streams overlap)."""

    device: str = "CPU"
    precision_hint: str | None = None
    threads: int | None = None
    cache_dir: str | None = None
    requests: int = 2

    def __post_init__(self) -> None:
        if self.device.split(".")[0].upper() not in OPENVINO_DEVICES:
            raise InputError(f"unknown OpenVINO device {self.device!r}; use one of {', '.join(OPENVINO_DEVICES)} (GPU.1 for a second GPU)")
        if self.precision_hint is not None and self.precision_hint not in OPENVINO_HINTS:
            raise InputError(f"unknown OpenVINO precision hint {self.precision_hint!r}; use one of {', '.join(OPENVINO_HINTS)}")
        if self.requests < 1:
            raise InputError(f"OpenVINO requests must be at least 1, got {self.requests}")


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError("openvino is not installed; pip install openvino, i.e. ndr-edge[openvino]") from exc
    return openvino


def resolve_hint(settings: OpenVinoSettings) -> tuple[str | None, str]:
    """The hint actually used and a note: bf16 on a CPU without native bf16 becomes f32."""
    hint = settings.precision_hint
    if hint == "bf16" and settings.device.upper().startswith("CPU") and not cpu_features().bf16:
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

    def __init__(self, request: Any, backend: OpenVinoBackend) -> None:
        self._request: Any = request
        self._backend = backend
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


class OpenVinoBackend(Backend):
    """One compiled OpenVINO model over one ndr-edge ONNX artifact."""

    name = "openvino"

    def __init__(self, path: str | Path, settings: OpenVinoSettings | None = None) -> None:
        self.settings = settings = settings or OpenVinoSettings()
        path = Path(path)
        check_model_file(path, "model", "check the path or re-run ndr-export")
        ov = import_openvino()
        core = ov.Core()
        family = settings.device.split(".")[0].upper()
        available = list(core.available_devices)
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
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"{path}: OpenVINO cannot read the model ({reason[:200]}); re-export it with ndr-export") from exc
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
        self._compiled = core.compile_model(model, settings.device, config)
        self._requests = [self._compiled.create_infer_request() for _ in range(settings.requests)]
        self._free = list(self._requests)
        self._in_flight: list[_Pending] = []
        self._cond = threading.Condition()

    def describe(self) -> str:
        return f"openvino [{self.settings.device}, {self.precision_note}] ({self.path.name}, {self.meta.precision})"

    def _release(self, request: Any, pending: _Pending) -> None:
        with self._cond:
            self._free.append(request)
            if pending in self._in_flight:
                self._in_flight.remove(pending)
            self._cond.notify()

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self.submit_impl(batch).result()

    def submit_impl(self, batch: np.ndarray) -> PendingBatch:
        while True:
            with self._cond:
                if self._free:
                    request = self._free.pop()
                    break
                oldest = self._in_flight[0] if self._in_flight else None
            if oldest is not None:
                oldest.result()  # every request busy: collect the oldest batch (kept for its caller)
            else:
                with self._cond:
                    self._cond.wait(0.01)
        request.start_async({INPUT_NAME: batch}, share_inputs=False)
        pending = _Pending(request, self)
        with self._cond:
            self._in_flight.append(pending)
        return pending

    def close_impl(self) -> None:
        for request in self._requests:
            request.wait()
        self._requests, self._free, self._compiled = [], [], None
