"""The served runtime's parts without a server: request parameters, the worker that turns a
dynamic batch of requests into model batches (and refuses one request without failing the
others), URLs and tiling parameters of the client, and a client facing no server (an error
within its timeout). Runs in the main environment (no PyTriton needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ndr_edge.errors import BackendUnavailableError, InputError
from ndr_edge.runtime.restorer import Restorer
from ndr_edge.runtime.serve import ERROR_TENSOR, FRAME_TENSOR, ServeSettings, Worker, check_ports_free, parse_parameters
from ndr_edge.runtime.tiling import TileConfig
from tests.serve.conftest import frames


@dataclass
class FakeRequest:
    data: dict[str, np.ndarray]
    parameters: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def worker(served_model: Path):
    with Restorer.open(served_model, threads=1, tiling=TileConfig(tile=64)) as restorer:
        yield Worker(restorer, max_batch=4, max_pixels=128 * 128)


def test_parameters_map_to_the_restorer_tile_argument() -> None:
    assert parse_parameters(None) == ("RGB", None, False)
    assert parse_parameters({"channel_order": "BGR", "tile": 0}) == ("BGR", False, True)
    assert parse_parameters({"always_tile": True}) == ("RGB", True, True)
    assert parse_parameters({"tile": 128, "overlap": 16, "tile_batch": 2})[1] == TileConfig(128, 16, 2)
    with pytest.raises(InputError, match="channel_order"):
        parse_parameters({"channel_order": "rgb"})
    with pytest.raises(InputError, match="unknown request parameter"):
        parse_parameters({"colour": "RGB"})
    with pytest.raises(InputError, match="need a tile size"):
        parse_parameters({"overlap": 8})
    with pytest.raises(InputError, match="integer"):
        parse_parameters({"tile": "big"})


def test_worker_batches_same_sized_frames_across_requests(worker: Worker, local_restorer: Restorer,
                                                          rng: np.random.Generator) -> None:
    calls: list[tuple[int, ...]] = []
    backend = worker.restorer.backend
    original = backend.infer

    def spy(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return original(batch)

    backend.infer = spy  # type: ignore[method-assign]
    small = frames(rng, 6, (40, 56))
    other = frames(rng, 1, (24, 24))[0]
    requests = [FakeRequest({FRAME_TENSOR: f[None]}, {"channel_order": "BGR"}) for f in small[:5]]
    requests.append(FakeRequest({FRAME_TENSOR: np.stack([small[5], small[5]])}))  # two frames in one request
    requests.append(FakeRequest({FRAME_TENSOR: other[None]}))
    responses = worker.handle(requests, np.uint8)
    assert sorted(calls) == sorted([(4, 3, 40, 56), (3, 3, 40, 56), (1, 3, 24, 24)])  # 7 frames of one size, limit 4
    for request, response in zip(requests, responses):
        order = request.parameters.get("channel_order", "RGB")
        expected = np.stack([local_restorer.restore(f, order) for f in request.data[FRAME_TENSOR]])
        np.testing.assert_array_equal(response[FRAME_TENSOR], expected)
        assert response[ERROR_TENSOR].tolist() == [[b""]] * len(expected)
    assert worker.counts.requests == 7 and worker.counts.frames == 8 and worker.counts.model_batches == 3


def test_one_bad_request_does_not_fail_the_batch(worker: Worker, local_restorer: Restorer,
                                                 rng: np.random.Generator) -> None:
    good = frames(rng, 2, (32, 32), np.float32)
    nan = good[0].copy()
    nan[3, 4, 1] = np.nan
    big = np.zeros((1, 129, 128, 3), np.float32)
    requests = [FakeRequest({FRAME_TENSOR: good[0][None]}), FakeRequest({FRAME_TENSOR: nan[None]}),
                FakeRequest({FRAME_TENSOR: good[1][None]}, {"channel_order": "XYZ"}),
                FakeRequest({FRAME_TENSOR: big}), FakeRequest({FRAME_TENSOR: good[1][None]}, {"tile": 12}),
                FakeRequest({FRAME_TENSOR: good[1][None]})]
    responses = worker.handle(requests, np.float32)
    errors = [r[ERROR_TENSOR][0, 0].decode() for r in responses]
    assert errors[0] == "" and errors[5] == ""
    assert "NaN" in errors[1] and "channel_order" in errors[2] and "--max-pixels" in errors[3]
    assert "tile size 12" in errors[4]
    np.testing.assert_allclose(responses[0][FRAME_TENSOR][0], local_restorer.restore(good[0]), atol=1e-6)
    np.testing.assert_allclose(responses[5][FRAME_TENSOR][0], local_restorer.restore(good[1]), atol=1e-6)
    assert worker.counts.refused == 4


def test_worker_tiles_large_frames_like_the_restorer(worker: Worker, local_restorer: Restorer,
                                                     rng: np.random.Generator) -> None:
    frame = frames(rng, 1, (100, 90))[0]
    (tiled, whole) = worker.handle([FakeRequest({FRAME_TENSOR: frame[None]}),
                                    FakeRequest({FRAME_TENSOR: frame[None]}, {"tile": 0})], np.uint8)
    np.testing.assert_array_equal(tiled[FRAME_TENSOR][0], local_restorer.restore(frame))
    np.testing.assert_array_equal(whole[FRAME_TENSOR][0], local_restorer.restore(frame, tile=False))
    assert worker.counts.tiled_frames == 1


def test_importing_the_serving_modules_pulls_in_nothing_heavy() -> None:
    heavy = ("torch", "onnxruntime", "onnx", "tensorrt", "pytriton", "tritonclient", "grpc", "cv2")
    code = ("import sys\nimport ndr_edge.runtime.serve, ndr_edge.runtime.remote, ndr_edge.runtime.triton_repo, "
            f"ndr_edge.runtime.serve_cli\nprint(' '.join(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == []


def test_settings_are_checked() -> None:
    with pytest.raises(InputError, match="ports must differ"):
        ServeSettings(http_port=9000, grpc_port=9000).validate()
    with pytest.raises(InputError, match="frame dtypes"):
        ServeSettings(dtypes=("int8",)).validate()
    with pytest.raises(InputError, match="not a TCP port"):
        ServeSettings(grpc_port=70000).validate()
    assert ServeSettings(host="0.0.0.0").urls()["grpc"] == "grpc://127.0.0.1:8001"


def test_port_in_use_is_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=f"port {port} on 127.0.0.1 is already in use \\(--grpc-port\\)"):
            check_ports_free("127.0.0.1", {"--grpc-port": port})


# -- the client without a server ------------------------------------------------------------
remote = pytest.importorskip("ndr_edge.runtime.remote")
pytest.importorskip("tritonclient.grpc", reason="tritonclient is needed for the client (ndr-edge[remote])")


def test_urls_and_tile_parameters() -> None:
    assert remote.parse_url("127.0.0.1:9001") == ("grpc", "127.0.0.1:9001")
    assert remote.parse_url("http://cams.local") == ("http", "cams.local:8000")
    assert remote.parse_url("grpc://[::1]:7001") == ("grpc", "[::1]:7001")
    for bad in ("ftp://x:1", "https://x:1", "grpc://:80"):
        with pytest.raises(InputError):
            remote.parse_url(bad)
    assert remote.tile_parameters(None) == {}
    assert remote.tile_parameters(False) == {"tile": 0}
    assert remote.tile_parameters(TileConfig(256, 16, 2)) == {"tile": 256, "overlap": 16, "tile_batch": 2}
    with pytest.raises(InputError):
        remote.tile_parameters(256)


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_no_server_is_an_error_within_the_timeout(scheme: str) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="no server answered within 1 s"):
        remote.RemoteRestorer(f"{scheme}://127.0.0.1:{port}", settings=remote.RemoteSettings(timeout_s=1.0))
    assert time.monotonic() - start < 3.0
    client = remote.RemoteRestorer(f"{scheme}://127.0.0.1:{port}",
                                   settings=remote.RemoteSettings(timeout_s=1.0, check=False))
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="is ndr-serve running there"):
        client.restore(np.zeros((8, 8, 3), np.uint8))
    assert time.monotonic() - start < 3.0
    with pytest.raises(InputError, match="channel_order"):
        client.restore(np.zeros((8, 8, 3), np.uint8), channel_order="bgr")
    with pytest.raises(InputError, match="HxWx3"):
        client.restore(np.zeros((8, 8, 4), np.uint8))
    client.close()


def test_ndr_serve_without_pytriton_is_a_one_line_error(served_model: Path) -> None:
    """The main interpreter has no PyTriton (it would not run there): say so and how to get it."""
    try:
        import pytriton  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("PyTriton is importable in this interpreter")
    done = subprocess.run([sys.executable, "-m", "ndr_edge.runtime.serve_cli", str(served_model), "--http-port",
                           "1", "--grpc-port", "2", "--metrics-port", "3"], capture_output=True, text=True,
                          timeout=120, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1, done.stderr
    assert lines[0].startswith("ndr-serve: error: PyTriton is not installed") and "setup_serve.sh" in lines[0]
