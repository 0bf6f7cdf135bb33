"""ONNX Runtime backend: CPU by default, the CUDA (and, on request, TensorRT) execution
providers when the installed onnxruntime has them. ``onnxruntime`` is imported when a
backend is constructed, never at package import. Its settings are one
:class:`OnnxRuntimeSettings`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.artifact import INPUT_NAME, OUTPUT_NAME, ArtifactMeta
from ndr_edge.errors import ArtifactError, BackendUnavailableError, first_line
from ndr_edge.runtime.backend import Backend, check_model_file

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
# TensorRT EP builds an engine on the first run (minutes): used only when asked for.
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@dataclass(frozen=True)
class OnnxRuntimeSettings:
    """``providers``: execution providers in priority order, short (``cpu``, ``cuda``,
    ``tensorrt``) or full names; None: CUDA when installed, then CPU. ``threads``: intra-op
    threads (None: ONNX Runtime's choice). ``profile_prefix``: write ONNX Runtime's profile
    (op times) to files starting with it; read it with :meth:`OnnxRuntimeBackend.end_profiling`."""

    providers: tuple[str, ...] | None = None
    threads: int | None = None
    profile_prefix: str | None = None


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "onnxruntime is not installed; pip install onnxruntime (or onnxruntime-gpu), i.e. ndr-edge[ort]"
        ) from exc
    return onnxruntime


def cpu_session(path: str | Path, fix: str = "re-run ndr-export") -> Any:
    """A quiet CPU-provider session of ``path`` for reading the model (metadata, I/O), or
    ArtifactError naming the file and ``fix``."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types
        raise ArtifactError(f"{path}: cannot load the ONNX model ({exc}); {fix}") from exc


def resolve_providers(requested: list[str] | tuple[str, ...] | None, available: list[str]) -> list[str]:
    """Provider names in priority order. ``None``: CUDA when available, then CPU. Names may be
    short (``cpu``, ``cuda``, ``tensorrt``); a requested provider that is not available is an error."""
    if not requested:
        return [p for p in DEFAULT_PROVIDERS if p in available] or list(available[:1])
    resolved = []
    for name in requested:
        full = PROVIDER_ALIASES.get(name.strip().lower(), name.strip())
        if full not in available:
            raise BackendUnavailableError(
                f"ONNX Runtime provider {name!r} is not available here (available: {', '.join(available)}); "
                "install onnxruntime-gpu for CUDA/TensorRT or choose one of those"
            )
        if full not in resolved:
            resolved.append(full)
    return resolved


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` over one ndr-edge ONNX artifact (a file, or the
    bytes of a serialized model)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path | bytes, settings: OnnxRuntimeSettings | None = None) -> None:
        self.settings = settings = settings or OnnxRuntimeSettings()
        source: str | bytes = path if isinstance(path, bytes) else str(path)
        path = Path("model.onnx (in memory)") if isinstance(path, bytes) else Path(path)
        if isinstance(source, str):
            check_model_file(path, "model", "check the path or re-run ndr-export")
        ort = import_onnxruntime()
        chosen = resolve_providers(settings.providers, list(ort.get_available_providers()))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if settings.threads:
            options.intra_op_num_threads = settings.threads
        if settings.profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = settings.profile_prefix
        try:
            session = ort.InferenceSession(source, sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise ArtifactError(
                f"{path}: cannot load the ONNX model ({first_line(exc)}); the file is truncated or not an ONNX "
                "model; re-export it with ndr-export"
            ) from exc
        meta = ArtifactMeta.from_props(dict(session.get_modelmeta().custom_metadata_map), source=str(path))
        super().__init__(path, meta)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
            raise ArtifactError(
                f"{path}: expected one input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}, found inputs "
                f"{[i.name for i in inputs]} and outputs {[o.name for o in outputs]}; export it with ndr-export"
            )
        self._input_dtype = _ORT_TYPES.get(inputs[0].type)
        if self._input_dtype is None:
            raise ArtifactError(f"{path}: unsupported input type {inputs[0].type}; expected a float tensor")
        self._session = session
        self.providers: list[str] = list(session.get_providers())

    def describe(self) -> str:
        short = ",".join(p.replace("ExecutionProvider", "") for p in self.providers)
        return f"onnxruntime [{short}] ({self.path.name}, {self.meta.precision})"

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        feed = batch if self._input_dtype is np.float32 else batch.astype(self._input_dtype)
        (output,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: feed})
        return np.asarray(output, dtype=np.float32)

    def end_profiling(self) -> Path:
        """Stop profiling (``profile_prefix``) and return the profile's JSON file."""
        return Path(self._session.end_profiling())

    def close_impl(self) -> None:
        self._session = None
