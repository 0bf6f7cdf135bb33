"""The served runtime behind ``ndr-serve``: a real Triton Inference Server around
:class:`~.restorer.Restorer` instances, through PyTriton (NVIDIA's Python front end to
Triton; the ``nvidia-pytriton`` wheel bundles ``tritonserver`` with its Python backend).

Triton takes HTTP/gRPC requests from any number of clients, queues them and hands each
model instance a dynamic batch of requests; the instance groups the frames of that batch by
size and runs each group as one model batch (frames larger than a tile are tiled, so any
size works). Every backend the runtime has works here (ONNX Runtime on CPU/GPU, TensorRT).

The protocol (what :class:`~.remote.RemoteRestorer` speaks; any Triton client works):

- model ``<model>`` takes uint8 frames, ``<model>_uint16`` / ``<model>_float32`` (float on
  [0, 1]) the other dtypes, for the dtypes served (``--dtypes``);
- input ``frame``: ``[batch, H, W, 3]`` in that dtype; Triton itself refuses another dtype,
  rank or channel count with an error naming it;
- request parameters: ``channel_order`` (``RGB``, the default, or ``BGR``), and the
  tiling of :meth:`Restorer.restore`: ``tile`` (0: never tile, N: N-px tiles), ``overlap``,
  ``tile_batch``, ``always_tile`` (bool); without them the server's tiling applies;
- outputs ``frame`` (the restored frames, same dtype, shape and channel order) and
  ``error`` (``[batch, 1]`` bytes, empty when restored). A request whose frames cannot be
  restored (NaN, too large, a bad parameter) gets its message there, and the other
  requests of the same dynamic batch -- other cameras' frames -- are restored normally;
- model ``<model>_info`` (no batching) answers ``query`` with the server's JSON info.

PyTriton needs a CPython with a working Python-backend stub; see ``scripts/setup_serve.sh``
(it makes ``.venv-serve`` from Debian's ``/usr/bin/python3``). Importing this module imports
neither PyTriton nor a backend; :meth:`RestoreServer.start` does.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.errors import BackendUnavailableError, InputError, NDREdgeError, first_line
from ndr_edge.frames import check_channel_order, check_finite, check_frame
from ndr_edge.runtime.closing import Closing
from ndr_edge.runtime.restorer import Restorer
from ndr_edge.runtime.tiling import TileConfig

DEFAULT_MODEL = "ndr"
FRAME_DTYPES: dict[str, type[np.generic]] = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32}
DEFAULT_DTYPES = ("uint8", "float32")
FRAME_TENSOR = "frame"
ERROR_TENSOR = "error"
INFO_SUFFIX = "_info"
INFO_INPUT = "query"
INFO_OUTPUT = "info"
REQUEST_PARAMETERS = ("channel_order", "tile", "overlap", "tile_batch", "always_tile")
DEFAULT_MAX_PIXELS = 1 << 25  # 33.5 MP: an 8K UHD frame
SETUP_HINT = ("run scripts/setup_serve.sh and start the server with .venv-serve/bin/ndr-serve (PyTriton needs a "
              "CPython whose multiprocessing matches its Python-backend stub, e.g. Debian's /usr/bin/python3)")
LOG = logging.getLogger("ndr_edge.serve")


def model_name_for(model: str, dtype: str) -> str:
    """The served model that takes frames of ``dtype``: ``ndr``, ``ndr_uint16``, ``ndr_float32``."""
    return model if dtype == "uint8" else f"{model}_{dtype}"


def info_model_name(model: str) -> str:
    return model + INFO_SUFFIX


@dataclass(frozen=True)
class ServeSettings:
    """How ``ndr-serve`` serves. ``host``: the address HTTP, gRPC and metrics bind to
    (127.0.0.1 by default: reachable from this machine only; ``0.0.0.0`` for the network).
    ``metrics_port``: Prometheus metrics (``/metrics``; 0 disables them). ``model``: the base
    model name; ``dtypes``: the frame dtypes served (one Triton model each).
    ``instances``: model instances (each its own Restorer, so its own backend session or
    engine), run concurrently. ``max_batch_size`` / ``max_queue_delay_us`` /
    ``preferred_batch_sizes``: Triton's dynamic batcher -- how many requests one instance
    takes at once and how long the queue waits to fill a batch (latency for throughput).
    ``max_pixels``: frames larger than this are refused (memory bound per request).
    ``exit_timeout_s``: how long shutdown waits for requests in flight. ``log_file``: where
    tritonserver logs (None: a file in the temp folder; ``"-"``: the console).
    ``startup_timeout_s``: how long to wait for the server and models to be ready."""

    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    model: str = DEFAULT_MODEL
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    instances: int = 1
    max_batch_size: int = 8
    max_queue_delay_us: int = 2000
    preferred_batch_sizes: tuple[int, ...] = ()
    max_pixels: int = DEFAULT_MAX_PIXELS
    exit_timeout_s: int = 5
    log_file: str | None = None
    log_verbose: int = 0
    startup_timeout_s: float = 120.0

    def validate(self) -> ServeSettings:
        ports = {"--http-port": self.http_port, "--grpc-port": self.grpc_port}
        if self.metrics_port:
            ports["--metrics-port"] = self.metrics_port
        for option, port in ports.items():
            if not 0 < port < 65536:
                raise InputError(f"{option} {port}: not a TCP port (1-65535)")
        if len(set(ports.values())) != len(ports):
            raise InputError(f"ports must differ: {', '.join(f'{k} {v}' for k, v in ports.items())}")
        if not self.model or not all(c.isalnum() or c in "-_." for c in self.model):
            raise InputError(f"model name {self.model!r}: use letters, digits, '-', '_' or '.'")
        unknown = [d for d in self.dtypes if d not in FRAME_DTYPES]
        if unknown or not self.dtypes:
            raise InputError(f"frame dtypes {','.join(self.dtypes) or '(none)'}: choose from {','.join(FRAME_DTYPES)}")
        if self.instances < 1:
            raise InputError(f"--instances {self.instances} must be at least 1")
        if self.max_batch_size < 1:
            raise InputError(f"--max-batch-size {self.max_batch_size} must be at least 1")
        if self.max_queue_delay_us < 0:
            raise InputError(f"--max-queue-delay-us {self.max_queue_delay_us} must not be negative")
        if any(not 1 <= b <= self.max_batch_size for b in self.preferred_batch_sizes):
            raise InputError(f"preferred batch sizes {list(self.preferred_batch_sizes)} must be between 1 and "
                             f"--max-batch-size {self.max_batch_size}")
        if self.max_pixels < 1:
            raise InputError(f"--max-pixels {self.max_pixels} must be positive")
        return self

    def urls(self) -> dict[str, str]:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        urls = {"grpc": f"grpc://{host}:{self.grpc_port}", "http": f"http://{host}:{self.http_port}"}
        if self.metrics_port:
            urls["metrics"] = f"http://{host}:{self.metrics_port}/metrics"
        return urls


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """InputError naming the option when a port cannot be bound on ``host`` (in use, or not
    an address of this machine); checked before tritonserver starts, which would otherwise
    fail with a long log."""
    for option, port in ports.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise InputError(f"port {port} on {host} is already in use ({option}); stop what listens there "
                                     f"or choose another {option}") from exc
                raise InputError(f"cannot listen on {host}:{port} ({option}): {exc.strerror or exc}") from exc


def require_pytriton() -> Any:
    """The ``pytriton.triton`` module, or BackendUnavailableError saying how to get it."""
    try:
        import pytriton.triton as triton_module
    except ImportError as exc:
        raise BackendUnavailableError(
            f"PyTriton is not installed in this interpreter ({sys.executable}); {SETUP_HINT}"
        ) from exc
    return triton_module


# -- request handling -------------------------------------------------------------------
def parse_parameters(parameters: dict[str, Any] | None) -> tuple[str, TileConfig | bool | None, bool]:
    """(channel order, the ``tile`` argument of Restorer.restore, explicit tiling given)."""
    params = dict(parameters or {})
    unknown = sorted(set(params) - set(REQUEST_PARAMETERS))
    if unknown:
        raise InputError(f"unknown request parameter(s) {', '.join(unknown)}; this server takes "
                         f"{', '.join(REQUEST_PARAMETERS)}")
    order = params.get("channel_order", "RGB")
    check_channel_order(order if isinstance(order, str) else repr(order), "request parameter channel_order")

    def integer(name: str) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(str(value))
            except ValueError:
                raise InputError(f"request parameter {name} must be an integer, got {value!r}") from None
        return int(value)

    tile, overlap, batch = integer("tile"), integer("overlap"), integer("tile_batch")
    always = params.get("always_tile", False)
    if not isinstance(always, bool):
        always = str(always).lower() in ("1", "true", "yes")
    if tile == 0:
        return order, False, True
    if tile is not None:
        config = TileConfig(tile=tile, **({"overlap": overlap} if overlap is not None else {}),
                            **({"batch": batch} if batch is not None else {}))
        return order, config, True
    if overlap is not None or batch is not None:
        raise InputError("request parameters overlap/tile_batch need a tile size (parameter tile)")
    return order, (True if always else None), bool(always)


def _error_array(messages: Sequence[str]) -> np.ndarray:
    return np.array([[m.encode("utf-8", "replace")] for m in messages], dtype=np.object_)


@dataclass
class ServedCounts:
    requests: int = 0
    frames: int = 0
    refused: int = 0
    model_batches: int = 0
    batched_frames: int = 0
    tiled_frames: int = 0


class Worker:
    """One model instance: a Restorer, the lock that serialises its backend, and what it did.

    :meth:`handle` takes a dynamic batch of requests (PyTriton's request objects or anything
    with ``.data`` and ``.parameters``) and returns one response dict per request."""

    def __init__(self, restorer: Restorer, max_batch: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.restorer = restorer
        self.max_batch = max(1, max_batch)
        self.max_pixels = max_pixels
        self.lock = threading.Lock()
        self.counts = ServedCounts()
        self._count_lock = threading.Lock()

    def _batch_limit(self) -> int:
        limits = self.restorer.backend.input_limits()
        return max(1, min(self.max_batch, limits.max[0])) if limits is not None else self.max_batch

    def _check(self, frames: Any, dtype: type[np.generic]) -> np.ndarray:
        if not isinstance(frames, np.ndarray):
            raise InputError(f"input {FRAME_TENSOR!r} is missing")
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise InputError(f"input {FRAME_TENSOR!r}: expected [batch, H, W, 3], got {list(frames.shape)}")
        if frames.dtype != dtype:
            raise InputError(f"input {FRAME_TENSOR!r}: expected {np.dtype(dtype).name}, got {frames.dtype}")
        if frames.shape[1] * frames.shape[2] > self.max_pixels:
            raise InputError(f"frame of {frames.shape[2]}x{frames.shape[1]} px is larger than this server's limit of "
                             f"{self.max_pixels} px (--max-pixels)")
        for frame in frames:
            check_finite(check_frame(frame))
        return frames

    def handle(self, requests: Sequence[Any], dtype: type[np.generic]) -> list[dict[str, np.ndarray]]:
        restorer = self.restorer
        errors: list[str | None] = [None] * len(requests)
        results: list[list[np.ndarray | None]] = [[] for _ in requests]
        whole: dict[tuple[int, ...], list[tuple[int, int, Any]]] = {}
        tiled: list[tuple[int, int, np.ndarray, str, TileConfig]] = []
        frame_counts = [0] * len(requests)
        for i, request in enumerate(requests):
            try:
                frames = self._check(request.data.get(FRAME_TENSOR), dtype)
                frame_counts[i] = frames.shape[0]
                order, tile, _ = parse_parameters(getattr(request, "parameters", None))
                if isinstance(tile, TileConfig):
                    tile = restorer.check_tiling(tile)
                results[i] = [None] * frames.shape[0]
                for j, frame in enumerate(frames):
                    config = restorer.resolve_tiling(frame.shape, tile)
                    if config is None:
                        prepared = restorer.prepare(frame, order)
                        whole.setdefault(prepared.batch.shape, []).append((i, j, prepared))
                    else:
                        tiled.append((i, j, frame, order, config))
            except NDREdgeError as exc:
                errors[i] = str(exc)
        limit = self._batch_limit()
        batches = 0
        for members in whole.values():
            for start in range(0, len(members), limit):
                chunk = [m for m in members[start:start + limit] if errors[m[0]] is None]
                if not chunk:
                    continue
                batch = chunk[0][2].batch if len(chunk) == 1 else np.concatenate([m[2].batch for m in chunk])
                try:
                    with self.lock:
                        output = restorer.backend.infer(batch)
                    batches += 1
                    for k, (i, j, prepared) in enumerate(chunk):
                        results[i][j] = restorer.finish(prepared, output[k:k + 1])
                except NDREdgeError as exc:
                    for i, _, _ in chunk:
                        errors[i] = str(exc)
        for i, j, frame, order, config in tiled:
            if errors[i] is not None:
                continue
            try:
                with self.lock:
                    results[i][j] = restorer.restore(frame, order, tile=config)
            except NDREdgeError as exc:
                errors[i] = str(exc)
        responses = []
        for i, request in enumerate(requests):
            count = frame_counts[i] or self._leading(request)
            if errors[i] is None:
                frames_out = np.stack(results[i])  # type: ignore[arg-type]
                responses.append({FRAME_TENSOR: frames_out, ERROR_TENSOR: _error_array([""] * count)})
            else:
                LOG.info("refused a request: %s", errors[i])
                responses.append({FRAME_TENSOR: np.zeros((count, 1, 1, 3), dtype=dtype),
                                  ERROR_TENSOR: _error_array([errors[i] or ""] * count)})
        with self._count_lock:
            c = self.counts
            c.requests += len(requests)
            c.frames += sum(frame_counts[i] for i in range(len(requests)) if errors[i] is None)
            c.refused += sum(1 for e in errors if e is not None)
            c.model_batches += batches
            c.batched_frames += sum(len(m) for m in whole.values())
            c.tiled_frames += len(tiled)
        return responses

    @staticmethod
    def _leading(request: Any) -> int:
        frames = request.data.get(FRAME_TENSOR) if hasattr(request, "data") else None
        return int(frames.shape[0]) if isinstance(frames, np.ndarray) and frames.ndim >= 1 and frames.shape[0] else 1


# -- the server -------------------------------------------------------------------------
@dataclass
class ServerInfo:
    """What ``<model>_info`` answers (JSON)."""

    models: dict[str, str]  # served model name -> frame dtype
    restorer: dict[str, Any]
    settings: dict[str, Any]
    started_at: float
    counts: list[dict[str, int]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class RestoreServer(Closing):
    """A Triton server (through PyTriton) around ``restorers`` (one per model instance).

    >>> server = RestoreServer.open("export/", ServeSettings(instances=2))
    >>> server.start()                   # HTTP, gRPC and metrics are up, models ready
    >>> server.wait(stop_event)          # until the event is set or the server dies
    >>> server.close()                   # stops tritonserver, frees the backends
    """

    def __init__(self, restorers: Sequence[Restorer], settings: ServeSettings | None = None) -> None:
        self.settings = (settings or ServeSettings()).validate()
        if len(restorers) != self.settings.instances:
            raise InputError(f"{len(restorers)} restorers for {self.settings.instances} instances; give one each")
        self.restorers = list(restorers)
        self.workers = [Worker(r, self.settings.max_batch_size, self.settings.max_pixels) for r in self.restorers]
        self.log_path: Path | None = None
        self._triton: Any = None
        self._keeper: tuple[threading.Thread, threading.Event] | None = None
        self._started_at = 0.0
        self._closed = False

    @classmethod
    def open(cls, model: str | os.PathLike[str], settings: ServeSettings | None = None, *, backend: str = "auto",
             precision: str = "fp32", providers: Sequence[str] | None = None, tiling: TileConfig | None = None,
             auto_tile: bool = True, device: int = 0, threads: int | None = None) -> RestoreServer:
        """Open ``settings.instances`` Restorers of ``model`` (export folder, .onnx, .engine)."""
        settings = (settings or ServeSettings()).validate()
        restorers: list[Restorer] = []
        try:
            for _ in range(settings.instances):
                restorers.append(Restorer.open(model, backend=backend, precision=precision,
                                               providers=list(providers) if providers else None, tiling=tiling,
                                               auto_tile=auto_tile, device=device, threads=threads))
            return cls(restorers, settings)
        except BaseException:
            for restorer in restorers:
                restorer.close()
            raise

    # -- what is served ------------------------------------------------------------------
    def served_models(self) -> dict[str, str]:
        return {model_name_for(self.settings.model, d): d for d in self.settings.dtypes}

    def info(self) -> ServerInfo:
        settings = asdict(self.settings)
        return ServerInfo(models=self.served_models(), restorer=self.restorers[0].info(), settings=settings,
                          started_at=self._started_at, counts=[asdict(w.counts) for w in self.workers])

    def _handler(self, worker: Worker, dtype: type[np.generic]) -> Callable[[list[Any]], list[dict[str, np.ndarray]]]:
        def infer(requests: list[Any]) -> list[dict[str, np.ndarray]]:
            return worker.handle(requests, dtype)

        infer.__name__ = f"restore_{np.dtype(dtype).name}"
        return infer

    def _info_handler(self) -> Callable[[list[Any]], list[dict[str, np.ndarray]]]:
        def infer(requests: list[Any]) -> list[dict[str, np.ndarray]]:
            payload = np.array([self.info().to_json().encode()], dtype=np.object_)
            return [{INFO_OUTPUT: payload} for _ in requests]

        return infer

    # -- lifetime --------------------------------------------------------------------------
    def _log_file(self) -> Path | None:
        if self.settings.log_file == "-":
            return None
        if self.settings.log_file:
            return Path(self.settings.log_file)
        fd, name = tempfile.mkstemp(prefix="ndr-serve-tritonserver-", suffix=".log")
        os.close(fd)
        return Path(name)

    def start(self, abort: threading.Event | None = None) -> None:
        """Start tritonserver with the models bound; returns once they are ready (or raises
        KeyboardInterrupt when ``abort`` is set meanwhile, e.g. by a SIGTERM handler)."""
        if self._closed:
            raise InputError("server was closed; open a new one")
        if self._triton is not None:
            return
        settings = self.settings
        triton_module = require_pytriton()
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

        ports = {"--http-port": settings.http_port, "--grpc-port": settings.grpc_port}
        if settings.metrics_port:
            ports["--metrics-port"] = settings.metrics_port
        check_ports_free(settings.host, ports)
        self.log_path = self._log_file()
        if settings.log_verbose == 0:
            logging.getLogger("pytriton").setLevel(logging.WARNING)
            # PyTriton leaves shared-memory segments to multiprocessing's resource trackers,
            # which unlink them at exit and warn about each: quiet them (this process's
            # tracker and those of the backend stubs inherit the variable).
            quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
            current = os.environ.get("PYTHONWARNINGS", "")
            if quiet not in current:
                os.environ["PYTHONWARNINGS"] = f"{current},{quiet}" if current else quiet
        config = triton_module.TritonConfig(
            http_address=settings.host, http_port=settings.http_port,
            grpc_address=settings.host, grpc_port=settings.grpc_port,
            allow_metrics=bool(settings.metrics_port), allow_cpu_metrics=bool(settings.metrics_port),
            allow_gpu_metrics=False,
            metrics_address=settings.host if settings.metrics_port else None,
            metrics_port=settings.metrics_port or None,
            exit_timeout_secs=settings.exit_timeout_s, log_verbose=settings.log_verbose,
            log_file=self.log_path,
        )
        triton = triton_module.Triton(config=config)
        try:
            batcher = DynamicBatcher(max_queue_delay_microseconds=settings.max_queue_delay_us,
                                     preferred_batch_size=list(settings.preferred_batch_sizes) or None)
            for name, dtype_name in self.served_models().items():
                dtype = FRAME_DTYPES[dtype_name]
                triton.bind(
                    model_name=name,
                    infer_func=[self._handler(w, dtype) for w in self.workers],
                    inputs=[Tensor(name=FRAME_TENSOR, dtype=dtype, shape=(-1, -1, 3))],
                    outputs=[Tensor(name=FRAME_TENSOR, dtype=dtype, shape=(-1, -1, 3)),
                             Tensor(name=ERROR_TENSOR, dtype=np.bytes_, shape=(1,))],
                    config=ModelConfig(max_batch_size=settings.max_batch_size, batcher=batcher),
                    strict=False,
                )
            triton.bind(
                model_name=info_model_name(settings.model), infer_func=self._info_handler(),
                inputs=[Tensor(name=INFO_INPUT, dtype=np.bytes_, shape=(1,))],
                outputs=[Tensor(name=INFO_OUTPUT, dtype=np.bytes_, shape=(1,))],
                config=ModelConfig(batching=False),
            )
            self._run(triton, abort)
        except BaseException:
            _quiet_stop(triton)
            self._release_keeper()
            raise
        self._triton = triton
        self._started_at = time.time()

    def _run(self, triton: Any, abort: threading.Event | None) -> None:
        """Run ``triton.run()`` on a thread that lives as long as the server: PyTriton starts
        tritonserver with a parent-death signal, which Linux ties to the *thread* that
        started it, so that thread must outlive the server (it waits for :meth:`close`)."""
        outcome: list[BaseException | None] = []
        ready = threading.Event()
        release = threading.Event()

        def run() -> None:
            try:
                triton.run()
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome.append(exc)
            ready.set()
            release.wait()

        thread = threading.Thread(target=run, name="ndr-serve-triton", daemon=True)
        self._keeper = (thread, release)
        thread.start()
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while not ready.wait(0.2) and time.monotonic() < deadline:
            if abort is not None and abort.is_set():
                raise KeyboardInterrupt
        where = f"; tritonserver's log: {self.log_path}" if self.log_path else ""
        if not ready.is_set():
            raise BackendUnavailableError(f"Triton did not become ready within {self.settings.startup_timeout_s:.0f} s "
                                          f"with {sys.executable}{where}; if it hangs at startup, {SETUP_HINT}")
        error = outcome[0] if outcome else None
        if error is not None:
            if isinstance(error, NDREdgeError | KeyboardInterrupt):
                raise error
            raise BackendUnavailableError(f"Triton did not start ({type(error).__name__}: {first_line(error, 300)})"
                                          f"{where}") from error

    def _release_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            thread, release = keeper
            release.set()
            thread.join(5.0)

    @property
    def running(self) -> bool:
        return self._triton is not None and not self._closed

    def alive(self) -> bool:
        if self._triton is None:
            return False
        try:
            return bool(self._triton.is_alive())
        except Exception:  # noqa: BLE001 - a dead proxy raises; it is not alive
            return False

    def wait(self, stop: threading.Event, poll_s: float = 1.0) -> str:
        """Block until ``stop`` is set (returns ``"stopped"``) or the server dies (``"died"``)."""
        while not stop.wait(poll_s):
            if not self.alive():
                return "died"
        return "stopped"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        triton, self._triton = self._triton, None
        if triton is not None:
            _quiet_stop(triton)
        self._release_keeper()
        for restorer in self.restorers:
            restorer.close()


def _quiet_stop(triton: Any) -> None:
    try:
        triton.stop()
    except Exception as exc:  # noqa: BLE001 - shutting down; say it, go on
        LOG.warning("stopping Triton: %s", exc)


__all__ = [
    "DEFAULT_DTYPES",
    "DEFAULT_MODEL",
    "ERROR_TENSOR",
    "FRAME_DTYPES",
    "FRAME_TENSOR",
    "INFO_INPUT",
    "INFO_OUTPUT",
    "REQUEST_PARAMETERS",
    "RestoreServer",
    "ServeSettings",
    "ServedCounts",
    "ServerInfo",
    "Worker",
    "check_ports_free",
    "info_model_name",
    "model_name_for",
    "parse_parameters",
    "require_pytriton",
]
