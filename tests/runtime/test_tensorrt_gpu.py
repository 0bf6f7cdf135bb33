"""TensorRT on a real GPU: build a small engine from the NDR graph, run it through the same
Restorer call as ONNX Runtime, check agreement, streaming (double buffering) and the profile
check. Skipped, with the reason, where TensorRT, pycuda or a GPU is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ndr_edge.errors import InputError
from ndr_edge.runtime import Restorer, TileConfig
from ndr_edge.runtime.tensorrt_backend import tensorrt_unavailable_reason

REASON = tensorrt_unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"TensorRT backend unavailable: {REASON}")]

PROFILE = {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64], "max": [4, 3, 128, 128]}


@pytest.fixture(scope="module")
def engine(ndr_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnxruntime as ort
    import pycuda.driver as cuda
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(ndr_onnx.read_bytes()), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", PROFILE["min"], PROFILE["opt"], PROFILE["max"])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None
    path = tmp_path_factory.mktemp("engine") / "ndr-edge-xs.engine"
    path.write_bytes(bytes(serialized))
    cuda.init()
    device = cuda.Device(0)
    major, minor = device.compute_capability()
    meta = ort.InferenceSession(str(ndr_onnx), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    sidecar = {
        "meta": {k.removeprefix("ndr_edge."): json.loads(v) for k, v in meta.items() if k.startswith("ndr_edge.")},
        "tensorrt_version": trt.__version__, "gpu_name": device.name(), "compute_capability": f"{major}.{minor}",
        "precision": "fp32", "profiles": [PROFILE], "io": [], "onnx_sha256": "",
    }
    path.with_name(path.name + ".json").write_text(json.dumps(sidecar))
    return path


def test_same_call_same_result_as_onnxruntime(engine: Path, ndr_onnx: Path, rng) -> None:
    frame = rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)
    with Restorer.open(engine) as trt_restorer, Restorer.open(ndr_onnx, providers=["cpu"]) as ort_restorer:
        assert trt_restorer.backend.name == "tensorrt"
        got = trt_restorer.restore(frame, channel_order="RGB")
        want = ort_restorer.restore(frame, channel_order="RGB")
    assert got.shape == want.shape and np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_streaming_double_buffered_keeps_order(engine: Path, rng) -> None:
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(12)]
    with Restorer.open(engine) as restorer:
        expected = [restorer.restore(f) for f in frames]
        with restorer.stream(depth=2) as stream:
            got = list(stream.run(frames))
        assert stream.stats().frames == 12
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_out_of_profile_is_refused_and_tiles_fit(engine: Path, rng) -> None:
    with Restorer.open(engine) as restorer:
        assert restorer.tiling.tile <= 128
        with pytest.raises(InputError, match="outside the engine's profile"):
            restorer.restore(np.zeros((16, 16, 3), np.uint8), tile=False)  # below min 32x32
        big = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
        assert restorer.restore(big).shape == big.shape  # tiled inside the profile
        with pytest.raises(InputError, match="do not fit"):
            restorer.restore(big, tile=TileConfig(256, 32, 1))
