"""Stage 6: TensorRT engines from the FP16 and INT8 ONNX graphs.

Written against the TensorRT Python API shared by 10.x and 11.x:

- strongly typed networks: on 10.x through ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``;
  11.x removed weak typing (and the FP16/INT8 builder flags), so every network is strongly
  typed there and the flag, where it still exists, is ignored. Precision therefore lives in
  the graph: the FP16 graph's casts and the INT8 graph's Q/DQ nodes decide it. No
  ``BuilderFlag.FP16``/``INT8``, no calibrator: neither exists in 11.x.
- one optimisation profile per ``Profile`` (``--min/--opt/--max``), a workspace limit
  (``MemoryPoolType.WORKSPACE``), a timing cache loaded before and saved after each build
  (so the second engine and every later export reuse the measured tactics);
- the serialized engine plus its sidecar ``<engine>.json``
  (:class:`ndr_edge.runtime.engine_sidecar.EngineSidecar`, the schema the runtime reads):
  TensorRT version, GPU name and compute capability, precision, profiles, I/O tensors, the
  ONNX's SHA-256 and the artifact metadata the runtime needs.

``import tensorrt`` happens only inside these functions; :func:`tensorrt_status` says, in
one line, why engines cannot be built here (the runtime's one TensorRT check,
:func:`ndr_edge.runtime.tensorrt_env.require_tensorrt`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ndr_edge.artifact import INPUT_NAME, ArtifactMeta, atomic_write_bytes, sha256_file
from ndr_edge.errors import ArtifactError, BackendUnavailableError
from ndr_edge.export.profiles import Profile
from ndr_edge.export.variants import DEFAULT_WORKSPACE_MB
from ndr_edge.runtime.engine_sidecar import EngineSidecar, sidecar_path
from ndr_edge.runtime.tensorrt_backend import dims_tuple
from ndr_edge.runtime.tensorrt_env import gpu_info, require_tensorrt, tensorrt_unavailable_reason

if TYPE_CHECKING:
    import tensorrt as trt


# numpy names of TensorRT's DataType members (the sidecar is read without TensorRT)
_DTYPE_NAMES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
                "INT64": "int64", "BOOL": "bool", "UINT8": "uint8"}


@dataclass(frozen=True)
class EngineBuildOptions:
    profiles: tuple[Profile, ...] = (Profile(),)
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None
    optimization_level: int | None = None  # builder_optimization_level; None: TensorRT's default (3)


# -- what is here ---------------------------------------------------------------------
def tensorrt_status(device: int = 0) -> tuple[bool, str]:
    """(True, "TensorRT x on GPU (cc)") or (False, the one-line reason engines are skipped)."""
    reason = tensorrt_unavailable_reason(device, build=True)
    gpu = gpu_info(device)
    if reason is not None or gpu is None:
        return False, reason or "no CUDA GPU/driver is visible; build engines on the target GPU (scripts/gpu_smoke.py)"
    import tensorrt as trt

    return True, f"TensorRT {getattr(trt, '__version__', '?')} on {gpu['gpu_name']} (sm {gpu['compute_capability']})"


# -- building -------------------------------------------------------------------------
def _network_flags() -> int:
    """Creation flags of a strongly typed network: the flag on 10.x; on 11.x, where every
    network is strongly typed, the flag is ignored or gone, and 0 gives the same network."""
    import tensorrt as trt

    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def _parse_onnx(network: trt.INetworkDefinition, logger: trt.ILogger, onnx_path: Path) -> None:
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0].splitlines()[0] if errors else "no parser message"
        raise ArtifactError(f"{onnx_path.name}: TensorRT's ONNX parser refused the graph ({first}); "
                            "run ndr_edge.export.opcheck on it to see which operator")


def _load_timing_cache(config: trt.IBuilderConfig, path: Path | None) -> trt.ITimingCache:
    data = path.read_bytes() if path is not None and path.is_file() else b""
    # create_timing_cache returns None for bytes it cannot read (Polygraphy and trtexec check it)
    cache = config.create_timing_cache(data) or config.create_timing_cache(b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        # a cache from another TensorRT version or GPU: start a fresh one rather than fail
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _save_timing_cache(config: trt.IBuilderConfig, path: Path | None) -> None:
    """Merge this build's timings into the cache file (ITimingCache.combine, as trtexec does),
    under a lock so concurrent builds do not drop each other's entries."""
    import fcntl

    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            on_disk = config.create_timing_cache(path.read_bytes())
            if on_disk is not None:
                cache.combine(on_disk, ignore_mismatch=True)
        atomic_write_bytes(path, bytes(memoryview(cache.serialize())))


def _io_tensors(engine: trt.ICudaEngine) -> list[dict[str, Any]]:
    import tensorrt as trt

    tensors = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        mode = engine.get_tensor_mode(name)
        dtype = engine.get_tensor_dtype(name)
        tensors.append({
            "name": name,
            "mode": "input" if mode == trt.TensorIOMode.INPUT else "output",
            "dtype": _DTYPE_NAMES.get(dtype.name, dtype.name.lower()),
            "shape": list(dims_tuple(engine.get_tensor_shape(name))),
        })
    return tensors


def _progress_monitor(progress: Callable[[str], None]) -> Any:
    """A TensorRT IProgressMonitor that reports each top-level build phase through ``progress``
    (TensorRT 10+; None where the bindings lack it)."""
    import tensorrt as trt

    base: Any = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Monitor(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            base.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            if not parent_phase:
                progress(f"  TensorRT: {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            pass

    return Monitor()


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    precision: str,
    meta: ArtifactMeta,
    options: EngineBuildOptions = EngineBuildOptions(),
    extra: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> EngineSidecar:
    """Build a strongly typed engine from ``onnx_path``; write the engine and its sidecar
    atomically; return the sidecar. ``extra`` goes into the sidecar (the runtime's engine
    cache records its key there); ``progress`` receives one line per build phase."""
    require_tensorrt(build=True)
    import tensorrt as trt

    gpu = gpu_info()
    if gpu is None:
        raise BackendUnavailableError("no CUDA GPU/driver visible; TensorRT engines are built on the target GPU")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    for profile in options.profiles:
        profile.check(meta.size_multiple)
    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags())
    _parse_onnx(network, logger, onnx_path)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mb) << 20)
    if options.optimization_level is not None:
        config.builder_optimization_level = int(options.optimization_level)
    for profile in options.profiles:
        trt_profile = builder.create_optimization_profile()
        trt_profile.set_shape(INPUT_NAME, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)),
                              trt.Dims(list(profile.max)))
        config.add_optimization_profile(trt_profile)
    _load_timing_cache(config, options.timing_cache)
    monitor = _progress_monitor(progress) if progress is not None else None
    if monitor is not None:
        config.progress_monitor = monitor

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError(f"{onnx_path.name}: TensorRT could not build an engine (see the TensorRT log above); "
                            "try a larger --workspace-mb or a smaller --max")
    _save_timing_cache(config, options.timing_cache)
    plan = bytes(memoryview(serialized))

    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise ArtifactError(f"{engine_path.name}: the engine TensorRT just built does not deserialize")
    sidecar = EngineSidecar(
        path=sidecar_path(engine_path),
        meta=meta,
        tensorrt_version=str(getattr(trt, "__version__", "unknown")),
        gpu_name=gpu["gpu_name"],
        compute_capability=gpu["compute_capability"],
        precision=precision,
        profiles=tuple(options.profiles),
        io=tuple(_io_tensors(engine)),
        onnx_sha256=sha256_file(onnx_path),
        extra={"strongly_typed": True, "workspace_mb": options.workspace_mb,
               "timing_cache": str(options.timing_cache) if options.timing_cache else None,
               "build_seconds": round(time.perf_counter() - start, 2), "engine_bytes": len(plan),
               **(extra or {})},
    )
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(engine_path, plan)
    sidecar.write()
    return sidecar


def check_sizes_in_profiles(profiles: Sequence[Profile], shapes: Sequence[Sequence[int]], what: str) -> None:
    """InputError unless every shape fits at least one profile (the first is named)."""
    for shape in shapes:
        if not any(p.contains(shape) for p in profiles):
            profiles[0].require(shape, what)
