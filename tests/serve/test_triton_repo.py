"""The Triton model repository written from an export folder: layout, every config.pbtxt
parsed by Triton's own ModelConfig protobuf, metadata in the parameters, engines for two
GPUs behind cc_model_filenames, atomic replacement, and the ndr-triton-repo command. Loading
the repository into a real tritonserver needs Triton's onnxruntime backend (NVIDIA's
container): that test skips with the reason elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.runtime.serve_cli import repo_main
from ndr_edge.runtime.triton_repo import (
    INDEX_NAME,
    TritonRepoSettings,
    docker_command,
    meta_from_parameters,
    plan_repository,
    validate_config,
    write_repository,
)
from tests.serve.conftest import free_ports, make_export

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is needed to parse configs (ndr-edge[remote])")


def _parse(path: Path):
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    config = model_config_pb2.ModelConfig()
    text_format.Parse(path.read_text(), config)
    return config, json_format.MessageToDict(config, preserving_proto_field_name=True)


def test_repository_layout_and_configs_parse(export_dir: Path) -> None:
    repo = write_repository(export_dir)
    root = export_dir / "triton"
    assert repo.path == root and repo.validated
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert names == ["ndr-engine-fp16", "ndr-onnx-fp16", "ndr-onnx-fp32", "ndr-onnx-int8"]
    index = json.loads((root / INDEX_NAME).read_text())
    assert [m["name"] for m in index["models"]] == [m.name for m in repo.models]
    for name in names:
        config, data = _parse(root / name / "config.pbtxt")
        assert config.name == name
        assert data["input"][0]["dims"] == ["3", "-1", "-1"] and data["output"][0]["dims"] == ["3", "-1", "-1"]
        assert config.input[0].name == "input" and config.output[0].name == "output"
        assert config.max_batch_size >= 2 and config.dynamic_batching.max_queue_delay_microseconds == 2000
        assert list(config.dynamic_batching.preferred_batch_size) and config.instance_group[0].count == 1
        assert config.model_warmup[0].batch_size == 1 and config.model_warmup[0].inputs["input"].zero_data
        meta = meta_from_parameters(data["parameters"], source=name)
        assert meta.channel_order == "BGR" and meta.size_multiple == 8 and tuple(meta.value_range) == (0.0, 1.0)
        # the files Triton loads are the export's, byte for byte
        for file in (root / name / "1").iterdir():
            assert file.stat().st_size > 0
    onnx = _parse(root / "ndr-onnx-fp32" / "config.pbtxt")[0]
    assert onnx.backend == "onnxruntime" and onnx.instance_group[0].kind == onnx.instance_group[0].KIND_GPU
    assert (root / "ndr-onnx-fp32" / "1" / "model.onnx").read_bytes() == (export_dir / "model-fp32.onnx").read_bytes()
    assert onnx.model_warmup[0].inputs["input"].dims == [3, 256, 256]


def test_onnx_accelerator_follows_the_graph_precision(export_dir: Path) -> None:
    write_repository(export_dir)
    modes = {}
    for precision in ("fp32", "fp16", "int8"):
        config, _ = _parse(export_dir / "triton" / f"ndr-onnx-{precision}" / "config.pbtxt")
        (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
        assert accelerator.name == "tensorrt"
        modes[precision] = accelerator.parameters["precision_mode"]
        assert accelerator.parameters["trt_profile_max_shapes"] == "input:8x3x2048x2048"
    assert modes == {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}
    cuda = plan_repository(export_dir, TritonRepoSettings(onnx_accelerator="cuda", variants=("onnx-fp16",)))[0]
    assert 'name: "cuda"' in cuda.config
    cpu = plan_repository(export_dir, TritonRepoSettings(kind="cpu", variants=("onnx-fp32",)))[0]
    assert "KIND_CPU" in cpu.config and "execution_accelerators" not in cpu.config
    validate_config(cpu.config, "ndr-onnx-fp32")


def test_engines_for_two_gpus_use_cc_model_filenames(export_dir: Path) -> None:
    write_repository(export_dir, settings=TritonRepoSettings(max_batch_size=16))
    model = export_dir / "triton" / "ndr-engine-fp16"
    config, data = _parse(model / "config.pbtxt")
    assert config.backend == "tensorrt" and not config.default_model_filename
    assert dict(config.cc_model_filenames) == {"8.7": "model-sm87.plan", "8.9": "model-sm89.plan"}
    assert (model / "1" / "model-sm87.plan").read_bytes() == (export_dir / "model-fp16.engine").read_bytes()
    assert (model / "1" / "model-sm89.plan").read_bytes().endswith(b"8.9")
    assert config.max_batch_size == 4  # capped at the engine profile's max batch
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    assert config.model_warmup[0].inputs["input"].dims == [3, 256, 320]  # the profile's opt shape
    assert json.loads(data["parameters"]["ndr_edge.gpus"]["string_value"]) == {"8.7": "Orin", "8.9": "NVIDIA L4"}


def test_one_engine_is_the_default_model_file(tmp_path: Path) -> None:
    directory = make_export(tmp_path / "export")
    shutil.rmtree(directory / "engines")
    write_repository(directory)
    config, _ = _parse(directory / "triton" / "ndr-engine-fp16" / "config.pbtxt")
    assert config.default_model_filename == "model.plan" and not config.cc_model_filenames
    assert (directory / "triton" / "ndr-engine-fp16" / "1" / "model.plan").is_file()


def test_variants_prefix_and_output_folder(export_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    repo = write_repository(export_dir, out, TritonRepoSettings(prefix="cam", variants=("onnx-fp16",), instances=3,
                                                                warmup=None, link=False))
    assert [m.name for m in repo.models] == ["cam-onnx-fp16"]
    config, _ = _parse(out / "cam-onnx-fp16" / "config.pbtxt")
    assert config.instance_group[0].count == 3 and not config.model_warmup
    with pytest.raises(InputError, match="no variant onnx-fp64"):
        write_repository(export_dir, out, TritonRepoSettings(variants=("onnx-fp64",)))


def test_rewrite_replaces_only_its_own_repository(export_dir: Path, tmp_path: Path) -> None:
    write_repository(export_dir)
    stale = export_dir / "triton" / "old-model"
    stale.mkdir()
    write_repository(export_dir, settings=TritonRepoSettings(variants=("onnx-fp32",)))
    assert sorted(p.name for p in (export_dir / "triton").iterdir()) == sorted([INDEX_NAME, "ndr-onnx-fp32"])
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not a repository ndr-edge wrote"):
        write_repository(export_dir, foreign)
    assert (foreign / "keep.txt").read_text() == "x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_missing_manifest_and_broken_configs_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no export manifest"):
        write_repository(tmp_path / "empty")
    with pytest.raises(ArtifactError, match="not a valid Triton model config"):
        validate_config('name: "x" backend: "onnxruntime" max_batch_size: 8 input [ { name: "input" dims: [3, -1 }', "x")
    with pytest.raises(ArtifactError, match="folder name"):
        validate_config('name: "x" backend: "onnxruntime" input [{name: "i" data_type: TYPE_FP32 dims: [3]}] '
                        'output [{name: "o" data_type: TYPE_FP32 dims: [3]}]', "y")
    with pytest.raises(ArtifactError, match="preferred batch size 16"):
        validate_config('name: "x" backend: "onnxruntime" max_batch_size: 8 dynamic_batching { preferred_batch_size: '
                        '[16] } input [{name: "i" data_type: TYPE_FP32 dims: [3]}] output [{name: "o" data_type: '
                        'TYPE_FP32 dims: [3]}]', "x")
    with pytest.raises(InputError, match="preferred batch sizes"):
        TritonRepoSettings(max_batch_size=4, preferred_batch_sizes=(8,)).validate()


def test_cli_writes_the_repository_and_prints_the_docker_line(export_dir: Path, tmp_path: Path) -> None:
    summary = tmp_path / "repo.json"
    result = CliRunner().invoke(repo_main, [str(export_dir), "--variants", "onnx-fp32,engine-fp16", "--json",
                                            str(summary)])
    assert result.exit_code == 0, result.output
    assert "2 model(s)" in result.output and "docker run --rm --gpus all" in result.output
    assert f"-v {(export_dir / 'triton').resolve()}:/models:ro" in result.output
    data = json.loads(summary.read_text())
    assert [m["name"] for m in data["models"]] == ["ndr-onnx-fp32", "ndr-engine-fp16"]
    assert data["docker"] == docker_command(export_dir / "triton", "24.12")


def test_cli_one_line_error_without_a_manifest(tmp_path: Path) -> None:
    result = CliRunner().invoke(repo_main, [str(tmp_path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ndr-triton-repo: error:") and "manifest" in lines[0]


def _tritonserver_with_onnxruntime() -> tuple[str, str] | None:
    binary = shutil.which("tritonserver")
    for backends in (os.environ.get("TRITON_BACKENDS_DIR"), "/opt/tritonserver/backends"):
        if binary and backends and (Path(backends) / "onnxruntime").is_dir():
            return binary, backends
    return None


def test_repository_loads_in_a_real_tritonserver(export_dir: Path, rng: np.random.Generator) -> None:
    """Runs inside NVIDIA's Triton container (tritonserver with its onnxruntime backend)."""
    found = _tritonserver_with_onnxruntime()
    if found is None:
        pytest.skip("needs tritonserver with Triton's onnxruntime backend (NVIDIA's container, "
                    "nvcr.io/nvidia/tritonserver:<release>-py3); PyTriton's bundled server has only the Python backend")
    binary, backends = found
    import tritonclient.grpc as grpcclient

    write_repository(export_dir, settings=TritonRepoSettings(kind="cpu", variants=("onnx-fp32",)))
    http, grpc, metrics = free_ports(3)
    proc = subprocess.Popen([binary, f"--model-repository={export_dir / 'triton'}", f"--backend-directory={backends}",
                             f"--http-port={http}", f"--grpc-port={grpc}", f"--metrics-port={metrics}",
                             "--http-address=127.0.0.1", "--grpc-address=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # not up yet
                if client.is_model_ready("ndr-onnx-fp32"):
                    break
            assert proc.poll() is None, "tritonserver exited"
            time.sleep(0.5)
        batch = rng.random((2, 3, 16, 24)).astype(np.float32)
        tensor = grpcclient.InferInput("input", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        out = client.infer("ndr-onnx-fp32", [tensor], client_timeout=30).as_numpy("output")
        from tests.runtime.conftest import MIX

        np.testing.assert_allclose(out, np.einsum("oc,nchw->nohw", MIX, batch), atol=1e-5)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_onnx_io_is_read_with_onnxruntime_without_the_onnx_package(export_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with_onnx = [m.config for m in plan_repository(export_dir)]
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError: the torch-free runtime's case
    assert [m.config for m in plan_repository(export_dir)] == with_onnx
