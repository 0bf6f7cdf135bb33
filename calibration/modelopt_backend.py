"""NVIDIA ModelOpt's ONNX INT8 quantisation as a second calibrator, for comparison.

ModelOpt (``nvidia-modelopt``, installed without its ``[onnx]`` extra, which would pull
onnxruntime-gpu and cupy; it needs ``onnx-graphsurgeon`` and ``onnxslim``) places Q/DQ the way
TensorRT likes (inputs of Conv/MatMul and a few others) and calibrates with ONNX Runtime on the
CPU (``calibration_eps=["cpu"]``), fed by this package's streaming reader.

It runs in a child process: importing ModelOpt's quantiser patches ONNX Runtime's calibration
classes for the whole process, which would change what ``Quantizer`` computes afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ndr_edge.artifact import atomic_output
from ndr_edge.calibration.reader import CalibrationSet
from ndr_edge.errors import ArtifactError, BackendUnavailableError

MODELOPT_METHODS = {"entropy": "entropy", "minmax": "max"}  # our method name -> ModelOpt's


def modelopt_status() -> tuple[bool, str]:
    """(available, why not) for the ModelOpt ONNX quantiser."""
    missing = [name for name in ("modelopt", "onnx_graphsurgeon", "onnxslim") if importlib.util.find_spec(name) is None]
    if missing:
        return False, (f"{', '.join(missing)} not installed: pip install --no-deps nvidia-modelopt onnx-graphsurgeon "
                       "onnxslim (never the [onnx] extra: it replaces onnxruntime)")
    return True, ""


def quantize_modelopt(
    fp32_onnx: str | os.PathLike[str],
    calib: CalibrationSet,
    out_path: str | os.PathLike[str],
    *,
    method: str = "entropy",
    channel_order: str = "BGR",
    max_samples: int | None = None,
    timeout_s: float | None = 3600,
) -> float:
    """Quantise with ModelOpt (child process); write ``out_path`` with int8 metadata; return seconds taken."""
    import onnx

    from ndr_edge.calibration.quantize import stamp_int8

    ok, why = modelopt_status()
    if not ok:
        raise BackendUnavailableError(f"ModelOpt: {why}")
    if method not in MODELOPT_METHODS:
        raise ArtifactError(f"ModelOpt: method {method!r} is not one of {', '.join(MODELOPT_METHODS)}")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with atomic_output(out_path, suffix=".onnx") as tmp:
        command = [sys.executable, "-m", __name__, "--model", str(fp32_onnx), "--set", str(calib.path),
                   "--out", str(tmp), "--method", MODELOPT_METHODS[method], "--channel-order", channel_order]
        if max_samples:
            command += ["--samples", str(max_samples)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ArtifactError(f"ModelOpt quantisation of {fp32_onnx} failed: {tail[0]}")
        seconds = time.perf_counter() - start
        model = onnx.load(str(tmp))
        stamp_int8(model, fp32_onnx, {"backend": "modelopt", "method": method, "format": "QDQ",
                                      "high_precision": "fp32", "excluded": []})
        onnx.save(model, str(tmp))
    return seconds


def modelopt_backend(method: str = "entropy", max_samples: int | None = None) -> Callable[..., float]:
    """A ``compare_methods`` extra backend that quantises with ModelOpt."""

    def run(fp32: Path, calib: CalibrationSet, out: Path, workdir: Path, channel_order: str, progress: bool) -> float:
        del workdir, progress  # ModelOpt keeps its own temporary files and logs
        return quantize_modelopt(fp32, calib, out, method=method, channel_order=channel_order, max_samples=max_samples)

    return run


def batched_constant_matmuls(path: str) -> list[str]:
    """MatMuls whose second input is a constant of rank > 2 (the degradation query against the NDR).

    ModelOpt quantises them per channel; ONNX Runtime's CPU kernel (MatMulIntegerToFloat) rejects
    that zero-point shape at run time, so they stay in float here (TensorRT would take them).
    """
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    ranks = {init.name: len(init.dims) for init in graph.initializer}
    ranks.update({n.output[0]: len(n.attribute[0].t.dims) for n in graph.node
                  if n.op_type == "Constant" and n.attribute and n.attribute[0].HasField("t")})
    return [n.name for n in graph.node if n.op_type == "MatMul" and ranks.get(n.input[1], 0) > 2]


def _child(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelopt_backend")
    parser.add_argument("--model", required=True)
    parser.add_argument("--set", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--method", default="entropy")
    parser.add_argument("--channel-order", default="BGR")
    parser.add_argument("--samples", type=int, default=None)
    args = parser.parse_args(argv)

    import modelopt.onnx.quantization as moq
    from modelopt.onnx import trt_utils

    from ndr_edge.calibration.datareader import SetDataReader

    try:  # type stubs for TensorRT make `import tensorrt` succeed without the library
        import tensorrt

        if not hasattr(tensorrt, "Logger"):
            trt_utils.TRT_PYTHON_AVAILABLE = False
    except ImportError:
        pass
    reader = SetDataReader(CalibrationSet.open(args.set), args.channel_order, limit=args.samples)
    moq.quantize(args.model, quantize_mode="int8", calibration_data_reader=reader, calibration_method=args.method,
                 calibration_eps=["cpu"], high_precision_dtype="fp32", output_path=args.out, log_level="ERROR",
                 nodes_to_exclude=batched_constant_matmuls(args.model) or None)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
