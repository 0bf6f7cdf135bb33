"""The one way to open a model: :func:`open_backend` returns a :class:`~.backend.Backend`
whose ``infer`` runs it. The restorer, export verification, calibration's PSNR evaluation
and INT8 search, the report and the benchmarks all open models here.

Each backend's settings are one dataclass: :class:`~.onnxruntime_backend.OnnxRuntimeSettings`
(providers, threads), :class:`~.tensorrt_backend.TensorRTSettings` (device, buffer slots),
:class:`~.openvino_backend.OpenVinoSettings` (device, precision hint, threads, cache),
and, outside the torch-free runtime, ``ndr_edge.torch_backend.TorchSettings`` for the
PyTorch reference. Which backend runs which file format is the table in
:mod:`ndr_edge.export.variants`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ndr_edge.artifact import sha256_file
from ndr_edge.errors import ArtifactError, BackendUnavailableError, InputError
from ndr_edge.export.variants import backend_of_format, format_of_suffix
from ndr_edge.runtime.backend import Backend
from ndr_edge.runtime.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeSettings, import_onnxruntime
from ndr_edge.runtime.openvino_backend import OpenVinoBackend, OpenVinoSettings, import_openvino
from ndr_edge.runtime.tensorrt_backend import TensorRTBackend, TensorRTSettings
from ndr_edge.runtime.tensorrt_env import tensorrt_unavailable_reason

__all__ = ["OnnxRuntimeSettings", "OpenVinoSettings", "TensorRTSettings", "backend_for", "backend_unavailable_reason", "open_backend",
           "settings_for"]


def backend_for(model: str | Path | bytes) -> str:
    """The backend that runs ``model`` by its suffix (bytes: a serialized ONNX model)."""
    if isinstance(model, bytes):
        return "onnxruntime"
    suffix = Path(model).suffix.lower()
    backend = backend_of_format(format_of_suffix(suffix) or "")
    if backend is None:
        raise ArtifactError(f"{model}: unknown model type {suffix or '(no suffix)'!r}; pass an .onnx or .engine file")
    return backend


def settings_for(backend: str, providers: Sequence[str] | None = None, threads: int | None = None,
                 device: int = 0, ov_device: str = "CPU", ov_hint: str | None = None) -> Any:
    """The settings dataclass of ``backend`` from command-line style options."""
    if backend == "tensorrt":
        return TensorRTSettings(device=device)
    if backend == "openvino":
        return OpenVinoSettings(device=ov_device, precision_hint=ov_hint, threads=threads)
    if backend == "pytorch":
        from ndr_edge.torch_backend import TorchSettings

        return TorchSettings(threads=threads)
    return OnnxRuntimeSettings(providers=tuple(providers) if providers else None, threads=threads)


def open_backend(
    model: str | Path | bytes, backend: str | None = None, settings: Any = None, expected_sha256: str | None = None
) -> Backend:
    """Open ``model`` (a file, or the bytes of an ONNX model) on ``backend`` (default: by
    its suffix). ``settings`` is that backend's settings dataclass (default: its defaults).
    With ``expected_sha256`` the file must have that hash (a manifest entry)."""
    backend = backend or backend_for(model)
    if isinstance(model, bytes):
        if backend != "onnxruntime":
            raise InputError(f"the {backend} backend opens files, not serialized models")
        return OnnxRuntimeBackend(model, settings)
    if backend == "pytorch":  # the reference; torch lives outside the torch-free runtime
        from ndr_edge.torch_backend import TorchBackend

        return TorchBackend.from_checkpoint(model, settings, expected_sha256)
    if expected_sha256 and sha256_file(model) != expected_sha256:
        raise ArtifactError(f"{model}: contents do not match the manifest's sha256 (modified or truncated); "
                            "re-run ndr-export")
    if backend == "onnxruntime":
        return OnnxRuntimeBackend(model, settings)
    if backend == "tensorrt":
        return TensorRTBackend(model, settings)
    if backend == "openvino":
        return OpenVinoBackend(model, settings)
    raise InputError(f"unknown backend {backend!r}; use one of onnxruntime, tensorrt, openvino, pytorch")


def backend_unavailable_reason(backend: str, device: int = 0) -> str | None:
    """Why ``backend`` cannot run here (None when it can); for CLIs, the report and tests."""
    if backend == "tensorrt":
        return tensorrt_unavailable_reason(device)
    for name, importer in (("onnxruntime", import_onnxruntime), ("openvino", import_openvino)):
        if backend == name:
            try:
                importer()
            except BackendUnavailableError as exc:
                return str(exc)
    if backend == "pytorch" and importlib.util.find_spec("torch") is None:
        return "torch is not installed here (pip install ndr-edge[train])"
    return None
