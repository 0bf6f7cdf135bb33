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
- the serialized engine plus a JSON sidecar ``<engine>.json``: TensorRT version, GPU name
  and compute capability, precision, profiles, I/O tensors, the ONNX's SHA-256 and the
  artifact metadata the runtime needs.

``import tensorrt`` happens only inside these functions; :func:`tensorrt_status` says, in
one line, why engines cannot be built here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact import INPUT_NAME, ArtifactMeta, atomic_write_bytes, atomic_write_json, sha256_file
from ..errors import ArtifactError, BackendUnavailableError
from .profiles import Profile

if TYPE_CHECKING:
    import tensorrt as trt

DEFAULT_WORKSPACE_MB = 2048
SIDECAR_SUFFIX = ".json"

# numpy names of TensorRT's DataType members (the sidecar is read without TensorRT)
_DTYPE_NAMES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
                "INT64": "int64", "BOOL": "bool", "UINT8": "uint8"}
# CUdevice_attribute values of the CUDA driver API (cuda.h)
_CC_MAJOR, _CC_MINOR = 75, 76


@dataclass(frozen=True)
class EngineBuildOptions:
    profiles: tuple[Profile, ...] = (Profile(),)
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None
    optimization_level: int | None = None  # builder_optimization_level; None: TensorRT's default (3)


@dataclass
class EngineInfo:
    """What the sidecar holds (keys read by ``ndr_edge.runtime``)."""

    meta: dict[str, Any]
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profiles: list[dict[str, list[int]]]
    io: list[dict[str, Any]]
    onnx_sha256: str
    strongly_typed: bool = True
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: str | None = None
    build_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sidecar_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)


def read_sidecar(engine_path: str | Path) -> dict[str, Any]:
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise ArtifactError(f"{path}: engine sidecar missing; rebuild the engine with ndr-export")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: unreadable engine sidecar ({exc})") from exc
    return data


# -- what is here ---------------------------------------------------------------------
def _load_libcuda() -> Any:
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    found = ctypes.util.find_library("cuda")
    for name in [*names, *([found] if found else [])]:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def gpu_info(device: int = 0) -> dict[str, str] | None:
    """Name and compute capability of a CUDA GPU through the driver API (no CUDA toolkit,
    no pycuda); None where there is no driver or no GPU."""
    lib = _load_libcuda()
    if lib is None or lib.cuInit(0) != 0:
        return None
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value <= device:
        return None
    handle = ctypes.c_int(0)
    if lib.cuDeviceGet(ctypes.byref(handle), device) != 0:
        return None
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    lib.cuDeviceGetName(name, 256, handle)
    lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, handle)
    lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, handle)
    return {"gpu_name": name.value.decode(errors="replace"), "compute_capability": f"{major.value}.{minor.value}"}


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendUnavailableError saying why not."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"TensorRT is not installed ({exc.name}); on a GPU machine: pip install tensorrt "
            "(or use JetPack's), or run ndr-export with --no-engine"
        ) from None
    if not hasattr(tensorrt, "Builder"):  # type stubs alone make an empty namespace package
        raise BackendUnavailableError(
            "the 'tensorrt' module here has no builder (only type stubs are installed); "
            "install TensorRT on a GPU machine, or run ndr-export with --no-engine"
        )
    return tensorrt


def tensorrt_status() -> tuple[bool, str]:
    """(True, "TensorRT x on GPU (cc)") or (False, the one-line reason engines are skipped)."""
    try:
        trt_module = import_tensorrt()
    except BackendUnavailableError as exc:
        return False, str(exc)
    gpu = gpu_info()
    if gpu is None:
        return False, (f"TensorRT {getattr(trt_module, '__version__', '?')} is installed but no CUDA GPU/driver "
                       "is visible; build engines on the target GPU (scripts/gpu_smoke.py)")
    return True, f"TensorRT {getattr(trt_module, '__version__', '?')} on {gpu['gpu_name']} (sm {gpu['compute_capability']})"


def require_tensorrt() -> None:
    available, reason = tensorrt_status()
    if not available:
        raise BackendUnavailableError(f"engines requested but {reason}")


# -- building -------------------------------------------------------------------------
def dims_list(dims: trt.Dims) -> list[int]:
    """A TensorRT Dims as a list of ints (-1 for a dynamic axis)."""
    return [int(dims[i]) for i in range(len(dims))]


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
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        # a cache from another TensorRT version or GPU: start a fresh one rather than fail
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _save_timing_cache(config: trt.IBuilderConfig, path: Path | None) -> None:
    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
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
            "shape": dims_list(engine.get_tensor_shape(name)),
        })
    return tensors


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    precision: str,
    meta: ArtifactMeta,
    options: EngineBuildOptions = EngineBuildOptions(),
) -> EngineInfo:
    """Build a strongly typed engine from ``onnx_path``; write the engine and its sidecar
    atomically; return the sidecar's content."""
    trt_module = import_tensorrt()
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
    info = EngineInfo(
        meta=asdict(meta),
        tensorrt_version=str(getattr(trt_module, "__version__", "unknown")),
        gpu_name=gpu["gpu_name"],
        compute_capability=gpu["compute_capability"],
        precision=precision,
        profiles=[p.to_dict() for p in options.profiles],
        io=_io_tensors(engine),
        onnx_sha256=sha256_file(onnx_path),
        strongly_typed=True,
        workspace_mb=options.workspace_mb,
        timing_cache=str(options.timing_cache) if options.timing_cache else None,
        build_seconds=round(time.perf_counter() - start, 2),
    )
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(engine_path, plan)
    atomic_write_json(sidecar_path(engine_path), info.to_dict())
    return info


def check_sizes_in_profiles(profiles: Sequence[Profile], shapes: Sequence[Sequence[int]], what: str) -> None:
    """InputError unless every shape fits at least one profile (the first is named)."""
    for shape in shapes:
        if not any(p.contains(shape) for p in profiles):
            profiles[0].require(shape, what)
