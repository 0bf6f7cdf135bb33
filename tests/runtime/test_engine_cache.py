"""The engine cache (runtime/engine_cache.py) with a fake builder: keys, reuse, rebuilds,
concurrent first runs, bad input. The real builder runs where TensorRT and a GPU exist
(tests/runtime/test_tensorrt_gpu.py); everything here is the logic around it."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from ndr_edge.artifact import ArtifactEntry, ArtifactMeta, Manifest, atomic_write_bytes, sha256_file
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.profiles import Profile
from ndr_edge.export.variants import BY_NAME
from ndr_edge.runtime.engine_cache import (
    EngineCacheConfig,
    MachineFacts,
    build_export_engines,
    cached_engine_path,
    engine_for_manifest,
    engine_key,
    ensure_engine,
)
from ndr_edge.runtime.engine_sidecar import EngineSidecar, sidecar_path
from tests.runtime.conftest import build_tiny

FACTS = MachineFacts("10.3.0", "Orin", "8.7")
META = ArtifactMeta(preset="tiny-mix", channel_order="BGR", precision="fp16")


def fake_build(log: Path | None = None, delay: float = 0.0, fail: bool = False):
    """A builder with build_engine's signature: writes a plan and its sidecar like the real
    one (atomically), appends one line to ``log`` per build."""

    def build(onnx_path, engine_path, precision, meta, options, extra=None, progress=None):
        if log is not None:
            with open(log, "a") as handle:
                handle.write(f"{engine_path.name}\n")
        time.sleep(delay)
        if fail:
            raise RuntimeError("builder crashed")
        plan = b"PLAN" + onnx_path.read_bytes()[:64] + precision.encode()
        sidecar = EngineSidecar(path=sidecar_path(engine_path), meta=meta, tensorrt_version=FACTS.tensorrt_version,
                                gpu_name=FACTS.gpu_name, compute_capability=FACTS.compute_capability,
                                precision=precision, profiles=tuple(options.profiles), onnx_sha256=sha256_file(onnx_path),
                                extra={"engine_bytes": len(plan), **(extra or {})})
        atomic_write_bytes(engine_path, plan)
        sidecar.write()
        return sidecar

    return build


def quiet(_: str) -> None:
    pass


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    return build_tiny("mix", tmp_path / "model-fp16.onnx")


def test_every_part_of_the_key_changes_the_cached_file(onnx_file, tmp_path):
    config = EngineCacheConfig()
    base = engine_key(onnx_file, "fp16", config, FACTS)
    other_onnx = build_tiny("blur", tmp_path / "other.onnx")
    variants = [
        engine_key(other_onnx, "fp16", config, FACTS),
        engine_key(onnx_file, "int8", config, FACTS),
        engine_key(onnx_file, "fp16", EngineCacheConfig(profiles=(Profile(max=(2, 3, 512, 512)),)), FACTS),
        engine_key(onnx_file, "fp16", EngineCacheConfig(workspace_mb=1024), FACTS),
        engine_key(onnx_file, "fp16", config, replace(FACTS, tensorrt_version="10.13.0")),
        engine_key(onnx_file, "fp16", config, replace(FACTS, gpu_name="RTX 4090")),
        engine_key(onnx_file, "fp16", config, replace(FACTS, compute_capability="8.9")),
    ]
    digests = {base.digest, *(k.digest for k in variants)}
    assert len(digests) == 1 + len(variants)
    assert engine_key(onnx_file, "fp16", config, FACTS).digest == base.digest  # stable
    assert base.onnx_sha256 == sha256_file(onnx_file)


def test_first_call_builds_second_loads_and_the_sidecar_records_the_key(onnx_file, tmp_path):
    log = tmp_path / "builds.log"
    first = ensure_engine(onnx_file, "fp16", META, facts=FACTS, build=fake_build(log), progress=quiet)
    second = ensure_engine(onnx_file, "fp16", META, facts=FACTS, build=fake_build(log), progress=quiet)
    assert first.built and not second.built
    assert first.engine == second.engine and first.engine.parent == onnx_file.parent / "engines"
    assert log.read_text().count("\n") == 1
    key = engine_key(onnx_file, "fp16", EngineCacheConfig(), FACTS)
    assert EngineSidecar.read(second.engine).extra["cache_key"] == key.to_dict()
    assert first.engine == cached_engine_path(onnx_file.parent / "engines", onnx_file, key)


def test_a_changed_key_rebuilds_beside_the_old_engine(onnx_file, tmp_path):
    log = tmp_path / "builds.log"
    old = ensure_engine(onnx_file, "fp16", META, facts=FACTS, build=fake_build(log), progress=quiet)
    new = ensure_engine(onnx_file, "fp16", META, facts=replace(FACTS, tensorrt_version="10.13.0"),
                        build=fake_build(log), progress=quiet)
    assert new.built and new.engine != old.engine and old.engine.is_file()
    assert log.read_text().count("\n") == 2


def test_a_truncated_engine_is_rebuilt_with_a_note(onnx_file, tmp_path):
    built = ensure_engine(onnx_file, "fp16", META, facts=FACTS, build=fake_build(), progress=quiet)
    built.engine.write_bytes(built.engine.read_bytes()[:5])
    lines: list[str] = []
    again = ensure_engine(onnx_file, "fp16", META, facts=FACTS, build=fake_build(), progress=lines.append)
    assert again.built and "truncated" in " ".join(again.notes)
    assert any("rebuilding" in line for line in lines)
    assert again.engine.stat().st_size == again.sidecar.extra["engine_bytes"]


def test_a_failed_build_leaves_no_engine_and_the_next_run_builds(onnx_file, tmp_path):
    with pytest.raises(RuntimeError):
        ensure_engine(onnx_file, "fp16", META, facts=FACTS, build=fake_build(fail=True), progress=quiet)
    folder = onnx_file.parent / "engines"
    assert not list(folder.glob("*.engine")) and not list(folder.glob("*.engine.json"))
    assert ensure_engine(onnx_file, "fp16", META, facts=FACTS, build=fake_build(), progress=quiet).built


def _worker(onnx: str, log: str, out: str) -> None:
    result = ensure_engine(Path(onnx), "fp16", META, facts=FACTS, build=fake_build(Path(log), delay=1.0),
                           progress=quiet)
    Path(out).write_text(f"{result.engine}|{result.built}")


def test_concurrent_first_runs_in_two_processes_build_once(onnx_file, tmp_path):
    log = tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(onnx_file), str(log), str(tmp_path / f"out{i}")))
             for i in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    results = [(tmp_path / f"out{i}").read_text().split("|") for i in range(2)]
    assert log.read_text().count("\n") == 1  # one process built, the other waited and loaded
    assert results[0][0] == results[1][0]
    assert sorted(r[1] for r in results) == ["False", "True"]


def test_a_cache_folder_that_cannot_be_made_is_a_one_line_error(onnx_file, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="--engine-cache"):
        ensure_engine(onnx_file, "fp16", META, EngineCacheConfig(folder=blocker / "engines"), facts=FACTS,
                      build=fake_build(), progress=quiet)


def test_a_profile_the_model_cannot_take_fails_before_building(onnx_file, tmp_path):
    log = tmp_path / "builds.log"
    with pytest.raises(InputError, match="multiples of 8"):
        ensure_engine(onnx_file, "fp16", META, EngineCacheConfig(profiles=(Profile(max=(1, 3, 100, 100)),)),
                      facts=FACTS, build=fake_build(log), progress=quiet)
    assert not log.exists()


def _export_folder(tmp_path: Path, names: tuple[str, ...]) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    entries = []
    for name in names:
        precision = BY_NAME[name].precision
        path = build_tiny("mix", folder / BY_NAME[name].filename, replace(META, precision=precision))
        entries.append(ArtifactEntry(name, "onnx", precision, path.name, sha256_file(path)))
    Manifest(source={"preset": "tiny-mix"}, artifacts=entries).write(folder)
    return folder


def test_an_export_folder_builds_each_engine_its_graphs_allow(tmp_path):
    folder = _export_folder(tmp_path, ("onnx-fp32", "onnx-fp16", "onnx-int8", "onnx-int8-trt"))
    results = build_export_engines(folder, facts=FACTS, build=fake_build(), progress=quiet)
    assert [r.sidecar.precision for r in results] == ["fp16", "int8"]
    assert all(r.engine.parent == folder / "engines" for r in results)
    assert results[0].sidecar.meta.preset == "tiny-mix"  # read from the ONNX's metadata
    moved = tmp_path / "copied"
    shutil.copytree(folder, moved)  # a folder copied elsewhere still finds its cache
    assert not engine_for_manifest(moved, "fp16", facts=FACTS, build=fake_build(), progress=quiet).built


def test_an_export_without_the_source_graph_names_the_fix(tmp_path):
    folder = _export_folder(tmp_path, ("onnx-fp32",))
    with pytest.raises(ArtifactError, match="--precision fp16"):
        engine_for_manifest(folder, "fp16", facts=FACTS, build=fake_build(), progress=quiet)
    with pytest.raises(ArtifactError, match="no FP16 or INT8 ONNX graph"):
        build_export_engines(folder, facts=FACTS, build=fake_build(), progress=quiet)
    # the CPU INT8 graph alone (an export from before onnx-int8-trt): the INT8 engine needs the TensorRT graph
    (tmp_path / "older").mkdir()
    older = _export_folder(tmp_path / "older", ("onnx-fp32", "onnx-int8"))
    with pytest.raises(ArtifactError, match="no onnx-int8-trt graph.*--precision int8"):
        engine_for_manifest(older, "int8", facts=FACTS, build=fake_build(), progress=quiet)


def test_ndr_build_without_tensorrt_is_a_one_line_error(tmp_path):
    pytest.importorskip("onnx")
    from ndr_edge.runtime.build_cli import main
    from ndr_edge.runtime.tensorrt_env import tensorrt_unavailable_reason

    if tensorrt_unavailable_reason(build=True) is None:
        pytest.skip("TensorRT can build here: the GPU tests cover ndr-build")
    folder = _export_folder(tmp_path, ("onnx-fp32", "onnx-fp16"))
    result = CliRunner().invoke(main, [str(folder)])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ndr-build: error:") and "TensorRT" in lines[0]
    assert not (folder / "engines").exists() or not list((folder / "engines").glob("*.engine"))


def test_ndr_build_help_lists_the_profile_and_cache_options():
    from ndr_edge.runtime.build_cli import main

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for flag in ("--precision", "--min", "--opt", "--max", "--workspace-mb", "--engine-cache"):
        assert flag in result.output


@pytest.fixture
def simulated_tensorrt(monkeypatch, tmp_path):
    """TensorRT 'present' (the checks pass, the builder is the fake one): what the runtime
    does around the builder, on a machine without TensorRT."""
    from ndr_edge.export import tensorrt_build
    from ndr_edge.runtime import engine_cache, restorer

    log = tmp_path / "builds.log"
    monkeypatch.setattr(restorer, "require_tensorrt", lambda *a, **k: None)
    monkeypatch.setattr(engine_cache, "machine_facts", lambda device=0: FACTS)
    monkeypatch.setattr(tensorrt_build, "build_engine", fake_build(log))
    return log


def test_restorer_selection_builds_the_engine_of_a_copied_export_once(simulated_tensorrt, tmp_path):
    from ndr_edge.runtime.restorer import select_artifact

    folder = _export_folder(tmp_path, ("onnx-fp32", "onnx-fp16", "onnx-int8", "onnx-int8-trt"))
    first = select_artifact(folder, backend="tensorrt", precision="int8")
    second = select_artifact(folder, backend="tensorrt", precision="int8")
    assert first.backend == second.backend == "tensorrt" and first.path == second.path
    assert first.path.parent == folder / "engines" and first.path.suffix == ".engine"
    assert EngineSidecar.read(first.path).extra["source_onnx"] == "model-int8-trt.onnx"  # FP16 compute outside Q/DQ
    assert simulated_tensorrt.read_text().count("\n") == 1
    with pytest.raises(ArtifactError, match="--precision fp16 or int8"):
        select_artifact(folder, backend="tensorrt", precision="fp32")


def test_restorer_selection_builds_from_a_bare_onnx_file(simulated_tensorrt, tmp_path):
    from ndr_edge.runtime.restorer import select_artifact

    onnx = build_tiny("mix", tmp_path / "model.onnx", META)
    cache = EngineCacheConfig(folder=tmp_path / "cache")
    chosen = select_artifact(onnx, backend="tensorrt", engine_cache=cache)
    assert chosen.path.parent == tmp_path / "cache" and chosen.precision == "fp16"


def test_ndr_restore_build_only_needs_the_tensorrt_backend(tmp_path):
    from ndr_edge.runtime.cli import main

    folder = _export_folder(tmp_path, ("onnx-fp32", "onnx-fp16"))
    result = CliRunner().invoke(main, [str(folder), "--build-only", "--precision", "fp16"])
    assert result.exit_code != 0 and "--backend tensorrt" in result.output
