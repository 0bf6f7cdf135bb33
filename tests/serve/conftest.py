"""Fixtures of the serving tests: a tiny export folder (manifest, ONNX variants, fake engines
with sidecars for two GPUs), and a real ``ndr-serve`` on 127.0.0.1 started as a subprocess
of the serve environment (``.venv-serve``, made by scripts/setup_serve.sh: PyTriton does not
run in the main interpreter). Tests that need the server skip with the reason when that
environment is absent. Every server started here is stopped (SIGTERM, then SIGKILL of its
own process group) when its fixture ends; every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ndr_edge.artifact import ArtifactEntry, ArtifactMeta, Manifest, sha256_file
from ndr_edge.runtime.backend import InputLimits
from ndr_edge.runtime.engine_sidecar import EngineSidecar, sidecar_path
from tests.runtime.conftest import build_tiny

REPO = Path(__file__).resolve().parents[2]
SERVE_PYTHON = Path(os.environ.get("NDR_SERVE_PYTHON", REPO / ".venv-serve" / "bin" / "python"))
STARTUP_S = 150.0  # tritonserver + Python-backend stubs on a loaded 2-core machine


def serve_python_or_skip() -> Path:
    if not SERVE_PYTHON.is_file():
        pytest.skip(f"no serve environment at {SERVE_PYTHON}: run scripts/setup_serve.sh (PyTriton needs "
                    "Debian's /usr/bin/python3, see the README)")
    return SERVE_PYTHON


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (bound to port 0 and released)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    return env


# -- a tiny export folder -------------------------------------------------------------------
def _engine(path: Path, precision: str, cc: str, gpu: str, max_batch: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a real TensorRT plan: " + cc.encode())
    io = ({"name": "input", "mode": "INPUT", "dtype": "float32", "shape": [-1, 3, -1, -1]},
          {"name": "output", "mode": "OUTPUT", "dtype": "float32", "shape": [-1, 3, -1, -1]})
    EngineSidecar(path=sidecar_path(path), meta=ArtifactMeta(preset="tiny-identity", channel_order="BGR",
                                                             precision=precision),
                  tensorrt_version="10.13.3", gpu_name=gpu, compute_capability=cc, precision=precision,
                  profiles=(InputLimits((1, 3, 64, 64), (2, 3, 256, 320), (max_batch, 3, 1024, 1024)),),
                  io=io, onnx_sha256="0" * 64).write()
    return path


def make_export(directory: Path, engines: bool = True) -> Path:
    """An export folder as ndr-export writes it, tiny: fp32 (mix), fp16 and int8 (identity
    with that precision in its metadata) ONNX graphs; with ``engines`` an fp16 engine for
    compute capability 8.7 in the manifest and one for 8.9 in engines/ (copied in)."""
    directory.mkdir(parents=True, exist_ok=True)
    build_tiny("mix", directory / "model-fp32.onnx",
               ArtifactMeta(preset="tiny-mix", channel_order="BGR", precision="fp32"))
    build_tiny("identity", directory / "model-fp16.onnx",
               ArtifactMeta(preset="tiny-identity", channel_order="BGR", precision="fp16"))
    build_tiny("identity", directory / "model-int8.onnx",
               ArtifactMeta(preset="tiny-identity", channel_order="BGR", precision="int8"))
    entries = [ArtifactEntry(name=f"onnx-{p}", format="onnx", precision=p, path=f"model-{p}.onnx",
                             sha256=sha256_file(directory / f"model-{p}.onnx")) for p in ("fp32", "fp16", "int8")]
    if engines:
        main = _engine(directory / "model-fp16.engine", "fp16", "8.7", "Orin")
        _engine(directory / "engines" / "model-fp16-l4.engine", "fp16", "8.9", "NVIDIA L4")
        entries.append(ArtifactEntry(name="engine-fp16", format="engine", precision="fp16", path=main.name,
                                     sha256=sha256_file(main), details={"compute_capability": "8.7"}))
    Manifest(source={"path": "tiny.safetensors", "preset": "tiny", "channel_order": "BGR",
                     "value_range": [0.0, 1.0]}, artifacts=entries).write(directory)
    return directory


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    return make_export(tmp_path / "export")


@pytest.fixture(scope="session")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX file the server fixtures serve: the colour-mixing 1x1 conv (model order BGR,
    so a wrong channel conversion shows)."""
    return build_tiny("mix", tmp_path_factory.mktemp("serve-model") / "mix.onnx")


# -- a real server ---------------------------------------------------------------------------
@dataclass
class ServerProcess:
    """An ``ndr-serve`` subprocess in its own session (so its tritonserver and stubs are its
    process group, stopped together)."""

    proc: subprocess.Popen[str]
    ports: dict[str, int]
    log: Path
    ready: Path
    args: list[str] = field(default_factory=list)

    @property
    def grpc(self) -> str:
        return f"grpc://127.0.0.1:{self.ports['grpc']}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def metrics(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def wait_ready(self, timeout: float = STARTUP_S) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.is_file():
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"ndr-serve exited with {self.proc.returncode} before it was ready:\n"
                                     f"{self.output()[-3000:]}")
            time.sleep(0.25)
        self.kill()
        raise AssertionError(f"ndr-serve was not ready within {timeout:.0f} s:\n{self.output()[-3000:]}")

    def rss_kb(self) -> int:
        """Resident memory of the server's whole process group (python, tritonserver, stubs)."""
        total = 0
        pgid = self.proc.pid
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[2]) != pgid:  # field 5 of stat: the process group
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return total

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return any(self._members())

    def _members(self) -> list[int]:
        members = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    fields = stat[stat.rindex(")") + 2:].split()
                    if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                        members.append(int(entry.name))
                except (OSError, ValueError):
                    continue
        return members

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM (a clean shutdown), then SIGKILL of the group if it is still there."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL this server's own process group (started with start_new_session)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while self._members() and time.monotonic() < deadline:
            time.sleep(0.1)


def start_server(model: Path, workdir: Path, *extra: str, python: Path | None = None,
                 wait: bool = True) -> ServerProcess:
    python = python or serve_python_or_skip()
    http, grpc, metrics = free_ports(3)
    workdir.mkdir(parents=True, exist_ok=True)
    ready, log = workdir / "ready.json", workdir / "serve.log"
    ready.unlink(missing_ok=True)
    args = [str(python), "-m", "ndr_edge.runtime.serve_cli", str(model), "--host", "127.0.0.1",
            "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
            "--threads", "1", "--ready-file", str(ready), "--log-file", str(workdir / "tritonserver.log"),
            "--startup-timeout", str(int(STARTUP_S)), *extra]
    handle = open(log, "w")  # noqa: SIM115 - the child writes it; closed with the process
    proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, text=True, env=child_env(),
                            cwd=workdir, start_new_session=True)
    handle.close()
    server = ServerProcess(proc, {"http": http, "grpc": grpc, "metrics": metrics}, log, ready, args)
    return server.wait_ready() if wait else server


@pytest.fixture(scope="module")
def server(served_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ndr-serve for a test module: the mix model, uint8/uint16/float32 frames, 64 px tiles,
    frames up to 256x256 px, batches of up to 8 requests."""
    proc = start_server(served_model, tmp_path_factory.mktemp("server"), "--dtypes", "uint8,uint16,float32",
                        "--tile", "64", "--max-pixels", str(256 * 256), "--max-batch-size", "8",
                        "--max-queue-delay-us", "2000")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def local_restorer(served_model: Path) -> Iterator[object]:
    """The same model in-process, with the server's tiling (what the server must equal)."""
    from ndr_edge.runtime.restorer import Restorer
    from ndr_edge.runtime.tiling import TileConfig

    with Restorer.open(served_model, threads=1, tiling=TileConfig(tile=64)) as restorer:
        yield restorer


def frames(rng: np.random.Generator, count: int, shape: tuple[int, int] = (40, 56), dtype: type = np.uint8
           ) -> list[np.ndarray]:
    if np.dtype(dtype).kind == "f":
        return [rng.random((*shape, 3)).astype(dtype) for _ in range(count)]
    high = 256 if dtype == np.uint8 else 65536
    return [rng.integers(0, high, (*shape, 3)).astype(dtype) for _ in range(count)]


def read_ready(server: ServerProcess) -> dict:
    return json.loads(server.ready.read_text())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


__all__ = [
    "SERVE_PYTHON",
    "ServerProcess",
    "child_env",
    "frames",
    "free_ports",
    "make_export",
    "read_ready",
    "serve_python_or_skip",
    "start_server",
]
