"""TensorRT on a real GPU, with the engines this project builds: the FP16 engine ``ndr-export``
makes (its export pipeline, strongly typed from the FP16 graph, with the sidecar it writes) and
an FP32 engine from the same builder (:func:`ndr_edge.export.tensorrt_build.build_engine`).
Each runs through the same Restorer call as ONNX Runtime: agreement, the sidecar the runtime
reads, streaming (double buffering) and the profile check; the backend's own execution context
per buffer slot, and a close from another thread that frees everything while the CUDA context
is current (pycuda warns when a clean-up runs without it). Skipped, with the reason, where
TensorRT's builder, pycuda or a GPU is missing; tests/runtime/test_typing.py type-checks this
file against the TensorRT stubs and the package's signatures everywhere else."""

from __future__ import annotations

import hashlib
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from ndr_edge.errors import InputError
from ndr_edge.export.profiles import Profile
from ndr_edge.export.tensorrt_build import tensorrt_status
from ndr_edge.runtime import Restorer, TileConfig
from ndr_edge.runtime.engine_sidecar import EngineSidecar
from ndr_edge.runtime.tensorrt_backend import TensorRTBackend, TensorRTSettings, profiles_shared_across_contexts
from tests.models import untrained

TRT_OK, TRT_REASON = tensorrt_status()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not TRT_OK, reason=f"needs TensorRT and a CUDA GPU: {TRT_REASON}")]

PROFILE = Profile((1, 3, 32, 32), (1, 3, 64, 64), (4, 3, 128, 128))


def _psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ndr-export's pipeline on an ndr-edge-xs checkpoint: FP32 and FP16 graphs and the FP16
    engine (engines required, one profile), as ``ndr-export --precision fp16 --engine`` does."""
    from ndr_edge.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
    from ndr_edge.export.pipeline import ExportConfig, Exporter

    root = tmp_path_factory.mktemp("trt-export")
    save_checkpoint(root / "xs.safetensors", untrained("ndr-edge-xs", with_degradation_net=False),
                    CheckpointMeta(preset="ndr-edge-xs", config={}))
    config = ExportConfig(precisions=("fp32", "fp16"), engines="require", profiles=(PROFILE,),
                          fp16_converters=("onnxconverter",), verify_sizes=((64, 64), (64, 96)), verify_per_size=2,
                          progress=False)
    manifest = Exporter(load_checkpoint(root / "xs.safetensors"), root / "out", config).run()
    assert [a.name for a in manifest.artifacts if a.format == "engine"] == ["engine-fp16"]
    return root / "out"


@pytest.fixture(scope="module")
def fp16_engine(export_dir: Path) -> Path:
    return export_dir / "model-fp16.engine"


@pytest.fixture(scope="module")
def fp32_engine(export_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An FP32 engine of the same checkpoint, from the project's builder and sidecar writer."""
    from ndr_edge.export.onnx_export import read_meta
    from ndr_edge.export.tensorrt_build import EngineBuildOptions, build_engine

    onnx_path = export_dir / "model-fp32.onnx"
    engine = tmp_path_factory.mktemp("trt-fp32") / "model-fp32.engine"
    sidecar = build_engine(onnx_path, engine, "fp32", read_meta(onnx_path),
                           EngineBuildOptions(workspace_mb=512, profiles=(PROFILE,),
                                              timing_cache=export_dir / "timing.cache"))
    assert sidecar.path.is_file() and engine.stat().st_size > 0
    return engine


def test_the_sidecar_records_what_the_engine_was_built_from_and_for(fp16_engine: Path, export_dir: Path) -> None:
    import pycuda.driver as cuda
    import tensorrt as trt

    cuda.init()
    major, minor = cuda.Device(0).compute_capability()
    sidecar = EngineSidecar.read(fp16_engine)  # what the runtime reads
    assert sidecar.precision == "fp16" and sidecar.meta.precision == "fp16" and sidecar.meta.preset == "ndr-edge-xs"
    assert sidecar.meta.channel_order == "BGR"
    assert sidecar.onnx_sha256 == hashlib.sha256((export_dir / "model-fp16.onnx").read_bytes()).hexdigest()
    assert sidecar.tensorrt_version == trt.__version__ and sidecar.compute_capability == f"{major}.{minor}"
    assert [(p.min, p.opt, p.max) for p in sidecar.profiles] == [(PROFILE.min, PROFILE.opt, PROFILE.max)]
    # the strongly typed FP16 graph keeps float32 input and output
    assert [(t["name"], t["mode"], t["dtype"]) for t in sidecar.io] == [("input", "input", "float32"),
                                                                        ("output", "output", "float32")]


def test_same_call_same_result_as_onnxruntime(fp32_engine: Path, fp16_engine: Path, export_dir: Path,
                                              rng: np.random.Generator) -> None:
    frame = rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)
    with Restorer.open(export_dir / "model-fp32.onnx", providers=["cpu"]) as ort_restorer:
        want = ort_restorer.restore(frame, channel_order="RGB")
    with Restorer.open(fp32_engine) as trt_restorer:
        assert trt_restorer.backend.name == "tensorrt"
        got = trt_restorer.restore(frame, channel_order="RGB")
    assert got.shape == want.shape and np.abs(got.astype(int) - want.astype(int)).max() <= 2
    with Restorer.open(fp16_engine) as trt_restorer:  # the engine ndr-export built
        half = trt_restorer.restore(frame, channel_order="RGB")
    assert half.shape == want.shape and _psnr_u8(half, want) >= 40.0


def test_streaming_double_buffered_keeps_order(fp16_engine: Path, rng: np.random.Generator) -> None:
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(12)]
    with Restorer.open(fp16_engine) as restorer:
        expected = [restorer.restore(f) for f in frames]
        with restorer.stream(depth=2) as stream:
            got = list(stream.run(frames))
        assert stream.stats().frames == 12
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_out_of_profile_is_refused_and_tiles_fit(fp16_engine: Path, rng: np.random.Generator) -> None:
    with Restorer.open(fp16_engine) as restorer:
        assert restorer.tiling.tile <= 128
        with pytest.raises(InputError, match="outside the engine's profile"):
            restorer.restore(np.zeros((16, 16, 3), np.uint8), tile=False)  # below min 32x32
        big = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
        assert restorer.restore(big).shape == big.shape  # tiled inside the profile
        with pytest.raises(InputError, match="do not fit"):
            restorer.restore(big, tile=TileConfig(256, 32, 1))


def _model_batch(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    return rng.random((n, 3, h, w), dtype=np.float32)


def test_each_slot_has_its_own_execution_context_and_batches_overlap_correctly(fp16_engine: Path,
                                                                              rng: np.random.Generator) -> None:
    """Two batches of different shapes enqueued back to back, each on its slot's execution
    context (TensorRT 10 shares the one profile between them): the same outputs as one at a time."""
    import tensorrt as trt

    batches = [_model_batch(rng, 1, 64, 64), _model_batch(rng, 2, 32, 96), _model_batch(rng, 1, 128, 64),
               _model_batch(rng, 4, 32, 32)]
    with TensorRTBackend(fp16_engine, TensorRTSettings(slots=2)) as backend:
        assert backend.contexts == (2 if profiles_shared_across_contexts(str(trt.__version__)) else 1)
        one_at_a_time = [backend.infer(b) for b in batches]
        pending = [backend.submit(batches[0]), backend.submit(batches[1])]
        got = []
        for b in batches[2:]:
            got.append(pending.pop(0).result())
            pending.append(backend.submit(b))
        got += [p.result() for p in pending]
    for a, b in zip(got, one_at_a_time):
        np.testing.assert_array_equal(a, b)


def test_close_from_another_thread_frees_everything_in_the_context(fp16_engine: Path, rng: np.random.Generator) -> None:
    """pycuda warns "a clean-up operation failed (dead context maybe?)" when a stream, event or
    buffer is destroyed after its context was detached or from a thread where it is not current:
    a close from another thread with a batch in flight gives no such warning, keeps the result,
    and a new backend opens and runs after it."""
    batch = _model_batch(rng, 2, 64, 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = TensorRTBackend(fp16_engine)
        want = backend.infer(batch)
        pending = backend.submit(batch)
        errors: list[BaseException] = []

        def close() -> None:
            try:
                backend.close()
            except BaseException as exc:  # noqa: BLE001 -- reported in the test's thread
                errors.append(exc)

        closer = threading.Thread(target=close)
        closer.start()
        closer.join()
        assert errors == [] and backend.closed
        np.testing.assert_array_equal(pending.result(), want)
        with TensorRTBackend(fp16_engine) as again:
            np.testing.assert_array_equal(again.infer(batch), want)
    cleanup = [str(w.message) for w in caught
               if any(word in str(w.message) for word in ("clean-up", "dead context", "out-of-thread"))]
    assert cleanup == []
