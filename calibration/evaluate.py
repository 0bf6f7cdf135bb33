"""Run an ONNX model under ONNX Runtime on the CPU: restored PSNR per degradation on an
evaluation set, and latency of several models on the same input in the same process.

INT8 choices are judged here by what they do to the restored image, not by activation
statistics: ``loss_db[d] = PSNR_fp32[d] - PSNR_int8[d]`` on held-out images.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..artifact import INPUT_NAME, ArtifactMeta
from ..errors import ArtifactError, BackendUnavailableError

BatchFn = Callable[[np.ndarray], np.ndarray]


def _ort() -> Any:
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:
        raise BackendUnavailableError("onnxruntime is not installed; pip install 'ndr-edge[ort]'") from exc
    return onnxruntime


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)


def cpu_session(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session with all graph optimisations and a fixed thread count."""
    ort = _ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable graphs
        raise ArtifactError(f"{path}: ONNX Runtime cannot load it ({exc}); re-export the model") from exc


def model_meta(path: str | os.PathLike[str]) -> ArtifactMeta:
    """The ndr_edge metadata embedded in an ONNX file (channel order, size multiple, ...)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ArtifactError(f"{path}: not a readable ONNX file ({exc}); re-export the model") from exc
    return ArtifactMeta.from_props({p.key: p.value for p in model.metadata_props}, source=str(path))


def session_runner(session: Any) -> BatchFn:
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: batch})[0])

    return run


@dataclass
class QualityResult:
    """Mean restored PSNR (dB) per degradation, and how many images each mean is over."""

    psnr: dict[str, float]
    images: dict[str, int]

    def loss_against(self, reference: QualityResult) -> dict[str, float]:
        """dB lost per degradation against ``reference`` (positive: worse than the reference)."""
        return {name: round(reference.psnr[name] - self.psnr[name], 4) for name in reference.psnr}


def psnr_per_degradation(
    run: BatchFn,
    samples: Sequence[Any],
    channel_order: str,
    multiple: int = 8,
    progress: bool = False,
    desc: str = "evaluate",
) -> QualityResult:
    """Restore every sample (``degradation``, ``lq``, ``gt``: float32 RGB HxWx3) with the published
    protocol (reflect-pad to ``multiple``, crop back) and average the PSNR per degradation."""
    from ..evaluate import restore_image
    from ..metrics import psnr

    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for sample in tqdm(samples, desc=desc, unit="img", disable=not progress, leave=False):
        restored = restore_image(run, sample.lq, channel_order, multiple)
        sums[sample.degradation] += float(psnr(restored, sample.gt))
        counts[sample.degradation] += 1
    return QualityResult({k: sums[k] / counts[k] for k in sums}, dict(counts))


def evaluate_onnx(
    path: str | os.PathLike[str],
    samples: Sequence[Any],
    *,
    threads: int | None = None,
    channel_order: str | None = None,
    progress: bool = False,
) -> QualityResult:
    """Restored PSNR per degradation of the ONNX model at ``path`` on ``samples`` (CPU)."""
    meta = model_meta(path) if channel_order is None else None
    order = channel_order or (meta.channel_order if meta else "BGR")
    multiple = meta.size_multiple if meta else 8
    return psnr_per_degradation(
        session_runner(cpu_session(path, threads)), samples, order, multiple, progress, desc=Path(path).name
    )


DEFAULT_EVAL_SIDE = 192


def default_eval_set(
    max_side: int = DEFAULT_EVAL_SIDE, seed: int = 0, degradations: Iterable[str] | None = None
) -> list[Any]:
    """The held-out evaluation set: the demo ``heldout`` images (never used for calibration),
    centre-cropped to ``max_side``, under every evaluation degradation; deterministic for a seed."""
    from ..data import synthetic_eval_set
    from ..degradations import EVAL_NAMES
    from ..imageio import demo_images

    names = list(degradations) if degradations is not None else list(EVAL_NAMES)
    return list(synthetic_eval_set(demo_images("heldout"), names, seed=seed, max_side=max_side))


@dataclass
class Latency:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int

    def to_dict(self) -> dict[str, float]:
        return {"median_ms": round(self.median_ms, 3), "p10_ms": round(self.p10_ms, 3),
                "p90_ms": round(self.p90_ms, 3), "runs": self.runs}


def compare_latency(
    models: dict[str, str | os.PathLike[str]],
    *,
    shape: tuple[int, int, int, int] = (1, 3, 256, 256),
    threads: int | None = None,
    repeats: int = 15,
    warmup: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """CPU latency of several ONNX models on one input, measured in turn in the same process
    (round-robin, so a busy machine slows every model alike). The first model is the reference:
    ``ratio[name] = median[name] / median[first]``."""
    threads = threads or default_threads()
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    sessions = {name: cpu_session(path, threads) for name, path in models.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for name, session in sessions.items():
        for _ in range(warmup):
            session.run(None, {session.get_inputs()[0].name: x})
    for _ in tqdm(range(repeats), desc="latency", disable=not progress, leave=False):
        for name, session in sessions.items():
            feed = {session.get_inputs()[0].name: x}
            start = time.perf_counter()
            session.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1000.0)
    stats = {name: _stats(values) for name, values in times.items()}
    reference = next(iter(stats.values())).median_ms
    return {
        "input": list(shape),
        "threads": threads,
        "provider": "CPUExecutionProvider",
        "onnxruntime": _ort().__version__,
        "models": {name: s.to_dict() for name, s in stats.items()},
        "ratio": {name: round(s.median_ms / reference, 4) for name, s in stats.items()},
    }


def op_time_profile(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int, int] = (1, 3, 256, 256),
    threads: int | None = None,
    runs: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Milliseconds per run spent in each op type (ONNX Runtime's profiler, after graph
    optimisation, so fused kernels such as ``FusedConv`` appear under their own names), largest
    first. Tells how much of a model's CPU time INT8 kernels could speed up at all."""
    import json
    import tempfile

    ort = _ort()
    threads = threads or default_threads()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="ndr-profile-") as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        for _ in range(runs + 1):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    warm = starts[1] if len(starts) > 1 else 0  # the first run (warm-up) is left out
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        if (event.get("cat") == "Node" and event["ts"] >= warm
                and str(event.get("name", "")).endswith("_kernel_time")):
            totals[event["args"].get("op_name", "?")] += event["dur"] / 1000.0 / runs
    return dict(sorted(((k, round(v, 3)) for k, v in totals.items()), key=lambda kv: -kv[1]))


def _stats(values: list[float]) -> Latency:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return Latency(statistics.median(ordered), pick(0.1), pick(0.9), len(ordered))


def input_shape(path: str | os.PathLike[str]) -> list[int | str | None]:
    """The NCHW shape of the model's ``input`` (ints for fixed axes, names or None for dynamic ones)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for value in model.graph.input:
        if value.name == INPUT_NAME or len(model.graph.input) == 1:
            return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in value.type.tensor_type.shape.dim]
    raise ArtifactError(f"{path}: no input named {INPUT_NAME!r}; re-export the model with ndr-export")
