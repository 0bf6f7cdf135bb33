"""Restorer: channel order, dtypes, value range, padding, artifact selection and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from ndr_edge.artifact import ArtifactEntry, ArtifactMeta, Manifest, sha256_file
from ndr_edge.errors import ArtifactError, BackendUnavailableError, InputError
from ndr_edge.runtime import BackendClosedError, Restorer, select_artifact
from ndr_edge.runtime.tensorrt_backend import tensorrt_unavailable_reason

from .conftest import MIX, build_tiny

NO_TRT = tensorrt_unavailable_reason()
PadMode = Literal["reflect", "edge", "symmetric", "constant"]


def _mix_reference_rgb(rgb: np.ndarray) -> np.ndarray:
    """What the BGR 'mix' model does to an RGB uint8 frame, computed by hand."""
    bgr = rgb[..., ::-1].astype(np.float32) / 255.0
    mixed = np.einsum("oc,hwc->hwo", MIX, bgr)
    return mixed[..., ::-1]


def test_channel_order_rgb_and_bgr_give_the_same_picture(tiny_model, rng) -> None:
    rgb = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    with Restorer.open(tiny_model("mix")) as restorer:
        assert restorer.meta.channel_order == "BGR"
        out_rgb = restorer.restore(rgb, channel_order="RGB")
        out_bgr = restorer.restore(np.ascontiguousarray(rgb[..., ::-1]), channel_order="BGR")
    np.testing.assert_array_equal(out_bgr[..., ::-1], out_rgb)
    expected = (np.clip(_mix_reference_rgb(rgb), 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(out_rgb.astype(int) - expected).max() <= 1
    # Feeding RGB while saying BGR is a different picture: the order matters.
    wrong = Restorer.open(tiny_model("mix")).restore(rgb, channel_order="BGR")
    assert np.abs(wrong.astype(int) - out_rgb).max() > 10


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_output_has_the_input_dtype_and_shape(tiny_model, rng, dtype) -> None:
    unit = rng.random((21, 35, 3))
    frame = (unit * np.iinfo(dtype).max).round().astype(dtype) if np.issubdtype(dtype, np.integer) else unit.astype(dtype)
    with Restorer.open(tiny_model("identity")) as restorer:
        out = restorer.restore(frame)
    assert out.dtype == frame.dtype and out.shape == frame.shape
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(out, frame)
    else:
        np.testing.assert_allclose(out, frame, atol=1e-6)


def test_float_in_float_out_matches_uint8_path(tiny_model, rng) -> None:
    frame = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with Restorer.open(tiny_model("mix")) as restorer:
        as_float = restorer.restore(frame.astype(np.float32) / 255.0)
        as_uint8 = restorer.restore(frame)
    assert as_float.dtype == np.float32
    assert np.abs((as_float * 255 + 0.5).astype(np.uint8).astype(int) - as_uint8).max() == 0


def test_value_range_from_metadata(tiny_model) -> None:
    frame = np.full((8, 8, 3), 100, dtype=np.uint8)
    with Restorer.open(tiny_model("offset")) as restorer:  # model adds 10 on a 0..255 range
        assert restorer.meta.value_range == (0.0, 255.0)
        out = restorer.restore(frame)
    np.testing.assert_array_equal(out, 110)


def _model_batch(frame: np.ndarray, order: str, value_range: tuple[float, float]) -> np.ndarray:
    """An RGB uint8 frame as the model takes it before padding (1x3xHxW), computed by hand."""
    unit = frame.astype(np.float32) / np.float32(255.0)
    if order == "BGR":
        unit = unit[..., ::-1]
    low, high = value_range
    return (unit * np.float32(high - low) + np.float32(low)).transpose(2, 0, 1)[None]


def _flip(batch: np.ndarray) -> np.ndarray:
    """A position-dependent 'model': the padded rows/columns land inside the cropped output."""
    return np.ascontiguousarray(batch[:, :, ::-1, ::-1])


# (H, W), size multiple, np.pad mode: the spec's protocol pads right/bottom by reflection
# (ndr-restore-architecture.md, "Conventions of the published model"); frames.py falls back to
# edge padding when a pad is not smaller than the frame (reflection needs pad < size; the spec
# says nothing of such frames). None: already a multiple, fed as it is.
PAD_CASES = [((37, 53), 8, "reflect"), ((37, 53), 16, "reflect"), ((5, 13), 8, "reflect"),
             ((3, 5), 8, "edge"), ((4, 12), 8, "edge"), ((16, 24), 8, None)]


@pytest.mark.parametrize("order, value_range", [("RGB", (0.0, 1.0)), ("BGR", (0.0, 255.0))])
@pytest.mark.parametrize("size, multiple, mode", PAD_CASES)
def test_the_backend_gets_the_frame_padded_as_the_spec_says(numpy_backend, rng, size, multiple, mode, order,
                                                            value_range) -> None:
    h, w = size
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    meta = ArtifactMeta(preset="numpy", channel_order=order, value_range=value_range, size_multiple=multiple)
    backend = numpy_backend(_flip, meta=meta, keep_batches=True)
    out = Restorer(backend, auto_tile=False).restore(frame, channel_order="RGB")
    ph, pw = (-h) % multiple, (-w) % multiple
    unpadded = _model_batch(frame, order, value_range)
    expected = unpadded if mode is None else np.pad(unpadded, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
    (fed,) = backend.batches
    assert fed.shape == (1, 3, h + ph, w + pw) and fed.shape[2] % multiple == 0 == fed.shape[3] % multiple
    np.testing.assert_allclose(fed, expected, rtol=1e-6)
    if mode is not None:  # the other padding modes would have given another batch
        others: list[PadMode] = [m for m in ("reflect", "edge", "symmetric", "constant") if m != mode]
        for other in others:
            assert np.abs(np.pad(unpadded, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=other) - expected).max() > 0.01
    # crop back: the top-left HxW of the model's output, in the caller's order, dtype and range
    low, high = value_range
    restored = (_flip(expected)[0, :, :h, :w].transpose(1, 2, 0) - np.float32(low)) / np.float32(high - low)
    if order == "BGR":
        restored = restored[..., ::-1]
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - (np.clip(restored, 0, 1) * 255 + 0.5).astype(np.uint8)).max() == 0


def test_bad_frames_are_refused_and_the_restorer_keeps_working(tiny_model, rng) -> None:
    good = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    bad = {
        "gray 2-D": np.zeros((16, 16), np.uint8),
        "1 channel": np.zeros((16, 16, 1), np.uint8),
        "4 channels": np.zeros((16, 16, 4), np.uint8),
        "empty": np.zeros((0, 16, 3), np.uint8),
        "int32": np.zeros((16, 16, 3), np.int32),
        "bool": np.zeros((16, 16, 3), bool),
        "nan": np.full((16, 16, 3), np.nan, np.float32),
        "list": [[0, 0, 0]],
    }
    with Restorer.open(tiny_model("identity")) as restorer:
        for frame in bad.values():
            with pytest.raises(InputError):
                restorer.restore(frame)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="HxWx3"):
            restorer.restore(bad["4 channels"])
        with pytest.raises(InputError, match="RGB"):
            restorer.restore(good, channel_order="rgb")
        np.testing.assert_array_equal(restorer.restore(good), good)  # not broken


def test_closed_restorer_refuses_work(tiny_model) -> None:
    restorer = Restorer.open(tiny_model("identity"))
    restorer.close()
    restorer.close()  # idempotent
    assert restorer.closed
    with pytest.raises(BackendClosedError, match="closed"):
        restorer.restore(np.zeros((8, 8, 3), np.uint8))


def test_missing_empty_truncated_and_metadata_less_models(tiny_model, tmp_path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        Restorer.open(tmp_path / "missing.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ArtifactError, match="empty"):
        Restorer.open(tmp_path / "empty.onnx")
    data = Path(tiny_model("mix")).read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated"):
        Restorer.open(tmp_path / "truncated.onnx")
    with pytest.raises(ArtifactError, match="metadata"):
        Restorer.open(tiny_model("nometa"))
    with pytest.raises(ArtifactError, match="manifest"):
        Restorer.open(tmp_path)  # a folder without manifest.json
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="unknown model type"):
        Restorer.open(tmp_path / "model.bin")


def _export_dir(tmp_path: Path, tiny_model) -> Path:
    out = tmp_path / "export"
    out.mkdir()
    entries = []
    for precision, kind in (("fp32", "identity"), ("fp16", "mix")):
        name = f"model-{precision}.onnx"
        meta = ArtifactMeta(preset="tiny", channel_order="RGB" if kind == "identity" else "BGR", precision=precision)
        build_tiny(kind, out / name, meta)
        entries.append(ArtifactEntry(name=name, format="onnx", precision=precision, path=name,
                                     sha256=sha256_file(out / name)))
    Manifest(source={"preset": "tiny"}, artifacts=entries).write(out)
    return out


def test_manifest_picks_the_precision_and_checks_the_hash(tmp_path, tiny_model) -> None:
    export = _export_dir(tmp_path, tiny_model)
    with Restorer.open(export, precision="fp16") as restorer:
        assert restorer.meta.precision == "fp16" and restorer.backend.path.name == "model-fp16.onnx"
    with Restorer.open(export / "manifest.json") as restorer:
        assert restorer.meta.precision == "fp32"
    with pytest.raises(ArtifactError, match="no int8 artifact"):
        Restorer.open(export, precision="int8")
    shutil.copy(tiny_model("mix"), export / "model-fp32.onnx")  # contents changed after export
    with pytest.raises(ArtifactError, match="sha256"):
        Restorer.open(export)
    with pytest.raises(InputError, match="precision"):
        select_artifact(export, precision="fp8")
    with pytest.raises(InputError, match="backend"):
        select_artifact(export, backend="coreml")  # openvino is a backend now


@pytest.mark.skipif(NO_TRT is None, reason="TensorRT works here; this checks the machines without it")
def test_tensorrt_requested_without_tensorrt(tmp_path, tiny_model) -> None:
    export = _export_dir(tmp_path, tiny_model)
    with pytest.raises(BackendUnavailableError, match="onnxruntime"):
        Restorer.open(export, backend="tensorrt")
    with pytest.raises(BackendUnavailableError):
        Restorer.open(tiny_model("identity"), backend="tensorrt")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not really an engine")
    with pytest.raises(ArtifactError, match="sidecar"):
        Restorer.open(engine)  # the sidecar is checked first: it holds the metadata
    sidecar = {"meta": {"preset": "tiny", "channel_order": "BGR"}, "tensorrt_version": "10.13.0.35",
               "gpu_name": "Orin", "compute_capability": "8.7", "precision": "fp16",
               "profiles": [{"min": [1, 3, 64, 64], "opt": [1, 3, 256, 256], "max": [4, 3, 512, 512]}],
               "io": [], "onnx_sha256": ""}
    (tmp_path / "model.engine.json").write_text(json.dumps(sidecar))
    with pytest.raises(BackendUnavailableError) as info:
        Restorer.open(engine)
    assert info.value.exit_code == 3
    # The manifest with only ONNX entries still opens on auto, on ONNX Runtime.
    with Restorer.open(export) as restorer:
        assert restorer.backend.name == "onnxruntime"


def _torch_restore(graph: Any, frame_rgb: np.ndarray, pad_mode: PadMode = "reflect") -> np.ndarray:
    """The published protocol by hand, on the PyTorch model: RGB -> BGR on [0, 1], pad right/bottom
    to a multiple of 8 with ``pad_mode``, run, crop back, BGR -> RGB; float32 HxWx3, not clipped."""
    import torch

    h, w = frame_rgb.shape[:2]
    bgr = frame_rgb[..., ::-1].astype(np.float32) / 255.0
    batch = np.pad(bgr.transpose(2, 0, 1)[None], ((0, 0), (0, 0), (0, (-h) % 8), (0, (-w) % 8)), mode=pad_mode)
    with torch.no_grad():
        out = graph(torch.from_numpy(np.ascontiguousarray(batch))).numpy()
    return np.ascontiguousarray(out[0, :, :h, :w].transpose(1, 2, 0)[..., ::-1])


NDR_ATOL = 1e-5  # ONNX Runtime vs PyTorch in float32: measured 4e-7 here; edge padding moves it by 2e-2


@pytest.mark.parametrize("size", [(45, 70), (64, 40), (13, 30)])
def test_ndr_model_restores_any_size_as_pytorch_does(ndr_onnx, ndr_torch, rng, size) -> None:
    frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    reference = _torch_restore(ndr_torch, frame)
    with Restorer.open(ndr_onnx) as restorer:
        out = restorer.restore(frame, channel_order="RGB")
        again = restorer.restore(np.ascontiguousarray(frame[..., ::-1]), channel_order="BGR")
        as_float = restorer.restore(frame.astype(np.float32) / 255.0, channel_order="RGB")
    assert out.shape == frame.shape and out.dtype == np.uint8 and as_float.dtype == np.float32
    np.testing.assert_array_equal(again[..., ::-1], out)
    np.testing.assert_allclose(as_float, np.clip(reference, 0, 1), atol=NDR_ATOL)
    expected = (np.clip(reference, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1  # a rounding step at most (ORT vs torch float sums)
    assert np.abs(expected.astype(int) - frame).mean() > 5  # the network really changes the picture
    if (-size[0]) % 8 or (-size[1]) % 8:  # padded: another padding mode is visibly another result
        edge = _torch_restore(ndr_torch, frame, pad_mode="edge")
        assert np.abs(edge - reference).max() > 100 * NDR_ATOL


@pytest.mark.skipif(NO_TRT is None, reason="TensorRT works here; this checks the machines without it")
def test_auto_falls_back_to_onnx_when_the_manifest_engine_cannot_run(tmp_path, tiny_model) -> None:
    export = _export_dir(tmp_path, tiny_model)
    manifest = Manifest.read(export)
    (export / "model-fp32.engine").write_bytes(b"engine")
    manifest.artifacts.insert(0, ArtifactEntry(name="model-fp32-engine", format="engine", precision="fp32",
                                               path="model-fp32.engine", sha256=sha256_file(export / "model-fp32.engine")))
    manifest.write(export)
    with Restorer.open(export) as restorer:
        assert restorer.backend.name == "onnxruntime" and restorer.backend.path.name == "model-fp32.onnx"
    with pytest.raises(BackendUnavailableError):
        Restorer.open(export, backend="tensorrt")
