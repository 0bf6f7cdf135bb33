"""The TensorRT stage. Without TensorRT: profiles are validated, and the builder runs against a
recording stand-in of the ``tensorrt`` module, so what it asks TensorRT for (a strongly typed
network, the profiles, the workspace, the timing cache) and the engine and sidecar it writes
are checked everywhere; so are the one-line reasons engines are skipped. Where TensorRT and a
GPU exist: the networks the builder parses, and engines built, run and compared with ONNX
Runtime. (The type check against the TensorRT stubs: tests/runtime/test_typing.py.)"""

from __future__ import annotations

import enum
import hashlib
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from ndr_edge.artifact import ArtifactMeta
from ndr_edge.errors import ArtifactError, BackendUnavailableError, InputError
from ndr_edge.export import tensorrt_build
from ndr_edge.export.profiles import Profile, parse_shape
from ndr_edge.export.tensorrt_build import EngineBuildOptions, build_engine, check_sizes_in_profiles, tensorrt_status
from ndr_edge.runtime.engine_sidecar import EngineSidecar, check_compatibility, pick_profile, sidecar_path

TRT_OK, TRT_REASON = tensorrt_status()
PLAN = b"serialized engine plan"
GPU = {"gpu_name": "NVIDIA Jetson AGX Orin", "compute_capability": "8.7"}


def read_sidecar(engine: Path) -> dict:
    return EngineSidecar.read(engine).to_dict()


class _Flags10(enum.IntEnum):  # NetworkDefinitionCreationFlag of TensorRT 10
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


class _Flags11(enum.IntEnum):  # 11: weak typing is gone, and with it the flag
    EXPLICIT_BATCH = 0


class _MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1


class _TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class _DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2


def fake_tensorrt(version: str = "10.13.0.35", parse_ok: bool = True, build_ok: bool = True) -> Any:
    """A stand-in for the ``tensorrt`` module with what :func:`build_engine` calls; every call
    that shapes the engine is appended to ``.calls``. Enum values are TensorRT 10's; from
    version 11 on there is no STRONGLY_TYPED flag (every network is strongly typed)."""
    trt: Any = types.ModuleType("tensorrt")
    calls: list[tuple[Any, ...]] = []
    trt.calls, trt.__version__ = calls, version
    trt.NetworkDefinitionCreationFlag = _Flags10 if version.startswith("10.") else _Flags11
    trt.MemoryPoolType, trt.TensorIOMode, trt.DataType = _MemoryPoolType, _TensorIOMode, _DataType

    class Dims(tuple):  # len() and indexing, as trt.Dims
        pass

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            self.severity = severity

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags

    class OnnxParser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parse", path))
            return parse_ok

        def get_error(self, index: int) -> str:
            return "In node 7 (parseGraph): UNSUPPORTED_NODE: Conv with INT32 bias\nsecond line"

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytes(data)

        def serialize(self) -> bytes:
            return self.data + b"+measured tactics"

        def combine(self, other: TimingCache, ignore_mismatch: bool) -> bool:
            calls.append(("combine", other.data))
            return True

    class OptimizationProfile:
        def set_shape(self, name: str, low: Dims, opt: Dims, high: Dims) -> None:
            calls.append(("shape", name, tuple(low), tuple(opt), tuple(high)))

    class Config:
        def __init__(self) -> None:
            self.cache: TimingCache | None = None

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            calls.append(("pool", pool, size))

        def set_flag(self, flag: Any) -> None:  # FP16 / INT8 builder flags: a weakly typed engine
            calls.append(("flag", flag))

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            return 0

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("load cache", bytes(data)))
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache | None:
            return self.cache

    class Builder:
        def __init__(self, logger: Logger) -> None:
            calls.append(("builder",))

        def create_network(self, flags: int) -> Network:
            calls.append(("network", flags))
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            calls.append(("build", network.flags))
            return PLAN if build_ok else None

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, index: int) -> str:
            return ("input", "output")[index]

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> Any:
            return trt.DataType.FLOAT if name == "input" else trt.DataType.HALF

        def get_tensor_shape(self, name: str) -> Dims:
            return Dims((-1, 3, -1, -1))

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, plan: bytes) -> Engine:
            calls.append(("deserialize", bytes(plan)))
            return Engine()

    for cls in (Dims, Logger, OnnxParser, Builder, Runtime):
        setattr(trt, cls.__name__, cls)
    return trt


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install :func:`fake_tensorrt` as ``tensorrt`` with a GPU reported by the driver; returns
    a function that makes and installs one (keyword arguments of fake_tensorrt)."""

    def install(**kwargs: Any) -> Any:
        trt = fake_tensorrt(**kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(tensorrt_build, "require_tensorrt", lambda device=0, build=False: trt)
        monkeypatch.setattr(tensorrt_build, "gpu_info", lambda device=0: dict(GPU))
        return trt

    return install


PROFILES = (Profile((1, 3, 64, 64), (2, 3, 128, 128), (4, 3, 256, 256)),
            Profile((1, 3, 256, 256), (1, 3, 512, 512), (1, 3, 1024, 1024)))


def _onnx(tmp_path: Path) -> Path:
    path = tmp_path / "model-fp16.onnx"
    path.write_bytes(b"the bytes of an FP16 ONNX graph")  # the builder hands the file to TensorRT's parser
    return path


@pytest.mark.parametrize("version, flags", [("10.13.0.35", 1 << 1), ("11.0.0.1", 0)])
def test_the_builder_asks_for_a_strongly_typed_network_with_the_profiles(tmp_path, fake_trt, version, flags):
    trt = fake_trt(version=version)
    onnx_path = _onnx(tmp_path)
    engine = tmp_path / "engines" / "model-fp16.engine"
    meta = ArtifactMeta(preset="ndr-edge-xs", precision="fp16")
    build_engine(onnx_path, engine, "fp16", meta,
                 EngineBuildOptions(profiles=PROFILES, workspace_mb=300, timing_cache=tmp_path / "timing.cache"))
    calls = trt.calls
    # 10.x: the STRONGLY_TYPED creation flag (value 1); 11.x: no flag, every network is strongly typed
    assert [c for c in calls if c[0] == "network"] == [("network", flags)]
    assert ("build", flags) in calls
    assert not [c for c in calls if c[0] == "flag"]  # no FP16/INT8 builder flags: the graph decides precision
    assert ("parse", str(onnx_path)) in calls
    assert [c for c in calls if c[0] == "pool"] == [("pool", trt.MemoryPoolType.WORKSPACE, 300 * 1024 * 1024)]
    assert [c[1:] for c in calls if c[0] == "shape"] == [("input", p.min, p.opt, p.max) for p in PROFILES]
    # the engine written is the plan TensorRT serialized, and it deserialised before being kept
    assert engine.read_bytes() == PLAN and ("deserialize", PLAN) in calls


def test_the_sidecar_the_builder_writes_is_what_the_runtime_reads_and_checks(tmp_path, fake_trt):
    fake_trt()
    onnx_path = _onnx(tmp_path)
    engine = tmp_path / "model-fp16.engine"
    meta = ArtifactMeta(preset="ndr-edge-xs", channel_order="BGR", precision="fp16", source_sha256="cd" * 32)
    build_engine(onnx_path, engine, "fp16", meta, EngineBuildOptions(profiles=PROFILES, workspace_mb=300))
    sidecar = EngineSidecar.read(engine)  # the runtime's reader, from the file beside the engine
    assert sidecar.path == sidecar_path(engine) and sidecar.path.is_file()
    assert sidecar.meta == meta and sidecar.precision == "fp16"
    assert sidecar.onnx_sha256 == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert (sidecar.tensorrt_version, sidecar.gpu_name, sidecar.compute_capability) == (
        "10.13.0.35", GPU["gpu_name"], GPU["compute_capability"])
    assert [(p.min, p.opt, p.max) for p in sidecar.profiles] == [(p.min, p.opt, p.max) for p in PROFILES]
    # the engine's I/O as TensorRT reports it, dtypes named as numpy does
    assert list(sidecar.io) == [{"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
                                {"name": "output", "mode": "output", "dtype": "float16", "shape": [-1, 3, -1, -1]}]
    assert sidecar.extra["strongly_typed"] is True and sidecar.extra["workspace_mb"] == 300
    # the runtime's checks on it: this TensorRT release and architecture load it, others do not
    assert check_compatibility(sidecar, "10.13.0.35", GPU["gpu_name"], "8.7") == []
    assert check_compatibility(sidecar, "10.13.0.35", "NVIDIA Jetson Orin Nano", "8.7")  # a warning only
    with pytest.raises(ArtifactError, match="built with TensorRT 10.13.0.35"):
        check_compatibility(sidecar, "10.14.1.48", GPU["gpu_name"], "8.7")
    with pytest.raises(ArtifactError, match=r"compute capability 8\.7"):
        check_compatibility(sidecar, "10.13.0.35", "NVIDIA GeForce RTX 4090", "8.9")
    # and picks the profile a shape belongs to
    assert pick_profile((3, 3, 200, 128), sidecar.profiles) == 0
    assert pick_profile((1, 3, 720, 1024), sidecar.profiles) == 1
    with pytest.raises(InputError, match="outside the engine's profiles"):
        pick_profile((2, 3, 720, 1024), sidecar.profiles)


def test_the_timing_cache_is_saved_and_the_next_build_starts_from_it(tmp_path, fake_trt):
    trt = fake_trt()
    onnx_path, cache = _onnx(tmp_path), tmp_path / "cache" / "timing.cache"
    options = EngineBuildOptions(timing_cache=cache)
    meta = ArtifactMeta(preset="ndr-edge-xs", precision="fp16")
    build_engine(onnx_path, tmp_path / "a.engine", "fp16", meta, options)
    assert cache.read_bytes() == b"+measured tactics"  # what this build measured, from an empty cache
    assert next(c for c in trt.calls if c[0] == "load cache") == ("load cache", b"")
    trt.calls.clear()
    build_engine(onnx_path, tmp_path / "b.engine", "fp16", meta, options)
    assert next(c for c in trt.calls if c[0] == "load cache") == ("load cache", b"+measured tactics")
    assert ("combine", b"+measured tactics") in trt.calls  # merged with the file, not overwritten
    assert cache.read_bytes() == b"+measured tactics+measured tactics"


@pytest.mark.parametrize("failure, message", [
    ("parse", (r"model-fp16\.onnx: TensorRT's ONNX parser refused the graph \(In node 7 \(parseGraph\): "
               r"UNSUPPORTED_NODE: Conv with INT32 bias\); run ndr_edge\.export\.opcheck")),
    ("build", r"model-fp16\.onnx: TensorRT could not build an engine.*--workspace-mb"),
])
def test_a_failed_build_says_why_and_leaves_no_engine(tmp_path, fake_trt, failure, message):
    fake_trt(parse_ok=failure != "parse", build_ok=failure != "build")
    engine = tmp_path / "model-fp16.engine"
    with pytest.raises(ArtifactError, match=message) as info:
        build_engine(_onnx(tmp_path), engine, "fp16", ArtifactMeta(preset="ndr-edge-xs", precision="fp16"), EngineBuildOptions())
    assert "\n" not in str(info.value)
    assert not unknown_options(str(info.value))  # advice that works
    assert not engine.exists() and not sidecar_path(engine).exists()


def test_a_bad_profile_is_refused_before_tensorrt_builds_anything(tmp_path, fake_trt):
    trt = fake_trt()
    with pytest.raises(InputError, match="multiples of 8"):
        build_engine(_onnx(tmp_path), tmp_path / "e.engine", "fp16", ArtifactMeta(preset="ndr-edge-xs", precision="fp16"),
                     EngineBuildOptions(profiles=(Profile((1, 3, 64, 64), (1, 3, 100, 100), (1, 3, 128, 128)),)))
    assert trt.calls == []


def test_profiles_are_checked_without_tensorrt():
    profile = Profile.parse("1x3x64x64", None, "4x3x512x512").check()
    assert profile.opt == (1, 3, 256, 256)
    assert Profile.parse("2x3x64x64", None, "2x3x128x128").opt == (2, 3, 128, 128)  # clamped into [min, max]
    assert parse_shape("1,3,720,1280") == (1, 3, 720, 1280)
    assert profile.contains((3, 3, 512, 256)) and not profile.contains((5, 3, 64, 64))
    assert Profile.from_dict(profile.to_dict()) == profile
    with pytest.raises(InputError, match="multiples of 8"):
        Profile((1, 3, 64, 64), (1, 3, 100, 100), (1, 3, 128, 128)).check()
    with pytest.raises(InputError, match="outside the engine profile"):
        check_sizes_in_profiles([profile], [(8, 3, 64, 64)], "verification batch")
    check_sizes_in_profiles([profile, Profile((1, 3, 64, 64), (8, 3, 64, 64), (8, 3, 64, 64))],
                            [(8, 3, 64, 64)], "verification batch")


# the command-line tools whose options the advice in error messages names
CLIS = {"ndr-export": "ndr_edge.export.cli", "ndr-restore": "ndr_edge.runtime.cli"}


def _options(command: str) -> set[str]:
    import importlib

    main = importlib.import_module(CLIS[command]).main
    return {opt for param in main.params for opt in (*param.opts, *param.secondary_opts)}


def unknown_options(message: str) -> list[str]:
    """The ``--options`` a message advises that do not exist: one named after a command
    (``ndr-export --no-engine``) must be that command's, any other one of some tool's."""
    every = set().union(*(_options(c) for c in CLIS))
    wrong = []
    for command, option in re.findall(r"(?:\b(ndr-[a-z]+)\s+(?:[A-Z]+\s+)?)?(--[a-z][a-z-]*)", message):
        if option not in (_options(command) if command in CLIS else every):
            wrong.append(f"{command} {option}".strip())
    return wrong


def _no_gpu_driver() -> dict[str, Any]:
    pycuda: Any = types.ModuleType("pycuda")
    driver: Any = types.ModuleType("pycuda.driver")

    def init() -> None:
        raise RuntimeError("cuInit failed: no CUDA-capable device is detected")

    driver.init, pycuda.driver = init, driver
    return {"pycuda": pycuda, "pycuda.driver": driver}


@pytest.mark.parametrize("case, modules, says", [
    ("no tensorrt", {"tensorrt": None}, "TensorRT is not installed"),
    ("stubs only", {"tensorrt": types.ModuleType("tensorrt")}, "only type stubs"),
    ("no pycuda", {"tensorrt": fake_tensorrt(), "pycuda": None, "pycuda.driver": None}, "pycuda is not installed"),
    ("no gpu", {"tensorrt": fake_tensorrt(), **_no_gpu_driver()}, "no usable CUDA driver or GPU here (cuInit failed"),
])
def test_each_missing_piece_has_its_own_one_line_reason_and_advice_that_works(monkeypatch, case, modules, says):
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    ok, reason = tensorrt_status()
    assert not ok and says in reason, (case, reason)
    assert "\n" not in reason
    # the advice names real options (ndr-export --no-engine), not ones the tools do not have
    assert re.search(r"--[a-z]", reason)  # what to do instead
    assert not unknown_options(reason), (reason, unknown_options(reason))


def test_without_tensorrt_engines_are_skipped_or_refused_before_any_work(tmp_path):
    if TRT_OK:
        pytest.skip("TensorRT and a GPU are present here")
    from ndr_edge.export.pipeline import ExportConfig, preflight

    out = tmp_path / "out"
    assert preflight(out, ExportConfig(engines="auto")) is False  # auto: the ONNX artifacts only
    with pytest.raises(BackendUnavailableError) as info:
        preflight(out, ExportConfig(engines="require"))
    assert str(info.value) == f"engines requested but {TRT_REASON}"
    assert not out.exists()


# -- on a GPU machine with TensorRT ---------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not TRT_OK, reason=f"needs TensorRT and a CUDA GPU: {TRT_REASON}")
def test_the_networks_the_builder_parses_are_strongly_typed_fp16_and_explicit_int8(exported):
    """What TensorRT makes of the exported graphs with the builder's own flags and parser."""
    import tensorrt as trt

    from ndr_edge.export.tensorrt_build import _network_flags, _parse_onnx

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    for precision in ("fp16", "int8"):
        network = builder.create_network(_network_flags())
        _parse_onnx(network, logger, exported.outdir / f"model-{precision}.onnx")
        flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        assert flag is None or network.get_flag(flag), precision
        assert [network.get_input(i).dtype for i in range(network.num_inputs)] == [trt.DataType.FLOAT]
        assert [network.get_output(i).dtype for i in range(network.num_outputs)] == [trt.DataType.FLOAT]
        layers = [network.get_layer(i) for i in range(network.num_layers)]
        if precision == "fp16":  # the convolutions compute in half precision, as the graph's casts say
            assert any(layer.type == trt.LayerType.CONVOLUTION and layer.get_output(0).dtype == trt.DataType.HALF
                       for layer in layers)
        else:
            kinds = {layer.type for layer in layers}
            assert {trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE} <= kinds


@pytest.mark.gpu
@pytest.mark.skipif(not TRT_OK, reason=f"needs TensorRT and a CUDA GPU: {TRT_REASON}")
def test_engines_build_run_and_match_onnxruntime(tmp_path, xs_checkpoint, calibration_set):
    from ndr_edge.export.pipeline import Exporter

    from .conftest import export_config

    config = export_config(calibration_set, engines="require",
                           profiles=(Profile((1, 3, 64, 64), (2, 3, 96, 128), (2, 3, 128, 128)),))
    manifest = Exporter(xs_checkpoint, tmp_path / "out", config).run()
    engines = {a.name: a for a in manifest.artifacts if a.format == "engine"}
    assert set(engines) == {"engine-fp16", "engine-int8"}
    for name, entry in engines.items():
        v = entry.verification
        assert v["vs_same_onnx_psnr_db"] >= (40.0 if entry.precision == "fp16" else 30.0), (name, v)
        sidecar = read_sidecar(tmp_path / "out" / entry.path)
        assert sidecar["precision"] == entry.precision and sidecar["compute_capability"]
        assert [io["name"] for io in sidecar["io"]] == ["input", "output"]
        assert all(io["dtype"] == "float32" for io in sidecar["io"])
    assert (tmp_path / "out" / "timing.cache").stat().st_size > 0
    assert manifest.stages["engines"]["status"] == "ran"


@pytest.mark.gpu
@pytest.mark.skipif(not TRT_OK, reason=f"needs TensorRT and a CUDA GPU: {TRT_REASON}")
def test_engine_rejects_a_shape_outside_its_profile(tmp_path, exported):
    import numpy as np

    from ndr_edge.runtime.backends import open_backend

    profile = Profile((1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 128, 128))
    engine = tmp_path / "fp16.engine"
    build_engine(exported.outdir / "model-fp16.onnx", engine, "fp16", ArtifactMeta(preset="ndr-edge-xs"),
                 EngineBuildOptions(profiles=(profile,), workspace_mb=512, timing_cache=tmp_path / "t.cache"))
    run = open_backend(engine).infer  # the runtime's TensorRT backend
    assert run(np.zeros((1, 3, 64, 96), np.float32)).shape == (1, 3, 64, 96)
    with pytest.raises(InputError, match="outside"):
        run(np.zeros((2, 3, 64, 64), np.float32))
