"""A client with the Restorer's API for a model served by ``ndr-serve`` (Triton).

>>> from ndr_edge.runtime.remote import RemoteRestorer
>>> with RemoteRestorer("grpc://127.0.0.1:8001") as restorer:           # or http://...:8000
...     clean = restorer.restore(frame, channel_order="BGR")            # numpy in, numpy out
...     with restorer.stream(channel_order="BGR", depth=4) as stream:   # 4 requests in flight
...         for out in stream.run(frames): ...                          # results in order
...     print(stream.stats().line())

Frames are ``uint8`` / ``uint16`` / float HxWx3 as for :class:`~.restorer.Restorer`; each
dtype goes to the served model for it (``ndr``, ``ndr_uint16``, ``ndr_float32``; float16 /
float64 travel as float32 and come back in their dtype). The server converts the channel
order, pads, tiles and batches; the result has the input's dtype, shape and channel order.

Errors: a frame the server refuses raises :class:`~ndr_edge.errors.InputError` with the
server's message; a server that is not there, dies or does not answer raises
:class:`~ndr_edge.errors.BackendUnavailableError` within ``timeout_s`` (never a hang);
a model the server does not serve raises :class:`~ndr_edge.errors.ArtifactError`.
Needs ``tritonclient[grpc,http]`` (``pip install ndr-edge[remote]``), nothing else.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ndr_edge.errors import ArtifactError, BackendUnavailableError, InputError, NDREdgeError, StreamClosedError
from ndr_edge.frames import check_channel_order, check_finite, check_frame
from ndr_edge.runtime.closing import Closing, OrderedStream
from ndr_edge.runtime.serve import (
    DEFAULT_MODEL,
    ERROR_TENSOR,
    FRAME_TENSOR,
    INFO_INPUT,
    INFO_OUTPUT,
    info_model_name,
    model_name_for,
)
from ndr_edge.runtime.stats import LatencyStats, LatencySummary
from ndr_edge.runtime.tiling import TileConfig

PROTOCOLS = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
_WIRE_DTYPES = {np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16", np.dtype(np.float32): "float32",
                np.dtype(np.float16): "float32", np.dtype(np.float64): "float32"}
_TRITON_TYPES = {"uint8": "UINT8", "uint16": "UINT16", "float32": "FP32"}
# gRPC status codes worth another attempt: the server is (re)starting or the connection dropped
_TRANSIENT = ("UNAVAILABLE", "StatusCode.UNAVAILABLE", "503")


@dataclass(frozen=True)
class RemoteSettings:
    """``timeout_s``: the most a frame may take, all attempts together; then
    BackendUnavailableError. ``retries``: further attempts after a transient failure (the
    server unreachable or restarting, the connection dropped) -- never after a refusal or a
    timeout. ``retry_backoff_s``: the wait before the first retry, doubled after each.
    ``connect_timeout_s``: how long opening a connection may take (HTTP; gRPC connects
    within ``timeout_s``). ``check``: on open, verify the server is live and the model ready."""

    timeout_s: float = 10.0
    retries: int = 2
    retry_backoff_s: float = 0.1
    connect_timeout_s: float = 5.0
    check: bool = True

    def validate(self) -> RemoteSettings:
        if not self.timeout_s > 0:
            raise InputError(f"timeout {self.timeout_s} s must be positive")
        if self.retries < 0:
            raise InputError(f"retries {self.retries} must not be negative")
        if self.retry_backoff_s < 0 or not self.connect_timeout_s > 0:
            raise InputError("retry backoff must not be negative and the connect timeout must be positive")
        return self


def parse_url(url: str) -> tuple[str, str]:
    """``grpc://host:port`` / ``http://host:port`` / ``host:port`` (gRPC) -> (protocol, host:port)."""
    text = url.strip()
    if "://" not in text:
        text = "grpc://" + text
    parts = urlsplit(text)
    protocol = parts.scheme.lower()
    if protocol == "https" or protocol == "grpcs":
        raise InputError(f"{url}: TLS is not supported by this client; use grpc:// or http:// (or a TLS proxy)")
    if protocol not in PROTOCOLS:
        raise InputError(f"{url}: unknown protocol {parts.scheme!r}; use grpc://HOST:PORT or http://HOST:PORT")
    if not parts.hostname:
        raise InputError(f"{url}: no host; use grpc://HOST:PORT or http://HOST:PORT")
    try:
        port = parts.port or DEFAULT_PORTS[protocol]
    except ValueError as exc:
        raise InputError(f"{url}: bad port ({exc})") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return protocol, f"{host}:{port}"


def _import_client(protocol: str) -> Any:
    try:
        if protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except ImportError as exc:
        raise BackendUnavailableError(
            f"tritonclient[{protocol}] is not installed; pip install 'tritonclient[grpc,http]' (ndr-edge[remote])"
        ) from exc
    return module


def tile_parameters(tile: TileConfig | bool | None) -> dict[str, Any]:
    """Request parameters for the ``tile`` argument of :meth:`Restorer.restore`."""
    if tile is None:
        return {}
    if tile is False:
        return {"tile": 0}
    if tile is True:
        return {"always_tile": True}
    if isinstance(tile, TileConfig):
        return {"tile": tile.tile, "overlap": tile.overlap, "tile_batch": tile.batch}
    raise InputError(f"tile must be None, True, False or a TileConfig, got {tile!r}")


def _status(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    try:
        return str(status() if callable(status) else status or "")
    except Exception:  # noqa: BLE001 - the status is only a hint
        return ""


def _message(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    try:
        text = message() if callable(message) else message
    except Exception:  # noqa: BLE001
        text = None
    return " ".join(str(text or exc).split())


class _Connection:
    """One tritonclient client (not shared between threads: the HTTP client is not thread-safe)."""

    def __init__(self, protocol: str, address: str, settings: RemoteSettings) -> None:
        module = _import_client(protocol)
        self.protocol = protocol
        self.module = module
        if protocol == "grpc":
            self.client = module.InferenceServerClient(address)
        else:
            self.client = module.InferenceServerClient(address, connection_timeout=settings.connect_timeout_s,
                                                       network_timeout=settings.timeout_s)

    def close(self) -> None:
        with suppress(Exception):  # closing a dead connection
            self.client.close()


class _Connections:
    """One connection per thread (the HTTP client is not thread-safe), all closed together."""

    def __init__(self, protocol: str, address: str, settings: RemoteSettings) -> None:
        self.protocol, self.address, self.settings = protocol, address, settings
        self._local = threading.local()
        self._all: list[_Connection] = []
        self._lock = threading.Lock()
        self.closed = False

    def get(self) -> _Connection:
        if self.closed:
            raise StreamClosedError(f"remote {self.protocol}://{self.address}: client is closed; open a new one")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self.protocol, self.address, self.settings)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def drop(self) -> None:
        """Forget this thread's connection (after a transport failure a fresh one reconnects)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            conn.close()

    def close(self) -> None:
        self.closed = True
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()


class RemoteRestorer(Closing):
    """The Restorer API (``restore``, ``stream``, ``stats``, ``info``) over a served model."""

    def __init__(self, url: str, model: str = DEFAULT_MODEL, settings: RemoteSettings | None = None,
                 tile: TileConfig | bool | None = None) -> None:
        """``tile``: the tiling asked for when a call gives none (None: the server's)."""
        tile_parameters(tile)
        self.url = url
        self.model = model
        self.tile = tile
        self.settings = (settings or RemoteSettings()).validate()
        self.protocol, self.address = parse_url(url)
        _import_client(self.protocol)
        self._connections = _Connections(self.protocol, self.address, self.settings)
        self._ready: dict[str, bool] = {}
        self._stats = LatencyStats()
        self._closed = False
        if self.settings.check:
            self.check_ready()

    # -- connections ----------------------------------------------------------------------
    def connections(self) -> _Connections:
        """A fresh set of per-thread connections to this server (what a stream uses)."""
        return _Connections(self.protocol, self.address, self.settings)

    def describe(self) -> str:
        return f"remote {self.protocol}://{self.address} (model {self.model})"

    def __repr__(self) -> str:
        return f"RemoteRestorer({self.protocol}://{self.address}, model={self.model!r})"

    def _unavailable(self, what: str, exc: Exception | None = None) -> BackendUnavailableError:
        detail = f" ({_message(exc)[:200]})" if exc is not None else ""
        return BackendUnavailableError(f"{self.describe()}: {what}{detail}; is ndr-serve running there?")

    def check_ready(self, model: str | None = None, connections: _Connections | None = None) -> None:
        """BackendUnavailableError when no server answers within the timeout, ArtifactError
        when it does not serve ``model`` (default: the uint8 model)."""
        pool = connections or self._connections
        name = model or self.model
        deadline = time.monotonic() + self.settings.timeout_s
        last: Exception | None = None
        while True:
            conn = pool.get()
            try:
                kwargs = {"client_timeout": max(0.05, deadline - time.monotonic())} if conn.protocol == "grpc" else {}
                live = conn.client.is_server_live(**kwargs)
                if live and conn.client.is_model_ready(name, **kwargs):
                    self._ready[name] = True
                    return
                if live:
                    raise ArtifactError(f"{self.describe()}: the server has no model {name!r} ready; is it ndr-serve "
                                        f"with --model-name {self.model}?")
            except NDREdgeError:
                raise
            except Exception as exc:  # noqa: BLE001 - tritonclient/grpc/gevent raise many types
                last = exc
                pool.drop()
            if time.monotonic() + self.settings.retry_backoff_s >= deadline:
                raise self._unavailable(f"no server answered within {self.settings.timeout_s:g} s", last)
            time.sleep(max(self.settings.retry_backoff_s, 0.05))

    # -- one request ------------------------------------------------------------------------
    def _request(self, frame: np.ndarray, channel_order: str, tile: TileConfig | bool | None,
                 connections: _Connections | None = None) -> np.ndarray:
        pool = connections or self._connections
        check_frame(frame)
        check_channel_order(channel_order, "channel_order")
        check_finite(frame)
        wire = _WIRE_DTYPES[np.dtype(frame.dtype)]
        name = model_name_for(self.model, wire)
        if not self._ready.get(name) and name != self.model:
            try:
                self.check_ready(name, pool)
            except ArtifactError:
                raise InputError(f"{self.describe()}: the server does not take {frame.dtype} frames (no model "
                                 f"{name!r}); convert the frame or start ndr-serve with --dtypes including {wire}") \
                    from None
        payload = np.ascontiguousarray(frame if frame.dtype == np.dtype(wire) else frame.astype(wire))[None]
        parameters = {"channel_order": channel_order, **tile_parameters(tile)}
        settings = self.settings
        deadline = time.monotonic() + settings.timeout_s
        backoff = settings.retry_backoff_s
        attempt = 0
        while True:
            conn = pool.get()
            module = conn.module
            tensor = module.InferInput(FRAME_TENSOR, list(payload.shape), _TRITON_TYPES[wire])
            tensor.set_data_from_numpy(payload)
            outputs = [module.InferRequestedOutput(FRAME_TENSOR), module.InferRequestedOutput(ERROR_TENSOR)]
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError("deadline passed")
                if conn.protocol == "grpc":
                    result = conn.client.infer(name, [tensor], outputs=outputs, parameters=parameters,
                                               client_timeout=remaining)
                else:
                    result = conn.client.infer(name, [tensor], outputs=outputs, parameters=parameters)
                break
            except Exception as exc:  # noqa: BLE001 - sorted below
                status, message = _status(exc), _message(exc)
                if "NOT_FOUND" in status or "unknown model" in message.lower():
                    raise ArtifactError(f"{self.describe()}: the server has no model {name!r} ({message[:200]})") \
                        from None
                if "INVALID_ARG" in status or status == "400":
                    raise InputError(f"{self.describe()}: the server refused the frame: {message}") from None
                if "INTERNAL" in status or status == "500":
                    raise NDREdgeError(f"{self.describe()}: the server failed on this frame: {message[:300]}") \
                        from None
                timed_out = isinstance(exc, TimeoutError) or "DEADLINE_EXCEEDED" in status or "timed out" in \
                    message.lower() or "timeout" in type(exc).__name__.lower()
                pool.drop()
                if timed_out:
                    raise self._unavailable(f"no answer within {settings.timeout_s:g} s", exc) from None
                transient = any(t in status for t in _TRANSIENT) or isinstance(exc, OSError) or not status
                if not transient or attempt >= settings.retries or time.monotonic() + backoff >= deadline:
                    raise self._unavailable(f"request failed after {attempt + 1} attempt(s)", exc) from None
                time.sleep(backoff)
                backoff *= 2
                attempt += 1
        error = result.as_numpy(ERROR_TENSOR)
        if error is not None and error.size and error.flat[0]:
            text = error.flat[0]
            raise InputError(f"{self.describe()}: {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}")
        restored = result.as_numpy(FRAME_TENSOR)
        if restored is None or restored.shape != payload.shape:
            got = None if restored is None else list(restored.shape)
            raise ArtifactError(f"{self.describe()}: the server answered {got} for a {list(payload.shape)} frame; "
                                "is it an ndr-serve model?")
        out = restored[0]
        return out if out.dtype == frame.dtype else out.astype(frame.dtype)

    # -- the Restorer API ---------------------------------------------------------------------
    def restore(self, frame: np.ndarray, channel_order: str = "RGB", tile: TileConfig | bool | None = None) -> np.ndarray:
        """Restore one HxWx3 frame on the server; the result has its dtype, shape and channel
        order. ``tile`` as for :meth:`Restorer.restore` (the server's tiling by default)."""
        start = time.perf_counter()
        out = self._request(frame, channel_order, self.tile if tile is None else tile)
        self._stats.record(time.perf_counter() - start)
        return out

    def stream(self, channel_order: str = "RGB", tile: TileConfig | bool | None = None, depth: int = 4) -> RemoteStream:
        """A stream with ``depth`` requests in flight (push/pull or an iterator, in order)."""
        return RemoteStream(self, channel_order=channel_order, tile=self.tile if tile is None else tile, depth=depth)

    def stats(self) -> LatencySummary:
        """Latency and FPS of this client's :meth:`restore` calls (streams keep their own)."""
        return self._stats.summary()

    def reset_stats(self) -> None:
        self._stats.reset()

    def info(self) -> dict[str, Any]:
        """The server's info (served models, the restorer's backend and tiling, counts)."""
        conn = self._connections.get()
        module = conn.module
        query = module.InferInput(INFO_INPUT, [1], "BYTES")
        query.set_data_from_numpy(np.array([b"info"], dtype=np.object_))
        try:
            kwargs = {"client_timeout": self.settings.timeout_s} if conn.protocol == "grpc" else {}
            result = conn.client.infer(info_model_name(self.model), [query], **kwargs)
        except Exception as exc:  # noqa: BLE001
            self._connections.drop()
            raise self._unavailable("no server info", exc) from None
        raw = result.as_numpy(INFO_OUTPUT)
        data = json.loads(raw.flat[0]) if raw is not None and raw.size else {}
        return {"url": f"{self.protocol}://{self.address}", "model": self.model, "server": data}

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connections.close()


class RemoteStream(OrderedStream):
    """Ordered restoration over a :class:`RemoteRestorer` with ``depth`` requests in flight
    (each on its own connection), with :class:`~.stream.StreamRestorer`'s push/pull, run,
    stats and close. A bad frame is refused by :meth:`push`; a frame the server refuses or
    cannot answer raises at its :meth:`pull`, and the stream goes on."""

    def __init__(self, restorer: RemoteRestorer, channel_order: str = "RGB", tile: TileConfig | bool | None = None,
                 depth: int = 4) -> None:
        check_channel_order(channel_order, "channel_order")
        if depth < 1:
            raise InputError(f"stream depth must be at least 1, got {depth}")
        tile_parameters(tile)
        self.restorer = restorer
        self.channel_order = channel_order
        self.tile = tile
        self.depth = depth
        self._connections = restorer.connections()
        self._pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="ndr-remote")
        self._slots = threading.BoundedSemaphore(2 * depth)  # depth on the wire, depth queued
        self._pending: deque[tuple[float, Future[np.ndarray]]] = deque()
        self._stats = LatencyStats()
        self._pushed = 0
        self._pulled = 0
        self._closed = False

    def _run_one(self, frame: np.ndarray, pushed_at: float) -> np.ndarray:
        try:
            out = self.restorer._request(frame, self.channel_order, self.tile, self._connections)
        finally:
            self._slots.release()
        now = time.perf_counter()
        self._stats.record(now - pushed_at, done_at=now)
        return out

    def push(self, frame: np.ndarray) -> int:
        """Send one frame; returns its index. ``depth`` requests run at once and ``depth``
        more wait here; beyond that push blocks until one finishes (within the timeout).
        A frame that cannot be restored is refused here with InputError, nothing sent."""
        if self._closed:
            raise StreamClosedError("stream is closed; open a new one with RemoteRestorer.stream()")
        check_finite(check_frame(frame))
        self._slots.acquire()
        now = time.perf_counter()
        self._stats.start(now)
        try:
            future = self._pool.submit(self._run_one, frame, now)
        except BaseException:
            self._slots.release()
            raise
        self._pending.append((now, future))
        seq = self._pushed
        self._pushed += 1
        return seq

    @property
    def in_flight(self) -> int:
        return self._pushed - self._pulled

    def pull(self, timeout: float | None = None) -> np.ndarray:
        """The next restored frame in push order; its error if it failed; TimeoutError after
        ``timeout`` s (the frame stays in flight); StreamClosedError once a closed stream is
        drained."""
        if not self._pending:
            if self._closed:
                raise StreamClosedError("stream is closed and every frame has been pulled")
            raise InputError("pull() with no frame in flight; push a frame first")
        _, future = self._pending[0]
        try:
            out = future.result(timeout=timeout)
        except FutureTimeout as exc:
            raise TimeoutError(f"no restored frame within {timeout} s") from exc
        except CancelledError:
            self._pending.popleft()
            self._pulled += 1
            raise StreamClosedError(f"frame {self._pulled - 1} was not sent: the stream was closed") from None
        except BaseException:
            self._pending.popleft()
            self._pulled += 1
            raise
        self._pending.popleft()
        self._pulled += 1
        return out


    def close(self, wait: bool = True) -> None:
        """Stop taking frames; frames not sent yet are dropped (their pull raises
        StreamClosedError); with ``wait``, frames on the wire finish (within the timeout) and
        can be pulled."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
        for _, future in self._pending:
            if future.cancelled():
                self._slots.release()
        self._connections.close()  # with wait=False, requests still on the wire fail at their pull


__all__ = ["PROTOCOLS", "RemoteRestorer", "RemoteSettings", "RemoteStream", "parse_url", "tile_parameters"]
