"""ndr-serve: serve an export folder with a real Triton server (PyTriton), and
ndr-triton-repo: write a Triton model repository of an export folder. Torch-free.

``python -m ndr_edge.runtime.serve_cli EXPORT ...`` is ``ndr-serve EXPORT ...``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

import click

from ndr_edge.artifact import atomic_write_json
from ndr_edge.cli.common import one_line_errors
from ndr_edge.errors import BackendUnavailableError, InputError
from ndr_edge.export.variants import BACKEND_CHOICES, DEFAULT_OVERLAP, DEFAULT_TILE, PRECISIONS
from ndr_edge.runtime.tiling import TileConfig

SERVE = "ndr-serve"
REPO = "ndr-triton-repo"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

SERVE_EXAMPLES = """
\b
Examples:
  # the fp32 ONNX model of an export folder on 127.0.0.1 (HTTP 8000, gRPC 8001, metrics 8002)
  ndr-serve export/
  # two model instances, batches of up to 8 frames across cameras, on every interface
  ndr-serve export/ --instances 2 --max-batch-size 8 --max-queue-delay-us 2000 --host 0.0.0.0
  # a TensorRT engine, 1024 px tiles for 4K frames
  ndr-serve export/ --backend tensorrt --precision fp16 --tile 1024
\b
Clients: RemoteRestorer("grpc://HOST:8001") (ndr_edge.runtime.remote), any Triton client,
examples/many_cameras.py. Set up the interpreter first: scripts/setup_serve.sh, then
.venv-serve/bin/ndr-serve (PyTriton does not run on every CPython; see the README).
"""

REPO_EXAMPLES = """
\b
Examples:
  ndr-triton-repo export/                         # -> export/triton/, every ONNX variant and engine
  ndr-triton-repo export/ -o /srv/models --variants onnx-fp16,engine-fp16 --instances 2
  ndr-triton-repo export/ --kind cpu              # ONNX models on the CPU (no engines)
\b
Then: docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
        -v $PWD/export/triton:/models:ro nvcr.io/nvidia/tritonserver:<release>-py3 \\
        tritonserver --model-repository=/models
"""


def _int_list(text: str | None, option: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{option} {text!r}: give integers separated by commas, e.g. 4,8") from None


def _size(text: str, option: str) -> tuple[int, int] | None:
    if text.lower() in ("none", "off", "0"):
        return None
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise InputError(f"{option} {text!r}: give HxW (e.g. 256x256) or none") from None
    return h, w


# -- ndr-serve ------------------------------------------------------------------------------
@click.command(epilog=SERVE_EXAMPLES, context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; the default is this machine only).")
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", type=int, default=8002, show_default=True,
              help="Prometheus metrics at /metrics; 0 turns them off.")
@click.option("--model-name", "model_name", default="ndr", show_default=True,
              help="Served model name (uint8 frames; NAME_float32 / NAME_uint16 for those dtypes).")
@click.option("--dtypes", default="uint8,float32", show_default=True,
              help="Frame dtypes served, from uint8,uint16,float32 (one Triton model each).")
@click.option("--instances", type=click.IntRange(1), default=1, show_default=True,
              help="Model instances (each its own backend session or engine), run concurrently.")
@click.option("--max-batch-size", type=click.IntRange(1), default=8, show_default=True,
              help="Requests one instance takes at once (Triton's dynamic batching across streams).")
@click.option("--max-queue-delay-us", type=click.IntRange(0), default=2000, show_default=True,
              help="How long a request may wait for others to fill a batch.")
@click.option("--preferred-batch-sizes", default=None, help="Dynamic batcher's preferred sizes, e.g. 4,8.")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--providers", help="ONNX Runtime providers in order, e.g. cuda,cpu.")
@click.option("--threads", type=click.IntRange(1), default=None, help="ONNX Runtime intra-op threads per instance.")
@click.option("--tile", type=click.IntRange(0), default=None,
              help=f"Tile side for frames larger than it (default {DEFAULT_TILE} or the engine's max); 0: never tile.")
@click.option("--overlap", type=click.IntRange(0), default=DEFAULT_OVERLAP, show_default=True)
@click.option("--tile-batch", type=click.IntRange(1), default=1, show_default=True)
@click.option("--max-pixels", type=click.IntRange(1), default=1 << 25, show_default=True,
              help="Refuse frames with more pixels than this.")
@click.option("--device", type=click.IntRange(0), default=0, show_default=True, help="CUDA device index.")
@click.option("--log-file", default=None, help="tritonserver's log (default: a file in the temp folder; - : console).")
@click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
              help="Write the URLs as JSON here once the models are ready (for scripts).")
@click.option("--startup-timeout", type=click.FloatRange(1), default=120.0, show_default=True,
              help="Seconds to wait for the server and models to be ready.")
@click.option("-v", "--verbose", count=True, help="tritonserver's verbose log level.")
@one_line_errors(SERVE)
def serve_main(model: str, host: str, http_port: int, grpc_port: int, metrics_port: int, model_name: str, dtypes: str,
               instances: int, max_batch_size: int, max_queue_delay_us: int, preferred_batch_sizes: str | None,
               backend: str, precision: str, providers: str | None, threads: int | None, tile: int | None,
               overlap: int, tile_batch: int, max_pixels: int, device: int, log_file: str | None,
               ready_file: str | None, startup_timeout: float, verbose: int) -> None:
    """Serve MODEL (an export folder, an .onnx file or an .engine) with Triton Inference
    Server: HTTP and gRPC, dynamic batching across clients, Prometheus metrics. Stops cleanly
    on Ctrl-C or SIGTERM."""
    from ndr_edge.runtime.serve import RestoreServer, ServeSettings, check_ports_free, require_pytriton

    settings = ServeSettings(
        host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port, model=model_name,
        dtypes=tuple(d.strip() for d in dtypes.split(",") if d.strip()), instances=instances,
        max_batch_size=max_batch_size, max_queue_delay_us=max_queue_delay_us,
        preferred_batch_sizes=_int_list(preferred_batch_sizes, "--preferred-batch-sizes"), max_pixels=max_pixels,
        log_file=log_file, log_verbose=verbose, startup_timeout_s=startup_timeout,
    ).validate()
    require_pytriton()
    ports = {"--http-port": http_port, "--grpc-port": grpc_port, **({"--metrics-port": metrics_port}
                                                                     if metrics_port else {})}
    check_ports_free(host, ports)
    tiling = None
    if tile is not None and tile > 0:
        tiling = TileConfig(tile=tile, overlap=overlap, batch=tile_batch)
    elif tile is None and (overlap != DEFAULT_OVERLAP or tile_batch != 1):
        tiling = TileConfig(tile=DEFAULT_TILE, overlap=overlap, batch=tile_batch)
    provider_list = [p for p in providers.split(",") if p.strip()] if providers else None

    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with RestoreServer.open(model, settings, backend=backend, precision=precision, providers=provider_list,
                                tiling=tiling, auto_tile=tile != 0, device=device, threads=threads) as server:
            server.start(abort=stop)
            urls = settings.urls()
            first = server.restorers[0]
            click.echo(f"{SERVE}: {first.backend.describe()} x{instances}, tiles {first.tiling.tile}px; models "
                       f"{', '.join(server.served_models())}; {urls['grpc']} {urls['http']}"
                       + (f" metrics {urls['metrics']}" if "metrics" in urls else "")
                       + (f"; tritonserver log {server.log_path}" if server.log_path else ""), err=True)
            if ready_file:
                atomic_write_json(ready_file, {"urls": urls, "models": server.served_models(),
                                               "pid": os.getpid(), "started_at": time.time()})
            outcome = server.wait(stop)
            counts = server.info().counts
        served = sum(c["frames"] for c in counts)
        refused = sum(c["refused"] for c in counts)
        if outcome == "died":
            raise BackendUnavailableError(f"the Triton server stopped unexpectedly after {served} frames; see "
                                          f"{server.log_path or 'its log above'}")
        click.echo(f"{SERVE}: stopped ({', '.join(received) or 'asked'}); {served} frames served, {refused} requests "
                   "refused", err=True)
    except KeyboardInterrupt:
        click.echo(f"{SERVE}: stopped during startup ({', '.join(received) or 'interrupted'})", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- ndr-triton-repo ------------------------------------------------------------------------
@click.command(epilog=REPO_EXAMPLES, context_settings=CONTEXT)
@click.argument("export_dir", type=click.Path())
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None,
              help="Repository folder (default EXPORT/triton); replaced only if ndr-edge wrote it.")
@click.option("--prefix", default="ndr", show_default=True, help="Model names are PREFIX-<variant>.")
@click.option("--variants", default=None, help="Manifest variants to include, e.g. onnx-fp16,engine-fp16 (default all).")
@click.option("--max-batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--preferred-batch-sizes", default="4,8", show_default=True)
@click.option("--max-queue-delay-us", type=click.IntRange(0), default=2000, show_default=True)
@click.option("--instances", type=click.IntRange(1), default=1, show_default=True, help="Instances per GPU (or CPU).")
@click.option("--kind", type=click.Choice(("gpu", "cpu")), default="gpu", show_default=True,
              help="Where the ONNX models run (engines always run on the GPU).")
@click.option("--onnx-accelerator", type=click.Choice(("tensorrt", "cuda", "none")), default="tensorrt",
              show_default=True, help="ONNX on GPU: TensorRT EP at the graph's precision, or the CUDA EP only.")
@click.option("--warmup", default="256x256", show_default=True, help="Zero-frame warm-up size HxW, or none.")
@click.option("--max-side", type=click.IntRange(8), default=2048, show_default=True,
              help="Largest H/W of the TensorRT EP's profile.")
@click.option("--copy", is_flag=True, help="Copy model files (default: hard links where possible).")
@click.option("--no-validate", is_flag=True, help="Skip parsing each config with Triton's ModelConfig (needs "
              "tritonclient).")
@click.option("--triton-release", default="24.12", show_default=True,
              help="NGC release for the printed docker line (match the TensorRT that built the engines).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Also write a JSON summary.")
@one_line_errors(REPO)
def repo_main(export_dir: str, output: str | None, prefix: str, variants: str | None, max_batch_size: int,
              preferred_batch_sizes: str, max_queue_delay_us: int, instances: int, kind: str, onnx_accelerator: str,
              warmup: str, max_side: int, copy: bool, no_validate: bool, triton_release: str,
              json_out: str | None) -> None:
    """Write a Triton model repository of EXPORT_DIR (an ndr-export folder): one model per
    ONNX variant (onnxruntime backend) and per TensorRT engine (tensorrt backend), each with
    a validated config.pbtxt."""
    from ndr_edge.runtime.triton_repo import TritonRepoSettings, docker_command, write_repository

    settings = TritonRepoSettings(
        prefix=prefix, variants=tuple(v.strip() for v in variants.split(",") if v.strip()) if variants else None,
        max_batch_size=max_batch_size,
        preferred_batch_sizes=tuple(b for b in _int_list(preferred_batch_sizes, "--preferred-batch-sizes")
                                    if b <= max_batch_size),
        max_queue_delay_us=max_queue_delay_us, instances=instances, kind=kind, onnx_accelerator=onnx_accelerator,
        warmup=_size(warmup, "--warmup"), max_side=max_side, link=not copy,
    )
    repo = write_repository(export_dir, output, settings, validate=not no_validate)
    click.echo(f"{REPO}: {repo.summary()}")
    for note in repo.notes():
        click.echo(f"{REPO}: note: {note}")
    has_gpu = kind == "gpu" or any(m.backend == "tensorrt" for m in repo.models)
    command = docker_command(repo.path, triton_release, gpus=has_gpu)
    click.echo(f"{REPO}: serve it with: {command}")
    if json_out:
        atomic_write_json(json_out, {"repository": str(repo.path), "validated": repo.validated,
                                     "models": [{"name": m.name, "backend": m.backend, "variant": m.variant,
                                                 "files": m.sources} for m in repo.models],
                                     "notes": repo.notes(), "docker": command})


if __name__ == "__main__":
    serve_main()
