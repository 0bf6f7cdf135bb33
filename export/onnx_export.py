"""Stage 1: trace the restoration network (never NDR-Degrad) to ONNX.

One input (``input``, NCHW float32) and one output (``output``), dynamic batch, height and
width, opset 17 by default, the :class:`~ndr_edge.artifact.ArtifactMeta` in
``metadata_props``. The bytes are deterministic: fixed producer, graph name and doc
strings, no timestamps, so the same checkpoint always gives the same file.

Two tracers: PyTorch's TorchScript-based exporter (the default: about one second, exact
opset 17, readable dynamic axis names) and the torch.export-based one (``dynamo``: slower,
opset 18 here, used automatically where the TorchScript exporter is gone).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from ndr_edge import __version__
from ndr_edge.artifact import INPUT_NAME, OUTPUT_NAME, ArtifactMeta, atomic_write_bytes
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.variants import DEFAULT_OPSET, ONNX_EXPORTERS

PRODUCER = "ndr-edge"
GRAPH_NAME = "ndr_restore"
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}


@dataclass(frozen=True)
class OnnxExportOptions:
    opset: int = DEFAULT_OPSET
    trace_size: tuple[int, int] = (64, 64)
    exporter: str = "auto"  # auto | torchscript | dynamo

    def __post_init__(self) -> None:
        if self.opset < 17:
            raise InputError(f"opset {self.opset}: the export needs opset 17 or newer (LayerNorm-free graph, TensorRT 10)")
        if self.exporter not in ONNX_EXPORTERS:
            raise InputError(f"unknown exporter {self.exporter!r}; choose one of {', '.join(ONNX_EXPORTERS)}")


def restoration_graph(model: Any) -> Any:
    """The exported module: ``RestorationOnly(model.restoration_net)`` in eval mode."""
    from ndr_edge.model import RestorationOnly

    net = getattr(model, "restoration_net", model)
    return RestorationOnly(net).eval()


def _torchscript_available() -> bool:
    import torch.onnx

    try:
        from torch.onnx import utils  # noqa: F401  (the TorchScript exporter lives here)
    except ImportError:
        return False
    return hasattr(torch.onnx, "export")


def _trace_torchscript(module: Any, sample: Any, opset: int) -> onnx.ModelProto:
    import torch

    buffer = io.BytesIO()
    axes = {INPUT_NAME: DYNAMIC_AXES, OUTPUT_NAME: DYNAMIC_AXES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices; errors still raise
        torch.onnx.export(
            module, (sample,), buffer,  # type: ignore[arg-type]  # file-like objects are accepted
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            opset_version=opset, dynamic_axes=axes, do_constant_folding=True, dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _trace_dynamo(module: Any, sample: Any, opset: int) -> onnx.ModelProto:
    import torch

    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    batch = sample.expand(2, -1, -1, -1).contiguous()  # batch 1 would specialise the batch axis
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, (batch,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            opset_version=opset, dynamic_shapes=({**dims},), dynamo=True, optimize=True, verbose=False,
        )
    if program is None:
        raise ArtifactError("torch.onnx.export (dynamo) returned no program")
    model = program.model_proto
    for value in (*model.graph.input, *model.graph.output):  # readable axis names, as TorchScript gives
        for axis, name in DYNAMIC_AXES.items():
            value.type.tensor_type.shape.dim[axis].dim_param = name
    return model


def make_deterministic(model: onnx.ModelProto, meta: ArtifactMeta, extra: dict[str, str] | None = None) -> None:
    """Fixed producer, graph name and doc strings; metadata props sorted by key."""
    model.producer_name = PRODUCER
    model.producer_version = __version__
    model.doc_string = "NDR-Restore restoration network (one image in, the restored image out)"
    model.graph.name = GRAPH_NAME
    model.graph.doc_string = ""
    for node in model.graph.node:
        node.doc_string = ""
    set_metadata(model, meta, extra)


def set_metadata(model: onnx.ModelProto, meta: ArtifactMeta, extra: dict[str, str] | None = None) -> None:
    props = {p.key: p.value for p in model.metadata_props if not p.key.startswith("ndr_edge.")}
    props.update(meta.to_props())
    props.update(extra or {})
    del model.metadata_props[:]
    for key in sorted(props):
        model.metadata_props.add(key=key, value=props[key])


def serialize(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Check the model and write it atomically (deterministic serialisation)."""
    path = Path(path)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ArtifactError(f"{path.name}: the graph is not valid ONNX ({str(exc).splitlines()[0]})") from exc
    atomic_write_bytes(path, serialize(model))
    return path


def read_meta(path: str | Path) -> ArtifactMeta:
    """The ArtifactMeta stored in an ONNX file (weights are not loaded)."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for unreadable files
        raise ArtifactError(f"{path}: not a readable ONNX file ({exc}); re-export the model") from exc
    return ArtifactMeta.from_props({p.key: p.value for p in model.metadata_props}, source=str(path))


def export_onnx(module: Any, meta: ArtifactMeta, options: OnnxExportOptions = OnnxExportOptions()) -> onnx.ModelProto:
    """Trace ``module`` (a restoration graph on the CPU, eval mode) to an ONNX ModelProto."""
    import torch

    height, width = options.trace_size
    if height % meta.size_multiple or width % meta.size_multiple:
        raise InputError(f"trace size {height}x{width}: H and W must be multiples of {meta.size_multiple}")
    module = module.eval()
    generator = torch.Generator().manual_seed(0)
    sample = torch.rand(1, 3, height, width, generator=generator)
    exporter = options.exporter
    if exporter == "auto":
        exporter = "torchscript" if _torchscript_available() else "dynamo"
    with torch.inference_mode(False), torch.no_grad():
        if exporter == "torchscript":
            model = _trace_torchscript(module, sample, options.opset)
        else:
            model = _trace_dynamo(module, sample, options.opset)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    make_deterministic(model, meta, {"ndr_edge_export.exporter": exporter, "ndr_edge_export.opset": str(opset)})
    return model
