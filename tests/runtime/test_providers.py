"""ONNX Runtime provider resolution (README, Runtime: "CUDA provider when installed, then CPU;
providers=["tensorrt", "cuda", "cpu"] to use ORT's TensorRT provider"): the default order,
the short names, and a provider that is not installed as an error naming what is."""

from __future__ import annotations

import pytest

from ndr_edge.errors import BackendUnavailableError
from ndr_edge.runtime.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeSettings, resolve_providers

GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_default_is_cuda_then_cpu_never_tensorrt() -> None:
    assert resolve_providers(None, GPU) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers([], GPU) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(None, ["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    # neither CUDA nor CPU: the first one installed
    assert resolve_providers(None, ["OpenVINOExecutionProvider", "DmlExecutionProvider"]) == ["OpenVINOExecutionProvider"]


def test_short_and_full_names_in_the_given_order() -> None:
    assert resolve_providers(["tensorrt", "cuda", "cpu"], GPU) == GPU
    assert resolve_providers(("trt", " CPU "), GPU) == ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(["cpu", "cuda"], GPU) == ["CPUExecutionProvider", "CUDAExecutionProvider"]
    assert resolve_providers(["CUDAExecutionProvider", "cuda", "cpu"], GPU) == GPU[1:]  # duplicates once


def test_a_missing_provider_names_the_installed_ones() -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        resolve_providers(["cpu", "cuda"], ["AzureExecutionProvider", "CPUExecutionProvider"])
    assert str(caught.value) == ("ONNX Runtime provider 'cuda' is not available here (available: "
                                 "AzureExecutionProvider, CPUExecutionProvider); install onnxruntime-gpu for "
                                 "CUDA/TensorRT or choose one of those")


def test_the_session_runs_on_the_resolved_providers(tiny_model) -> None:
    import onnxruntime as ort

    available = ort.get_available_providers()
    backend = OnnxRuntimeBackend(tiny_model("identity"), OnnxRuntimeSettings(providers=("cpu",)))
    assert backend.providers == ["CPUExecutionProvider"] and "[CPU]" in backend.describe()
    default = OnnxRuntimeBackend(tiny_model("identity"))
    assert default.providers == resolve_providers(None, available)
    if "CUDAExecutionProvider" not in available:
        with pytest.raises(BackendUnavailableError, match="'cuda' is not available here"):
            OnnxRuntimeBackend(tiny_model("identity"), OnnxRuntimeSettings(providers=("cuda", "cpu")))


def test_ndr_restore_providers_option(tiny_model, tmp_path) -> None:
    import numpy as np
    import onnxruntime as ort
    from click.testing import CliRunner

    from ndr_edge.imageio import write_image
    from ndr_edge.runtime.cli import main

    image = tmp_path / "in.png"
    write_image(image, np.full((16, 16, 3), 100, np.uint8))
    ok = CliRunner().invoke(main, [str(tiny_model("identity")), str(image), "-o", str(tmp_path / "out.png"),
                                   "--providers", "cpu", "--quiet"])
    assert ok.exit_code == 0, ok.output
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider installed: the error case needs a machine without it")
    bad = CliRunner().invoke(main, [str(tiny_model("identity")), str(image), "-o", str(tmp_path / "x.png"),
                                    "--providers", "cuda,cpu"])
    assert bad.exit_code != 0
    lines = bad.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ndr-restore: error: ONNX Runtime provider 'cuda' is not available")
    assert not (tmp_path / "x.png").exists()
