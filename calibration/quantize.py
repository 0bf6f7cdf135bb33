"""Static INT8 quantisation with ONNX Runtime: calibrate once, write any number of variants.

The output is a QDQ graph (QuantizeLinear/DequantizeLinear around each quantised op):
ONNX Runtime fuses it into integer kernels on the CPU and TensorRT builds explicit-precision
INT8 engines from it. Defaults follow what TensorRT wants: per-channel symmetric INT8
weights, symmetric INT8 activations (zero point 0).

Calibration ranges are computed once per method and cached (ONNX Runtime's
``calibration_cache_path``), so the sensitivity analysis can write many variants that differ
only in the nodes kept in float without calibrating again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ndr_edge.artifact import META_PREFIX, ArtifactMeta, atomic_output
from ndr_edge.calibration.reader import CalibrationSet
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.variants import DEFAULT_INT8_METHOD
from ndr_edge.export.variants import DEFAULT_INT8_OP_TYPES as DEFAULT_OP_TYPES
from ndr_edge.export.variants import INT8_ACTIVATIONS as ACTIVATIONS
from ndr_edge.export.variants import INT8_METHODS as METHODS

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")  # the layers sensitivity works on
QUANT_PROP = META_PREFIX + "quantization"
SETTINGS_REASON = "settings:"  # how the reason of a node kept in float by QuantSettings (not the search) starts


@dataclass(frozen=True)
class QuantSettings:
    """How to quantise: calibration method, number formats, which ops.

    ``activations`` ``"int8"`` is symmetric INT8 (what TensorRT needs), ``"uint8"`` asymmetric
    UINT8 (often faster in ONNX Runtime's x86 kernels). ``op_types``: the op types given Q/DQ
    (default Conv and MatMul); None quantises every op type ONNX Runtime can (the most integer
    coverage, the worst quality). ``float_depthwise`` keeps depthwise (grouped) convolutions in
    float: ONNX Runtime's x86 kernels have no fused signed-INT8 depthwise convolution, so there
    they only add Q/DQ work, and they are among the layers whose quantisation costs the most PSNR.
    ``max_samples`` uses only the first samples of the set; ``chunk`` is how many calibration
    batches ONNX Runtime holds in memory at once.

    Three defaults make the graph mean the same in every runtime (measured with OpenVINO
    against ONNX Runtime's reference semantics: 30.9 dB apart before, 48.1 dB after, on the xs
    architecture; ``benchmarks/int8_crossruntime_repro.py``):

    - ``reduce_range``: 7-bit weights. x86 CPUs without VNNI multiply INT8 pairs into 16-bit
      sums that overflow with full-range weights (ONNX Runtime's fused kernels and OpenVINO
      alike; OpenVINO documents it as the saturation issue).
    - ``float_act_matmul``: MatMuls of two activations (attention q.k^T, the low-rank
      transform) stay in float; ``reduce_range`` cannot narrow an activation, so they overflow.
    - ``output_qdq=False``: Q/DQ on the inputs of Conv and MatMul only, as TensorRT's
      explicit-quantisation guide places them (and it avoids an OpenVINO bug: a Conv with bias
      whose Q/DQ output feeds a Shape gets bias[0] on every channel under dynamic shapes).
    - ``float_after_concat``: a Conv whose input is a Concat (the decoder's 1x1 convolutions
      after each skip connection) stays in float. On the trained ndr-edge-xs, the Q/DQ pair
      on ``/net/Concat_1`` alone puts OpenVINO 32.6 dB away from ONNX Runtime (no other pair
      quantised: 134.7 dB); every pair except the three Concat ones: 53.9 dB, all pairs:
      24.9 dB (``benchmarks/int8_qdq_bisect.py``, which finds such pairs).

    ``float_side_inputs``: only the quantised ops (``op_types``) read a tensor through its Q/DQ
    pair; every other consumer (a residual add, the low-rank transform) reads the float tensor,
    as TensorRT's explicit-quantisation guide places Q/DQ. ONNX Runtime otherwise feeds the
    dequantised copy to all of them, so rounding enters the residual stream as well. On run 10's
    graph it rewires 13 inputs and lowers the INT8 loss a little on every degradation
    (``benchmarks/int8_dark_frames.py``: x4 search set 0.24 -> 0.18 dB, rain 0.04 -> 0.015);
    it does not by itself save a dark, flat frame (the moon at x4 lost 16.4 dB with and without
    it): that needed ``/net/extractor`` and the first downsampling conv in float, which the
    INT8 search finds once its set has flat grey frames (``calibration.evaluate.FLAT_GROUP``;
    ``benchmarks/int8_tensor_error.py`` shows the error per tensor).
    """

    method: str = DEFAULT_INT8_METHOD
    activations: str = ACTIVATIONS[0]
    per_channel: bool = True
    op_types: tuple[str, ...] | None = DEFAULT_OP_TYPES
    float_depthwise: bool = True
    reduce_range: bool = True
    float_act_matmul: bool = True
    output_qdq: bool = False
    float_after_concat: bool = True
    float_side_inputs: bool = True
    percentile: float = 99.999
    max_samples: int | None = None
    batch_size: int = 1
    chunk: int = 4

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"calibration method {self.method!r} is unknown; choose one of {', '.join(METHODS)}")
        if self.activations not in ACTIVATIONS:
            raise InputError(f"activation type {self.activations!r} is unknown; choose one of {', '.join(ACTIVATIONS)}")
        if not 0.0 < self.percentile <= 100.0:
            raise InputError(f"percentile must lie in (0, 100], got {self.percentile}")
        if self.chunk < 1 or self.batch_size < 1:
            raise InputError("chunk and batch size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["op_types"] = list(self.op_types) if self.op_types else "all"
        data["format"] = "QDQ"
        data["weights"] = "int8 symmetric" + (" per-channel" if self.per_channel else " per-tensor")
        return data


def _quant_api() -> Any:
    from onnxruntime import quantization

    return quantization


def _largest_divisor(total: int, at_most: int) -> int:
    return next(d for d in range(min(total, at_most), 0, -1) if total % d == 0)


class Quantizer:
    """Quantises one FP32 ONNX model with one calibration set and one set of settings.

    ``calibrate()`` runs the calibration (once); ``write(out, exclude=...)`` writes an INT8
    model keeping the named nodes in float. Work files live in ``workdir``.
    """

    def __init__(
        self,
        fp32_onnx: str | os.PathLike[str],
        calib: CalibrationSet,
        settings: QuantSettings,
        workdir: str | os.PathLike[str],
        *,
        channel_order: str | None = None,
        progress: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from ndr_edge.artifact import sha256_file
        from ndr_edge.calibration.evaluate import input_shape
        from ndr_edge.export.onnx_export import read_meta

        self.source = Path(fp32_onnx)
        if not self.source.is_file():
            raise ArtifactError(f"{self.source}: no such ONNX file; export the FP32 model first (ndr-export)")
        self.meta = read_meta(self.source)
        self.channel_order = channel_order or self.meta.channel_order
        self.calib = calib
        self.settings = settings
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        calib.check_input_size(input_shape(self.source), multiple=self.meta.size_multiple, what=self.source.name)
        self.model = self._preprocess()
        # ranges depend on the model, the set and the settings that shape calibration; with a
        # cache_dir they are kept across runs (the benchmark calibrates each method once)
        key = "-".join([
            sha256_file(self.source)[:12], calib.fingerprint()[:12], settings.method, settings.activations,
            "all" if not settings.op_types else "+".join(settings.op_types), f"p{settings.percentile:g}",
            f"n{settings.max_samples or len(calib)}", self.channel_order,
            (f"r{int(settings.reduce_range)}{int(settings.float_act_matmul)}{int(settings.output_qdq)}"
             f"{int(settings.float_after_concat)}"),
        ])
        self.cache = Path(cache_dir or self.workdir) / f"ranges-{key}.json"
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        self.calibration_s: float | None = None
        self._all_layers: Path | None = None
        self._forced: list[tuple[str, str, str]] | None = None

    # -- preparation -------------------------------------------------------------------
    def _preprocess(self) -> Path:
        """ONNX Runtime's pre-processing (graph optimisation + shape inference) when it works on
        this graph; the model unchanged otherwise."""
        target = self.workdir / "fp32-pre.onnx"
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            quant_pre_process(str(self.source), str(target), skip_symbolic_shape=True)
            squeeze_matmul_weights(target)
            return target
        except Exception as exc:  # noqa: BLE001 - pre-processing is an optimisation; quantisation works without it
            logging.getLogger(__name__).info("quant_pre_process failed (%s); quantising the model as exported", exc)
            shutil.copyfile(self.source, target)
            return target

    def quantizable_nodes(self, op_types: Sequence[str] = WEIGHTED_OPS) -> list[tuple[str, str]]:
        """(name, op type) of the nodes with weights these settings quantise, in graph order, as
        named in the quantised graph (the ones :meth:`forced_float` keeps in float left out)."""
        import onnx

        graph = onnx.load(str(self.model), load_external_data=False).graph
        wanted = set(op_types) & set(self.settings.op_types or op_types)
        forced = {name for name, _, _ in self.forced_float()}
        return [(n.name, n.op_type) for n in graph.node if n.op_type in wanted and n.name not in forced]

    def forced_float(self) -> list[tuple[str, str, str]]:
        """(name, op type, reason) of the nodes the settings keep in float whatever the search
        finds: the depthwise convolutions with ``float_depthwise``, the activation-by-activation
        MatMuls with ``float_act_matmul``."""
        if self._forced is None:
            import onnx

            graph = onnx.load(str(self.model), load_external_data=False).graph
            weights = {i.name for i in graph.initializer}
            depthwise = (f"{SETTINGS_REASON} depthwise convolution kept in float (float_depthwise; ONNX Runtime's x86 "
                         "kernels have no fused signed-INT8 depthwise convolution)")
            act_matmul = (f"{SETTINGS_REASON} MatMul of two activations kept in float (float_act_matmul; without "
                          "VNNI its 16-bit INT8 sums overflow, in ONNX Runtime and OpenVINO alike)")
            after_concat = (f"{SETTINGS_REASON} Conv after a Concat kept in float (float_after_concat; OpenVINO "
                            "computes the Q/DQ of a Concat output differently from the ONNX semantics)")
            concat_outputs = {o for n in graph.node if n.op_type == "Concat" for o in n.output}
            self._forced = []
            for n in graph.node:
                if self.settings.float_depthwise and n.op_type == "Conv" and any(
                        a.name == "group" and a.i > 1 for a in n.attribute):
                    self._forced.append((n.name, n.op_type, depthwise))
                elif self.settings.float_act_matmul and n.op_type == "MatMul" and n.input[1] not in weights:
                    self._forced.append((n.name, n.op_type, act_matmul))
                elif self.settings.float_after_concat and n.op_type == "Conv" and n.input[0] in concat_outputs:
                    self._forced.append((n.name, n.op_type, after_concat))
        return self._forced

    def _op_types(self) -> list[str] | None:
        return list(self.settings.op_types) if self.settings.op_types else None

    def _extra_options(self, strided: int | None) -> dict[str, Any]:
        symmetric = self.settings.activations == "int8"
        options: dict[str, Any] = {
            "ActivationSymmetric": symmetric,
            "WeightSymmetric": True,
            "CalibPercentile": self.settings.percentile,
        }
        if strided:
            options["CalibStridedMinMax"] = strided
        if not self.settings.output_qdq:
            options["OpTypesToExcludeOutputQuantization"] = list(self.settings.op_types or WEIGHTED_OPS)
        return options

    def _types(self) -> tuple[Any, Any]:
        q = _quant_api()
        act = q.QuantType.QInt8 if self.settings.activations == "int8" else q.QuantType.QUInt8
        return act, q.QuantType.QInt8

    def _method(self) -> Any:
        q = _quant_api()
        return {
            "minmax": q.CalibrationMethod.MinMax,
            "entropy": q.CalibrationMethod.Entropy,
            "percentile": q.CalibrationMethod.Percentile,
        }[self.settings.method]

    # -- calibration and writing --------------------------------------------------------
    def calibrate(self) -> Path:
        """Collect activation ranges over the calibration set (streamed in chunks) and cache them."""
        if self.cache.is_file():
            return self.cache
        from tqdm import tqdm

        from ndr_edge.calibration.datareader import SetDataReader

        bar = tqdm(desc=f"calibrate ({self.settings.method})", unit="batch", disable=not self.progress, leave=False)
        reader = SetDataReader(
            self.calib, self.channel_order, self.settings.batch_size, limit=self.settings.max_samples,
            on_batch=lambda: bar.update(),
        )
        if len(reader) == 0:
            raise InputError(f"{self.calib.path}: the calibration set is empty; build it with --samples >= 1")
        bar.total = len(reader)
        stride = _largest_divisor(len(reader), self.settings.chunk)
        scratch = self.workdir / "calibrated-all.onnx"
        partial = self.cache.with_name(f".{self.cache.name}.{os.getpid()}.tmp")
        start = time.perf_counter()
        with bar, _removing(partial):
            self._quantize_static(scratch, reader, partial, stride=stride if stride < len(reader) else None,
                                  calibration_providers=["CPUExecutionProvider"])
            os.replace(partial, self.cache)  # a cache is complete or absent
        self.calibration_s = time.perf_counter() - start
        self._all_layers = scratch
        return self.cache

    def _quantize_static(self, out: Path, reader: Any, cache: Path, stride: int | None = None, **extra: Any) -> None:
        """ONNX Runtime's QDQ static quantisation with these settings; ranges come from
        ``reader`` (and are written to ``cache``) or, with no reader, from ``cache``."""
        q = _quant_api()
        activation_type, weight_type = self._types()
        _quiet_quantize(
            q.quantize_static,
            str(self.model),
            str(out),
            reader,
            quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=self._op_types(),
            per_channel=self.settings.per_channel,
            reduce_range=self.settings.reduce_range,
            activation_type=activation_type,
            weight_type=weight_type,
            calibrate_method=self._method(),
            calibration_cache_path=str(cache),
            extra_options=self._extra_options(stride),
            **extra,
        )

    def write(self, out_path: str | os.PathLike[str], exclude: Sequence[str] = (), details: dict | None = None) -> Path:
        """Write the INT8 model keeping ``exclude`` (node names) and :meth:`forced_float` in
        float; metadata says ``int8``."""
        import onnx

        self.calibrate()
        exclude = list(dict.fromkeys([*exclude, *(name for name, _, _ in self.forced_float())]))
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out, suffix=".onnx") as tmp:
            if not exclude and self._all_layers is not None and self._all_layers.is_file():
                shutil.copyfile(self._all_layers, tmp)  # calibration already wrote this variant
            else:
                self._quantize_static(tmp, None, self.cache, nodes_to_exclude=list(exclude))
            model = onnx.load(str(tmp))
            readers = set(exclude)
            if self.settings.float_side_inputs and self.settings.op_types:
                quantised = set(self.settings.op_types) | {"QuantizeLinear", "DequantizeLinear"}
                readers |= {n.name for n in model.graph.node if n.op_type not in quantised}
            float_inputs(model, readers)
            stamp_int8(model, self.source, {**self.settings.to_dict(), "excluded": list(exclude), **(details or {})})
            onnx.save(model, str(tmp))
        return out


def squeeze_matmul_weights(path: Path) -> int:
    """Give MatMuls whose weight is a constant ``[1, K, N]`` a ``[K, N]`` copy instead (the
    same product by broadcasting), so per-channel quantisation's axis 1 is the output axis N,
    not the reduction axis K; returns how many were changed. ONNX Runtime refuses the
    ``[1, K, N]`` per-channel form once the MatMul output has no Q/DQ."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    made: dict[str, str] = {}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        weight = inits[node.input[1]]
        if len(weight.dims) != 3 or weight.dims[0] != 1:
            continue
        if weight.name not in made:
            array = numpy_helper.to_array(weight)[0]
            flat = numpy_helper.from_array(array, f"{weight.name}_2d")
            model.graph.initializer.append(flat)
            made[weight.name] = flat.name
        node.input[1] = made[weight.name]
        changed += 1
    if changed:
        onnx.save(model, str(path))
    return changed


def stamp_int8(model: Any, source: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Give an INT8 ModelProto the source model's ndr_edge metadata with ``precision="int8"``,
    plus ``ndr_edge.quantization`` (JSON: how it was quantised)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    meta = replace(ArtifactMeta.from_props(props, str(source)), precision="int8")
    props.update(meta.to_props())
    props[QUANT_PROP] = json.dumps(record, sort_keys=True)
    del model.metadata_props[:]
    for key in sorted(props):
        model.metadata_props.add(key=key, value=props[key])


def float_inputs(model: Any, exclude: Sequence[str]) -> int:
    """Make the excluded nodes read float activations.

    In a QDQ graph a tensor is quantised once for all its consumers, so a node left out of
    quantisation still reads ``DequantizeLinear(QuantizeLinear(x))`` when a neighbour is
    quantised. Rewire such inputs of the excluded nodes to ``x`` itself, and drop Q/DQ pairs
    nobody reads any more. Returns the number of inputs rewired.
    """
    excluded = set(exclude)
    if not excluded:
        return 0
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name for init in graph.initializer}
    rewired = 0
    for node in graph.node:
        if node.name not in excluded:
            continue
        for index, name in enumerate(node.input):
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] in initializers:
                continue
            q = producers.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear":
                continue
            node.input[index] = q.input[0]
            rewired += 1
    _drop_unread(model)
    return rewired


def _drop_unread(model: Any) -> None:
    """Remove Q/DQ nodes whose outputs nobody reads (repeat: a dropped DQ may orphan its Q)."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in read]
    for init in unused:
        graph.initializer.remove(init)


@contextlib.contextmanager
def _removing(path: Path) -> Iterator[None]:
    """Remove ``path`` on the way out if it is still there (a partial file after a failure)."""
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _quiet_quantize(func: Any, *args: Any, **kwargs: Any) -> None:
    """ONNX Runtime logs a pre-processing hint on every call and prints calibration chatter to
    stdout; keep both out of the user's output (our own progress bar says what is happening)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            func(*args, **kwargs)
    finally:
        root.setLevel(level)
