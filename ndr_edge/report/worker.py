"""The latency and memory measurement of one variant, in a fresh process of its own
(``python -m ndr_edge.report.worker``): every variant starts from the same state, its peak
memory is its own, and a crash costs only that variant.

Reads a JSON spec on stdin, writes one JSON result line on stdout, progress lines
(``ndr-report-progress DONE TOTAL``) on stderr.

How it measures:

- latency: seeded random float32 batches of each size and batch size; ``warmup`` untimed
  calls, then ``repeats`` calls each timed with ``time.perf_counter`` around the backend's
  synchronous ``infer`` (TensorRT: host->device copy, execution, device->host copy included);
  median and 90th percentile per call, and per frame (per call / batch);
  throughput = frames / summed call time.
- host memory: after the backend library is imported and before the model is opened, the
  process's resident-set high-water mark is reset (``/proc/self/clear_refs``, Linux); the
  peak resident set (``VmHWM``) after all timed runs, minus the resident set at the reset, is
  what opening and running the model cost. Where that is unavailable, ``ru_maxrss``.
- GPU memory (TensorRT): free device memory (``cuda.mem_get_info``) in the same CUDA
  context before the engine is opened and after the timed runs; the difference.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

PROGRESS_PREFIX = "ndr-report-progress"
MB = 1024.0 * 1024.0


def _proc_status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class HostMemory:
    """Resident-set peak of this process from :meth:`start` on, in MiB."""

    def start(self) -> None:
        self.reset = False
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM to the current resident set
            self.reset = True
        except OSError:
            pass
        rss = _proc_status_kb("VmRSS")
        self.baseline_mb = rss / 1024.0 if rss is not None else self._maxrss_mb()

    @staticmethod
    def _maxrss_mb() -> float:
        value = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return value / MB if sys.platform == "darwin" else value / 1024.0  # bytes on macOS, KiB on Linux

    def result(self) -> dict[str, Any]:
        hwm = _proc_status_kb("VmHWM")
        peak = hwm / 1024.0 if hwm is not None else self._maxrss_mb()
        how = ("VmHWM after a clear_refs reset, minus VmRSS at the reset" if self.reset and hwm is not None
               else "ru_maxrss of the process minus the resident set before opening the model (import peaks included)")
        return {"peak_rss_mb": round(peak, 1), "baseline_rss_mb": round(self.baseline_mb, 1),
                "model_peak_mb": round(max(peak - self.baseline_mb, 0.0), 1), "how": how}


def _import_backend_library(backend: str) -> None:
    """Import what the backend needs before the memory baseline, so it is not counted."""
    if backend == "pytorch":
        import torch  # noqa: F401

        from ndr_edge import checkpoint  # noqa: F401
    elif backend == "onnxruntime":
        import onnxruntime  # noqa: F401
    elif backend == "openvino":
        import openvino  # noqa: F401
    elif backend == "tensorrt":
        import pycuda.driver  # noqa: F401
        import tensorrt  # noqa: F401


def _gpu_free_bytes(device: int, handle: Any = None) -> int | None:
    try:
        import pycuda.driver as cuda

        if handle is not None and hasattr(handle, "cuda_context"):
            with handle.cuda_context():
                return int(cuda.mem_get_info()[0])
        cuda.init()
        context = cuda.Device(device).retain_primary_context()
        context.push()
        try:
            return int(cuda.mem_get_info()[0])
        finally:
            cuda.Context.pop()
    except Exception:  # noqa: BLE001 - pycuda raises its own types; GPU memory is then not reported
        return None


def time_runs(run: Any, shape: tuple[int, int, int, int], warmup: int, repeats: int, seed: int,
              tick: Any = None) -> dict[str, Any]:
    """Time ``run`` on one seeded random batch: ``warmup`` untimed calls, ``repeats`` timed ones."""
    batch = np.random.default_rng(seed).random(shape, dtype=np.float32)
    for _ in range(warmup):
        run(batch)
        if tick:
            tick()
    times = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        start = time.perf_counter()
        run(batch)
        times[i] = time.perf_counter() - start
        if tick:
            tick()
    n = shape[0]
    call_ms = times * 1e3
    return {
        "size": f"{shape[2]}x{shape[3]}", "batch": n, "runs": repeats, "warmup": warmup,
        "median_ms": float(np.median(call_ms)), "p90_ms": float(np.percentile(call_ms, 90)),
        "mean_ms": float(call_ms.mean()), "min_ms": float(call_ms.min()), "max_ms": float(call_ms.max()),
        "per_frame_median_ms": float(np.median(call_ms)) / n, "per_frame_p90_ms": float(np.percentile(call_ms, 90)) / n,
        "fps": float(n * repeats / times.sum()),
    }


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    from ndr_edge.report.plan import VariantPlan
    from ndr_edge.report.runners import backend_info, open_variant, unit_range_run

    plan_fields = dict(spec["plan"])
    plan_fields["path"] = Path(plan_fields["path"]) if plan_fields.get("path") else None
    plan_fields["value_range"] = tuple(plan_fields.get("value_range", (0.0, 1.0)))
    plan = VariantPlan(**plan_fields)
    sizes = [tuple(s) for s in spec["sizes"]]
    batches = list(spec["batches"])
    warmup, repeats, device = int(spec["warmup"]), int(spec["repeats"]), int(spec.get("device", 0))
    total, done = len(sizes) * len(batches) * (warmup + repeats), 0

    def tick() -> None:
        nonlocal done
        done += 1
        print(f"{PROGRESS_PREFIX} {done} {total}", file=sys.stderr, flush=True)

    _import_backend_library(plan.backend)
    memory = HostMemory()
    memory.start()
    gpu_before = _gpu_free_bytes(device) if plan.backend == "tensorrt" else None
    opened = open_variant(plan, threads=spec.get("threads"), device=device)
    entries = []
    try:
        for h, w in sizes:
            for n in batches:
                try:
                    entries.append(time_runs(unit_range_run(opened), (n, 3, h, w), warmup, repeats, int(spec.get("seed", 0)), tick))
                except Exception as exc:  # noqa: BLE001 - one shape outside an engine profile must not lose the others
                    done += warmup + repeats
                    entries.append({"size": f"{h}x{w}", "batch": n, "error": error_line(exc)})
        result: dict[str, Any] = {"entries": entries, "memory": memory.result(), "describe": opened.describe(),
                                  "info": backend_info(opened)}
        if gpu_before is not None:
            gpu_after = _gpu_free_bytes(device, opened)
            if gpu_after is not None:
                result["gpu_memory_mb"] = round((gpu_before - gpu_after) / MB, 1)
        return result
    finally:
        opened.close()


def error_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (``Type`` alone for an empty message)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main() -> int:
    try:
        spec = json.loads(sys.stdin.read())
        result = measure(spec)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as this variant's failure
        from ndr_edge.errors import NDREdgeError

        traceback_text = "" if isinstance(exc, NDREdgeError) else traceback.format_exc(limit=3)
        print(json.dumps({"error": str(exc) if isinstance(exc, NDREdgeError) else error_line(exc),
                          "traceback": traceback_text}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
