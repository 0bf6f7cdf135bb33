"""Faults with a real ndr-serve on 127.0.0.1: clients that disconnect mid-stream leak
nothing (server RSS flat over 1,000 requests), a server killed mid-stream gives the client
an error within its timeout (never a hang), SIGTERM stops it cleanly, and a port in use or
an export folder without a manifest are one-line errors. Every loop is bounded in count and
time; every server started here is stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ndr_edge.errors import BackendUnavailableError, NDREdgeError
from tests.serve.conftest import ServerProcess, child_env, frames, free_ports, serve_python_or_skip, start_server

remote = pytest.importorskip("ndr_edge.runtime.remote")
grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient is needed (ndr-edge[remote])")

RSS_GROWTH_KB = 24 * 1024  # allocator noise on a loaded machine; a per-request leak of 1000 frames shows above it


def _abandon(server: ServerProcess, batch: np.ndarray, count: int) -> None:
    """Start ``count`` requests and close the connection without waiting for any answer."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.ports['grpc']}")
    tensor = grpcclient.InferInput("frame", list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch)
    for _ in range(count):
        client.async_infer("ndr", [tensor], callback=lambda result, error: None, client_timeout=10)
    client.close()


def test_disconnecting_clients_leak_nothing(served_model: Path, tmp_path: Path, rng: np.random.Generator) -> None:
    server = start_server(served_model, tmp_path / "server", "--max-batch-size", "8")
    try:
        sent = frames(rng, 8, (32, 32))
        batch = sent[0][None]
        with remote.RemoteRestorer(server.grpc, settings=remote.RemoteSettings(timeout_s=20)) as client:
            for frame in sent * 25:  # warm-up: 200 requests, allocator and arenas settle
                client.restore(frame)
        base = server.rss_kb()
        requests = 0
        deadline = time.monotonic() + 240
        session = 0
        while requests < 1000 and time.monotonic() < deadline:
            session += 1
            if session % 2:  # a stream closed with frames still queued and on the wire
                client = remote.RemoteRestorer(server.grpc if session % 4 == 1 else server.http,
                                               settings=remote.RemoteSettings(timeout_s=20))
                stream = client.stream(depth=4)
                for frame in sent * 3:
                    stream.push(frame)
                stream.pull()
                stream.close()
                client.close()
                requests += 24
            else:  # requests sent, connection dropped at once
                _abandon(server, batch, 20)
                requests += 20
        assert requests >= 1000, f"only {requests} requests in 240 s"
        time.sleep(2.0)  # let the server finish what was abandoned
        with remote.RemoteRestorer(server.grpc, settings=remote.RemoteSettings(timeout_s=20)) as client:
            out = client.restore(sent[1])  # still serving
            assert out.shape == sent[1].shape
        grown = server.rss_kb() - base
        print(f"server RSS {base / 1024:.1f} MB -> {(base + grown) / 1024:.1f} MB over {requests} requests")
        assert grown < RSS_GROWTH_KB, f"server RSS grew {grown / 1024:.1f} MB over {requests} requests"
        # an abrupt end: a client process killed mid-stream
        script = ("import numpy as np\nfrom ndr_edge.runtime.remote import RemoteRestorer\n"
                  f"s = RemoteRestorer({server.grpc!r}).stream(depth=4)\n"
                  "print('streaming', flush=True)\n"
                  "for i in range(100000): s.push(np.zeros((32, 32, 3), np.uint8)); s.pull() if i > 4 else None\n")
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=child_env())
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "streaming"
            time.sleep(1.0)
        finally:
            proc.kill()
            proc.wait(10)
        with remote.RemoteRestorer(server.http, settings=remote.RemoteSettings(timeout_s=20)) as client:
            assert client.restore(sent[2]).shape == sent[2].shape
    finally:
        server.stop()


def test_server_killed_mid_stream_fails_within_the_timeout(served_model: Path, tmp_path: Path,
                                                           rng: np.random.Generator) -> None:
    server = start_server(served_model, tmp_path / "server")
    timeout = 4.0
    try:
        client = remote.RemoteRestorer(server.grpc, settings=remote.RemoteSettings(timeout_s=timeout, retries=2))
        stream = client.stream(depth=4)
        sent = frames(rng, 4, (32, 32))
        for i in range(8):
            stream.push(sent[i % 4])
        for _ in range(4):
            stream.pull(timeout=30)
        server.kill()  # SIGKILL: tritonserver, stubs and the Python side at once
        start = time.monotonic()
        error: BaseException | None = None
        for i in range(40):  # bounded: each pull ends within the timeout
            try:
                stream.push(sent[i % 4])
                stream.pull(timeout=timeout * 3 + 5)
            except TimeoutError as exc:
                pytest.fail(f"the client hung: {exc}")
            except NDREdgeError as exc:
                error = exc
                break
        elapsed = time.monotonic() - start
        assert isinstance(error, BackendUnavailableError), error
        assert "is ndr-serve running there" in str(error)
        assert elapsed < timeout + 2.0, f"error after {elapsed:.1f} s (timeout {timeout} s)"
        start = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            client.restore(sent[0])
        assert time.monotonic() - start < timeout + 2.0
        stream.close()
        client.close()
    finally:
        server.kill()


def test_sigterm_stops_cleanly(served_model: Path, tmp_path: Path) -> None:
    server = start_server(served_model, tmp_path / "server")
    try:
        with remote.RemoteRestorer(server.grpc, settings=remote.RemoteSettings(timeout_s=20)) as client:
            client.restore(np.zeros((16, 16, 3), np.uint8))
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(60)
        assert code == 0, server.output()[-2000:]
        assert "ndr-serve: stopped (SIGTERM); 1 frames served" in server.output()
        deadline = time.monotonic() + 20
        while server.group_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not server.group_alive(), "tritonserver or a stub outlived ndr-serve"
        for port in server.ports.values():  # released
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
    finally:
        server.kill()


def _one_line_error(args: list[str], cwd: Path) -> tuple[int, str]:
    python = serve_python_or_skip()
    done = subprocess.run([str(python), "-m", "ndr_edge.runtime.serve_cli", *args], capture_output=True, text=True,
                          timeout=120, env=child_env(), cwd=cwd, check=False)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return done.returncode, lines[0]


def test_port_in_use_is_a_one_line_error(served_model: Path, tmp_path: Path) -> None:
    http, grpc, metrics = free_ports(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", grpc))
        busy.listen()
        code, line = _one_line_error([str(served_model), "--http-port", str(http), "--grpc-port", str(grpc),
                                      "--metrics-port", str(metrics)], tmp_path)
    assert code == 2
    assert line == (f"ndr-serve: error: port {grpc} on 127.0.0.1 is already in use (--grpc-port); stop what "
                    "listens there or choose another --grpc-port")


def test_export_folder_without_a_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    empty = tmp_path / "export"
    empty.mkdir()
    http, grpc, metrics = free_ports(3)
    code, line = _one_line_error([str(empty), "--http-port", str(http), "--grpc-port", str(grpc),
                                  "--metrics-port", str(metrics)], tmp_path)
    assert code == 2 and line.startswith("ndr-serve: error:") and "no export manifest" in line
    assert os.listdir(empty) == []
