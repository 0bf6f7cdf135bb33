"""Benchmark of the served runtime (ndr-serve, Triton through PyTriton) against the same
Restorer in-process: a script, not a timed test.

For 1, 2, 4 and 8 concurrent client streams (``--streams``) of ``--size`` frames it measures
the aggregate frames per second and the per-frame latency (push to result, p50/p95), first
with every stream on one in-process Restorer (StreamRestorer each), then with every stream
a RemoteRestorer stream to one server. It also checks that the server's outputs equal the
in-process ones (float32 frames: max abs difference; the FP32 model must give <= 1e-6).

The server is started here from the serve environment (``--server-python``, default
``.venv-serve/bin/python``; make it with scripts/setup_serve.sh) on 127.0.0.1 and stopped at
the end, or ``--url`` names a running one (same model and tiling, please).

    ndr-export --output /tmp/export                      # the bundled model -> ONNX (fp32)
    python benchmarks/serve_bench.py /tmp/export --json serve-bench.json
    python benchmarks/serve_bench.py /tmp/export --streams 1,4 --frames 50 --instances 2
    python benchmarks/serve_bench.py model.onnx --url grpc://127.0.0.1:8001
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.artifact import atomic_write_json
from ndr_edge.runtime import Restorer
from ndr_edge.runtime.remote import RemoteRestorer, RemoteSettings

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    mode: str  # in-process | served
    streams: int
    frames: int
    wall_s: float
    fps: float
    p50_ms: float
    p95_ms: float


def make_frames(count: int, size: int, seed: int, dtype: type = np.uint8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return [rng.random((size, size, 3), dtype=np.float32) for _ in range(count)]
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def drive(stream: Any, frames: list[np.ndarray], depth: int, latencies: list[float]) -> None:
    """Push/pull ``frames`` through ``stream`` with ``depth`` in flight, recording each
    frame's push-to-result latency."""
    pushed: deque[float] = deque()
    for frame in frames:
        pushed.append(time.perf_counter())
        stream.push(frame)
        while len(pushed) > depth:
            stream.pull()
            latencies.append(time.perf_counter() - pushed.popleft())
    while pushed:
        stream.pull()
        latencies.append(time.perf_counter() - pushed.popleft())


def run_streams(mode: str, open_stream: Any, streams: int, frames: int, size: int, depth: int, warmup: int) -> Row:
    per_stream = [make_frames(frames, size, seed=s) for s in range(streams)]
    latencies: list[list[float]] = [[] for _ in range(streams)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(streams + 1)

    def worker(index: int) -> None:
        try:
            with open_stream() as stream:
                drive(stream, per_stream[index][:warmup], depth, [])
                barrier.wait()
                drive(stream, per_stream[index], depth, latencies[index])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    samples = np.array([x for per in latencies for x in per]) * 1e3
    total = int(samples.size)
    return Row(mode, streams, total, wall, total / wall, float(np.percentile(samples, 50)),
               float(np.percentile(samples, 95)))


# -- the server --------------------------------------------------------------------------------
def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Server:
    """ndr-serve in its own process group on 127.0.0.1, stopped by :meth:`stop`."""

    def __init__(self, python: Path, model: str, args: argparse.Namespace) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ndr-serve-bench-"))
        http, grpc, metrics = _free_ports(3)
        self.url = f"grpc://127.0.0.1:{grpc}" if args.protocol == "grpc" else f"http://127.0.0.1:{http}"
        ready = self.workdir / "ready.json"
        command = [str(python), "-m", "ndr_edge.runtime.serve_cli", model, "--host", "127.0.0.1",
                   "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
                   "--instances", str(args.instances), "--max-batch-size", str(args.max_batch_size),
                   "--max-queue-delay-us", str(args.queue_delay_us), "--precision", args.precision,
                   "--dtypes", "uint8,float32", "--ready-file", str(ready),
                   "--log-file", str(self.workdir / "tritonserver.log")]
        if args.threads:
            command += ["--threads", str(args.threads)]
        self.log = self.workdir / "serve.log"
        with open(self.log, "w") as handle:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            self.proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + args.startup_timeout
        while not ready.is_file():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"serve_bench: ndr-serve did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)


# -- main ----------------------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    by = {(r.mode, r.streams): r for r in rows}
    lines = ["| streams | in-process FPS | p50 ms | p95 ms | served FPS | p50 ms | p95 ms |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for streams in sorted({r.streams for r in rows}):
        cells = [str(streams)]
        for mode in ("in-process", "served"):
            row = by.get((mode, streams))
            cells += [f"{row.fps:.1f}", f"{row.p50_ms:.1f}", f"{row.p95_ms:.1f}"] if row else ["-", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="export folder or .onnx (the bundled model: ndr-export -o DIR first)")
    parser.add_argument("--streams", default="1,2,4,8", help="concurrent client streams to measure")
    parser.add_argument("--frames", type=int, default=100, help="frames per stream (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up frames per stream (not measured)")
    parser.add_argument("--size", type=int, default=256, help="frame side (square frames)")
    parser.add_argument("--depth", type=int, default=2, help="frames in flight per stream")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (both sides)")
    parser.add_argument("--instances", type=int, default=1, help="server model instances")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--queue-delay-us", type=int, default=2000)
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--url", default=None, help="use this running server instead of starting one")
    parser.add_argument("--server-python", default=str(REPO / ".venv-serve" / "bin" / "python"))
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument("--equality-frames", type=int, default=4, help="float32 frames compared server vs in-process")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args(argv)
    counts = [int(s) for s in args.streams.split(",") if s.strip()]

    rows: list[Row] = []
    with Restorer.open(args.model, precision=args.precision, threads=args.threads) as restorer:
        for streams in counts:
            rows.append(run_streams("in-process", lambda: restorer.stream(channel_order="RGB", depth=args.depth),
                                    streams, args.frames, args.size, args.depth, args.warmup))
            print(f"in-process {streams} stream(s): {rows[-1].fps:.1f} FPS", file=sys.stderr)
        server = None
        if args.url is None:
            python = Path(args.server_python)
            if not python.is_file():
                raise SystemExit(f"serve_bench: {python} missing; run scripts/setup_serve.sh or pass --url")
            server = Server(python, args.model, args)
        url = args.url or server.url  # type: ignore[union-attr]
        try:
            settings = RemoteSettings(timeout_s=60.0)
            with RemoteRestorer(url, settings=settings) as client:
                for streams in counts:
                    rows.append(run_streams("served", lambda: client.stream(channel_order="RGB", depth=args.depth),
                                            streams, args.frames, args.size, args.depth, args.warmup))
                    print(f"served {streams} stream(s): {rows[-1].fps:.1f} FPS", file=sys.stderr)
                diffs = [float(np.abs(client.restore(f) - restorer.restore(f)).max())
                         for f in make_frames(args.equality_frames, args.size, seed=99, dtype=np.float32)]
                info = client.info()
        finally:
            if server is not None:
                server.stop()
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "model": str(args.model), "server": info.get("server", {}).get("restorer"), "size": args.size,
        "settings": {k: v for k, v in vars(args).items() if k not in ("json_out",)},
        "rows": [asdict(r) for r in rows], "max_abs_float32": max(diffs) if diffs else None,
    }
    print(table(rows))
    print(f"server vs in-process, float32 frames: max abs difference {result['max_abs_float32']:.2e}")
    if args.json_out:
        atomic_write_json(args.json_out, result)
    return 0 if not diffs or max(diffs) <= 1e-6 or args.precision != "fp32" else 1


if __name__ == "__main__":
    sys.exit(main())
