"""The TensorRT stage: its code type-checks against the TensorRT 10.13 API (tensorrt-stubs),
profiles are validated without TensorRT, and -- where TensorRT and a GPU exist -- engines
are built, run and compared with ONNX Runtime."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ndr_edge.errors import InputError
from ndr_edge.export.profiles import Profile, parse_shape
from ndr_edge.export.tensorrt_build import check_sizes_in_profiles, tensorrt_status
from ndr_edge.runtime.engine_sidecar import EngineSidecar

REPO = Path(__file__).resolve().parents[2]
TRT_OK, TRT_REASON = tensorrt_status()
TRT_MODULES = ("ndr_edge.export.tensorrt_build",)  # the backend that runs engines: tests/runtime/test_typing.py


def read_sidecar(engine: Path) -> dict:
    return EngineSidecar.read(engine).to_dict()


def _stub_files() -> list[Path]:
    try:
        files = importlib.metadata.files("tensorrt-stubs") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tensorrt-stubs is not installed (pip install tensorrt-stubs)")
    return [Path(str(f.locate())) for f in files if str(f).endswith(".pyi")]


def _stub_tree(root: Path) -> Path:
    """The stubs, copied where mypy reads them, with the package's invalid Python fixed:
    parameters named ``in`` (a keyword) and one parameter without a default after defaults.
    Only signatures of plugin interfaces and ``add_scale_nd`` change; nothing this code calls."""
    stubs = root / "stubs"
    for source in _stub_files():
        package = source.parent.name
        target = stubs / package / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text()
        text = re.sub(r"(?m)^(\s*def [^\n]*?\()(.*)$", lambda m: m.group(1) + re.sub(r"\bin: ", "in_: ", m.group(2)), text)
        text = text.replace(", channel_axis: int)", ", channel_axis: int = ...)")
        target.write_text(text)
    return stubs


def _package_tree(root: Path) -> Path:
    """``ndr_edge`` with ``export/`` mounted as ``ndr_edge/export``, as the installed package has it."""
    pkg = root / "pkg" / "ndr_edge"
    pkg.mkdir(parents=True)
    for child in (REPO / "ndr_edge").iterdir():
        (pkg / child.name).symlink_to(child)
    (pkg / "export").symlink_to(REPO / "export")
    return pkg.parent


def _mypy(tmp_path: Path, modules: tuple[str, ...], extra_path: Path | None = None) -> list[str]:
    stubs = _stub_tree(tmp_path)
    pkg = _package_tree(tmp_path) if extra_path is None else extra_path
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(pkg), str(stubs)])}
    args = [sys.executable, "-m", "mypy", "--follow-imports=skip", "--check-untyped-defs", "--disallow-untyped-defs",
            "--warn-unused-ignores", "--no-incremental", "--cache-dir", os.devnull, "--config-file", str(REPO / "pyproject.toml")]
    for module in modules:
        args += ["-p", module]
    # mypy exits non-zero on the stubs' own findings; whether it analysed at all is what the control test shows
    proc = subprocess.run(args, check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    # the stubs are on MYPYPATH and so are checked too; only our modules' lines count
    ours = [line for line in proc.stdout.splitlines() if "ndr_edge" in line.split(":")[0] and ": error:" in line]
    assert "Found" in proc.stdout or "Success" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    return ours


def test_tensorrt_code_typechecks_against_the_stubs(tmp_path):
    errors = _mypy(tmp_path, TRT_MODULES)
    assert not errors, "\n".join(errors)


def test_the_typecheck_would_catch_a_wrong_api_call(tmp_path):
    """Control: the same check on a copy with a misspelt enum member and a wrong argument type fails."""
    pkg = tmp_path / "bad" / "ndr_edge"
    pkg.mkdir(parents=True)
    for child in (REPO / "ndr_edge").iterdir():
        (pkg / child.name).symlink_to(child)
    export = pkg / "export"
    export.mkdir()
    for source in (REPO / "export").glob("*.py"):
        shutil.copyfile(source, export / source.name)
    code = (export / "tensorrt_build.py").read_text()
    code = code.replace("trt.MemoryPoolType.WORKSPACE,", "trt.MemoryPoolType.WORKSPACES,")
    code = code.replace("builder.create_network(_network_flags())", 'builder.create_network("strong")')
    (export / "tensorrt_build.py").write_text(code)
    errors = _mypy(tmp_path, ("ndr_edge.export.tensorrt_build",), extra_path=pkg.parent)
    assert any("WORKSPACES" in e for e in errors), errors
    assert any("create_network" in e for e in errors), errors


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


def test_sidecar_keys_are_what_the_runtime_reads(tmp_path):
    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.runtime.backend import InputLimits
    from ndr_edge.runtime.engine_sidecar import sidecar_path

    engine = tmp_path / "model-fp16.engine"
    profile = Profile()
    info = EngineSidecar(path=sidecar_path(engine), meta=ArtifactMeta(preset="ndr-edge-xs", precision="fp16"),
                         tensorrt_version="10.13.0.35", gpu_name="NVIDIA Jetson AGX Orin", compute_capability="8.7",
                         precision="fp16", profiles=(InputLimits(profile.min, profile.opt, profile.max),),
                         io=({"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},),
                         onnx_sha256="ab" * 32, extra={"build_seconds": 1.0})
    engine.write_bytes(b"plan")
    info.write()
    data = read_sidecar(engine)
    for key in ("meta", "tensorrt_version", "gpu_name", "compute_capability", "precision", "profiles", "io",
                "onnx_sha256"):
        assert key in data
    sidecar = EngineSidecar.read(engine)
    assert sidecar.meta.preset == "ndr-edge-xs" and sidecar.compute_capability == "8.7"
    assert sidecar.profiles[0].max == (4, 3, 1024, 1024)


def test_without_tensorrt_the_reason_is_one_line():
    if TRT_OK:
        pytest.skip("TensorRT and a GPU are present here")
    assert TRT_REASON and "\n" not in TRT_REASON and "TensorRT" in TRT_REASON


# -- on a GPU machine with TensorRT ---------------------------------------------------
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

    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.export.tensorrt_build import EngineBuildOptions, build_engine
    from ndr_edge.runtime.backends import open_backend

    profile = Profile((1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 128, 128))
    engine = tmp_path / "fp16.engine"
    build_engine(exported.outdir / "model-fp16.onnx", engine, "fp16", ArtifactMeta(preset="ndr-edge-xs"),
                 EngineBuildOptions(profiles=(profile,), workspace_mb=512, timing_cache=tmp_path / "t.cache"))
    run = open_backend(engine).infer  # the runtime's TensorRT backend (export/tensorrt_run.py is gone)
    assert run(np.zeros((1, 3, 64, 96), np.float32)).shape == (1, 3, 64, 96)
    with pytest.raises(InputError, match="outside"):
        run(np.zeros((2, 3, 64, 64), np.float32))
