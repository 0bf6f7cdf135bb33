"""Fixtures of the runtime tests: tiny ONNX graphs built with onnx.helper (fast and exact),
a real tiny NDR model exported with torch (session-scoped), a numpy backend that records what
it is fed, and small images / videos in tmp_path. The runtime itself never imports torch;
only the NDR fixture here does."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ndr_edge.artifact import ArtifactMeta
from ndr_edge.runtime.backend import Backend
from tests.models import untrained

# A colour-mixing 1x1 convolution: rows sum to 1, so [0, 1] stays in [0, 1], and the
# channels are treated differently, so a swapped channel order shows.
MIX = np.array([[0.6, 0.3, 0.1], [0.1, 0.7, 0.2], [0.0, 0.25, 0.75]], dtype=np.float32)
BOX = np.full((3, 1, 3, 3), 1.0 / 9.0, dtype=np.float32)  # depthwise 3x3 box blur


def _save_graph(path: Path, nodes: list, initializers: list, meta: ArtifactMeta | None) -> Path:
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = helper.make_graph(nodes, path.stem, [inp], [out], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta is not None:
        for key, value in meta.to_props().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_tiny(kind: str, path: Path, meta: ArtifactMeta | None = None) -> Path:
    """``identity``, ``mix`` (1x1 colour mixing, model order BGR), ``offset`` (+10 on a 0..255
    value range), ``blur`` (3x3 box, zero padding), ``nometa`` (identity without metadata),
    ``residual_int8`` (r = Conv(Q/DQ(input)) with INT8 weights and no bias, then
    output = r + Conv(Relu(r)) with a bias: the pattern OpenVINO miscomputes at dynamic shapes)."""
    from onnx import helper, numpy_helper

    if kind in ("identity", "nometa"):
        nodes, inits = [helper.make_node("Identity", ["input"], ["output"])], []
        meta = None if kind == "nometa" else (meta or ArtifactMeta(preset="tiny-identity", channel_order="RGB"))
    elif kind == "mix":
        nodes = [helper.make_node("Conv", ["input", "w"], ["output"])]
        inits = [numpy_helper.from_array(MIX[:, :, None, None].copy(), "w")]
        meta = meta or ArtifactMeta(preset="tiny-mix", channel_order="BGR")
    elif kind == "offset":
        nodes = [helper.make_node("Add", ["input", "b"], ["output"])]
        inits = [numpy_helper.from_array(np.array(10.0, dtype=np.float32), "b")]
        meta = meta or ArtifactMeta(preset="tiny-offset", channel_order="RGB", value_range=(0.0, 255.0))
    elif kind == "blur":
        nodes = [helper.make_node("Conv", ["input", "w"], ["output"], group=3, pads=[1, 1, 1, 1])]
        inits = [numpy_helper.from_array(BOX, "w")]
        meta = meta or ArtifactMeta(preset="tiny-blur", channel_order="RGB")
    elif kind == "residual_int8":
        rng = np.random.default_rng(7)
        w1 = rng.normal(0, 0.2, (3, 3, 3, 3)).astype(np.float32)
        scale = (np.abs(w1).reshape(3, -1).max(1) / 63).astype(np.float32)  # 7-bit weights: no AVX2 saturation
        inits = [numpy_helper.from_array(np.clip(np.round(w1 / scale[:, None, None, None]), -63, 63).astype(np.int8), "w1q"),
                 numpy_helper.from_array(scale, "w1s"), numpy_helper.from_array(np.zeros(3, np.int8), "w1z"),
                 numpy_helper.from_array(np.array(1 / 127, dtype=np.float32), "xs"),
                 numpy_helper.from_array(np.array(0, dtype=np.int8), "xz"),
                 numpy_helper.from_array(rng.normal(0, 0.2, (3, 3, 1, 1)).astype(np.float32), "w2"),
                 numpy_helper.from_array(rng.normal(0, 0.2, 3).astype(np.float32), "b2")]
        nodes = [helper.make_node("QuantizeLinear", ["input", "xs", "xz"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
                 helper.make_node("DequantizeLinear", ["w1q", "w1s", "w1z"], ["w1"], axis=0),
                 helper.make_node("Conv", ["xd", "w1"], ["r"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["r"], ["h"]),
                 helper.make_node("Conv", ["h", "w2", "b2"], ["a"], kernel_shape=[1, 1]),
                 helper.make_node("Add", ["r", "a"], ["output"])]
        meta = meta or ArtifactMeta(preset="tiny-residual-int8", channel_order="RGB")
    else:
        raise ValueError(kind)
    return _save_graph(path, nodes, inits, meta)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-onnx")


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path) -> Callable[[str], Path]:
    """tiny_model("mix") -> path of that tiny ONNX graph (built once per session)."""

    def get(kind: str) -> Path:
        path = tiny_dir / f"{kind}.onnx"
        if not path.exists():
            build_tiny(kind, path)
        return path

    return get


@pytest.fixture(scope="session")
def ndr_torch() -> Any:
    """The PyTorch graph behind ``ndr_onnx`` (ndr-edge-xs restoration net, random weights,
    seeded, eval mode): one BGR NCHW tensor on [0, 1] in, the restored tensor out."""
    pytest.importorskip("torch")
    from ndr_edge.model import RestorationOnly

    model = untrained("ndr-edge-xs", with_degradation_net=False)
    return RestorationOnly(model.restoration_net).eval()


@pytest.fixture(scope="session")
def ndr_onnx(tmp_path_factory: pytest.TempPathFactory, ndr_torch: Any) -> Path:
    """The real ndr-edge-xs restoration graph (random weights, seeded), dynamic N/H/W, with
    ArtifactMeta -- exported here with torch, without the export helper's code."""
    torch = pytest.importorskip("torch")
    import onnx

    graph = ndr_torch
    path = tmp_path_factory.mktemp("ndr-onnx") / "ndr-edge-xs.onnx"
    axes = {0: "n", 2: "h", 3: "w"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(graph, (torch.rand(1, 3, 64, 64),), str(path), input_names=["input"],
                          output_names=["output"], opset_version=17, dynamic_axes={"input": axes, "output": axes},
                          dynamo=False)
    proto = onnx.load(str(path))
    meta = ArtifactMeta(preset="ndr-edge-xs", channel_order="BGR", config=graph.net.config.to_dict())
    for key, value in meta.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


class NumpyBackend(Backend):
    """A pure-numpy backend (so tracemalloc sees every allocation) that records batch shapes,
    and with ``keep_batches`` a copy of every batch it is fed (off by default: the memory
    tests measure the restorer, not this log)."""

    name = "numpy"

    def __init__(self, func: Callable[[np.ndarray], np.ndarray] | None = None,
                 meta: ArtifactMeta | None = None, record: bool = True, keep_batches: bool = False) -> None:
        super().__init__(Path("numpy-model"), meta or ArtifactMeta(preset="numpy", channel_order="RGB"))
        self.func = func or (lambda batch: batch.copy())
        self.shapes: list[tuple[int, ...]] = []
        self.batches: list[np.ndarray] = []
        self.record = record
        self.keep_batches = keep_batches

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        if self.record:
            self.shapes.append(batch.shape)
        if self.keep_batches:
            self.batches.append(batch.copy())
        return self.func(batch)


@pytest.fixture
def numpy_backend() -> Callable[..., NumpyBackend]:
    return NumpyBackend


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    import cv2

    height, width = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")  # type: ignore[attr-defined]
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video with OpenCV itself (BGR uint8), not through the runtime."""
    import cv2

    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
