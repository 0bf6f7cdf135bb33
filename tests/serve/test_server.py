"""A real ndr-serve (Triton through PyTriton) on 127.0.0.1, talked to over gRPC and HTTP:
results equal the in-process Restorer, streams come back in order while other streams run,
bad frames get error responses that name what is wrong and the other streams go on, info
and Prometheus metrics. The server runs in the serve environment (.venv-serve); these tests
skip with the reason where it is absent."""

from __future__ import annotations

import threading
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.runtime.tiling import TileConfig
from tests.serve.conftest import ServerProcess, frames, read_ready

remote = pytest.importorskip("ndr_edge.runtime.remote")
grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient is needed (ndr-edge[remote])")
SETTINGS = remote.RemoteSettings(timeout_s=20.0)


def _raw(server: ServerProcess, model: str, batch: np.ndarray, parameters: dict | None = None) -> object:
    """Send a request as any Triton client would (no client-side checks); returns the
    result's error text or the exception."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.ports['grpc']}")
    try:
        tensor = grpcclient.InferInput("frame", list(batch.shape), grpcclient.np_to_triton_dtype(batch.dtype))
        tensor.set_data_from_numpy(batch)
        try:
            result = client.infer(model, [tensor], parameters=parameters or {}, client_timeout=20)
        except Exception as exc:  # noqa: BLE001 - the point of the test
            return exc
        return result.as_numpy("error")[0, 0].decode()
    finally:
        client.close()


def test_ready_file_names_the_models(server: ServerProcess) -> None:
    ready = read_ready(server)
    assert ready["models"] == {"ndr": "uint8", "ndr_uint16": "uint16", "ndr_float32": "float32"}
    assert ready["urls"]["grpc"] == server.grpc


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_results_equal_the_in_process_restorer(server: ServerProcess, local_restorer, rng: np.random.Generator,
                                               scheme: str) -> None:
    url = server.grpc if scheme == "grpc" else server.http
    with remote.RemoteRestorer(url, settings=SETTINGS) as client:
        for dtype in (np.uint8, np.uint16, np.float32, np.float64):
            for order in ("RGB", "BGR"):
                (frame,) = frames(rng, 1, (37, 53), dtype)
                out = client.restore(frame, channel_order=order)
                expected = local_restorer.restore(frame, channel_order=order)
                assert out.dtype == frame.dtype and out.shape == frame.shape
                if np.dtype(dtype).kind == "f":
                    assert float(np.abs(out.astype(np.float64) - expected).max()) <= 1e-6
                else:
                    np.testing.assert_array_equal(out, expected)
        (large,) = frames(rng, 1, (150, 130))  # tiled on the server (64 px tiles)
        np.testing.assert_array_equal(client.restore(large), local_restorer.restore(large))
        np.testing.assert_array_equal(client.restore(large, tile=False), local_restorer.restore(large, tile=False))
        assert client.stats().frames == 10


def test_concurrent_streams_come_back_in_order(server: ServerProcess, local_restorer,
                                               rng: np.random.Generator) -> None:
    streams = 4
    inputs = [frames(rng, 12, (32 + 8 * i, 48)) for i in range(streams)]
    outputs: list[list[np.ndarray]] = [[] for _ in range(streams)]
    failures: list[BaseException] = []

    def camera(index: int) -> None:
        try:
            url = server.grpc if index % 2 == 0 else server.http
            with remote.RemoteRestorer(url, settings=SETTINGS) as client, \
                    client.stream(channel_order="BGR", depth=3) as stream:
                outputs[index] = list(stream.run(inputs[index]))
                assert stream.stats().frames == len(inputs[index])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a stream did not finish within 120 s"
    assert not failures, failures
    for sent, got in zip(inputs, outputs):
        assert len(got) == len(sent)
        for frame, out in zip(sent, got):
            np.testing.assert_array_equal(out, local_restorer.restore(frame, channel_order="BGR"))


def test_bad_frames_are_named_and_other_streams_go_on(server: ServerProcess, local_restorer,
                                                      rng: np.random.Generator) -> None:
    sent = frames(rng, 40, (24, 40))
    got: list[np.ndarray] = []
    failures: list[BaseException] = []

    def camera() -> None:
        try:
            with remote.RemoteRestorer(server.grpc, settings=SETTINGS) as client, client.stream(depth=2) as stream:
                got.extend(stream.run(sent))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    thread = threading.Thread(target=camera)
    thread.start()
    try:
        wrong_channels = _raw(server, "ndr", np.zeros((1, 8, 8, 4), np.uint8))
        assert "Expected [-1,-1,-1,3], got [1,8,8,4]" in str(wrong_channels)
        wrong_dtype = _raw(server, "ndr", np.zeros((1, 8, 8, 3), np.float32))
        assert "data-type is 'FP32', but model 'ndr' expects 'UINT8'" in str(wrong_dtype)
        wrong_rank = _raw(server, "ndr", np.zeros((8, 8, 3), np.uint8))
        assert "unexpected shape" in str(wrong_rank)
        nan = np.zeros((1, 8, 8, 3), np.float32)
        nan[0, 1, 1, 1] = np.nan
        assert "NaN" in str(_raw(server, "ndr_float32", nan))
        assert "channel_order" in str(_raw(server, "ndr", np.zeros((1, 8, 8, 3), np.uint8), {"channel_order": "RGBA"}))
        with remote.RemoteRestorer(server.http, settings=SETTINGS) as client:
            with pytest.raises(InputError, match="--max-pixels"):
                client.restore(np.zeros((300, 300, 3), np.uint8))
            with pytest.raises(InputError, match="tile size 20"):
                client.restore(np.zeros((16, 16, 3), np.uint8), tile=TileConfig(20, 0, 1))
            np.testing.assert_array_equal(client.restore(sent[0]), local_restorer.restore(sent[0]))
    finally:
        thread.join(120)
    assert not thread.is_alive() and not failures, failures
    assert len(got) == len(sent)
    for frame, out in zip(sent, got):
        np.testing.assert_array_equal(out, local_restorer.restore(frame))


def test_unknown_model_and_info_and_metrics(server: ServerProcess) -> None:
    with pytest.raises(ArtifactError, match="no model 'nope'"):
        remote.RemoteRestorer(server.grpc, model="nope", settings=remote.RemoteSettings(timeout_s=5.0))
    with remote.RemoteRestorer(server.grpc, settings=SETTINGS) as client:
        client.restore(np.zeros((16, 16, 3), np.uint8))
        info = client.info()
    assert info["server"]["models"]["ndr_float32"] == "float32"
    assert info["server"]["restorer"]["model_channel_order"] == "BGR"
    assert info["server"]["settings"]["max_batch_size"] == 8
    assert sum(c["frames"] for c in info["server"]["counts"]) >= 1
    with urllib.request.urlopen(server.metrics, timeout=10) as response:
        text = response.read().decode()
    assert 'nv_inference_request_success{model="ndr"' in text


@pytest.mark.slow
def test_real_network_fp32_equal_within_1e6(tmp_path_factory: pytest.TempPathFactory,
                                            rng: np.random.Generator) -> None:
    """The NDR restoration network (random weights), float32 frames: server == in-process."""
    torch = pytest.importorskip("torch")
    import onnx

    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.model import RestorationOnly
    from ndr_edge.runtime.restorer import Restorer
    from tests.models import untrained
    from tests.serve.conftest import start_server

    model = untrained("ndr-edge-xs", with_degradation_net=False)
    path = tmp_path_factory.mktemp("ndr") / "ndr-edge-xs.onnx"
    axes = {0: "n", 2: "h", 3: "w"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(RestorationOnly(model.restoration_net).eval(), (torch.rand(1, 3, 64, 64),), str(path),
                          input_names=["input"], output_names=["output"], opset_version=17,
                          dynamic_axes={"input": axes, "output": axes}, dynamo=False)
    proto = onnx.load(str(path))
    for key, value in ArtifactMeta(preset="ndr-edge-xs", channel_order="BGR").to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    served = start_server(Path(path), tmp_path_factory.mktemp("ndr-server"), "--dtypes", "uint8,float32")
    try:
        with Restorer.open(path, threads=1) as local, remote.RemoteRestorer(served.grpc, settings=SETTINGS) as client:
            for frame in frames(rng, 3, (64, 64), np.float32):
                assert float(np.abs(client.restore(frame, "BGR") - local.restore(frame, "BGR")).max()) <= 1e-6
    finally:
        served.stop()


def test_export_folder_two_instances_and_batching_across_requests(tmp_path: Path, rng: np.random.Generator) -> None:
    """Serving an export folder (its fp32 ONNX: no TensorRT here) with two instances; four
    requests sent at once, with a long queue delay and preferred batch 4, are one model batch."""
    from ndr_edge.runtime.restorer import Restorer
    from tests.serve.conftest import make_export, start_server

    export = make_export(tmp_path / "export")
    served = start_server(export, tmp_path / "server", "--instances", "2", "--max-batch-size", "4",
                          "--preferred-batch-sizes", "4", "--max-queue-delay-us", "500000", "--dtypes", "uint8")
    try:
        sent = frames(rng, 4, (24, 32))
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{served.ports['grpc']}")
        results: list[object] = [None] * 4
        done = threading.Event()

        def callback(index: int, result: object, error: object) -> None:
            results[index] = error if error is not None else result.as_numpy("frame")[0]  # type: ignore[attr-defined]
            if all(r is not None for r in results):
                done.set()

        for i, frame in enumerate(sent):
            tensor = grpcclient.InferInput("frame", [1, *frame.shape], "UINT8")
            tensor.set_data_from_numpy(frame[None])
            client.async_infer("ndr", [tensor], callback=lambda result, error, i=i: callback(i, result, error), client_timeout=30)
        assert done.wait(60), "no answers within 60 s"
        client.close()
        with Restorer.open(export, threads=1) as local:
            for frame, out in zip(sent, results):
                np.testing.assert_array_equal(out, local.restore(frame))
        with remote.RemoteRestorer(served.grpc, settings=SETTINGS) as client_:
            info = client_.info()["server"]
        assert info["settings"]["instances"] == 2 and len(info["counts"]) == 2
        assert info["restorer"]["path"].endswith("model-fp32.onnx")
        counts = info["counts"]
        assert sum(c["frames"] for c in counts) == 4 and sum(c["model_batches"] for c in counts) == 1, counts
    finally:
        served.stop()


def test_many_cameras_example(server: ServerProcess) -> None:
    import subprocess
    import sys

    from tests.serve.conftest import REPO, child_env

    done = subprocess.run([sys.executable, str(REPO / "examples" / "many_cameras.py"), server.grpc, "--synthetic", "3",
                           "--max-frames", "6", "--fps", "0", "--width", "64", "--height", "48"],
                          capture_output=True, text=True, timeout=120, env=child_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert "3 cameras, 3 finished" in done.stdout
    assert done.stdout.count("6 frames in") == 3
