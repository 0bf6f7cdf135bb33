"""The TensorRT backend's logic on the CPU, against small fakes of ``pycuda.driver`` and
``tensorrt`` (no GPU, no TensorRT): what tests/runtime/test_tensorrt_gpu.py cannot check
here, and some of what no GPU run shows.

The fake GPU runs nothing until the host waits for it: every asynchronous operation
(copy, event record, enqueue) joins one queue in the order it was issued, and runs when an
event or stream it precedes is synchronised. So a host wait is visible (``blocking_waits``),
so is an enqueue still in flight, and reconfiguring an execution context under its own
running enqueue (what TensorRT forbids) is recorded as a violation. Every fake CUDA object
records whether the backend's CUDA context was current in the thread that destroyed it, and
whether that context had been detached already; the fake execution contexts compute
``2 * x + 1``, compared against numpy.
"""

from __future__ import annotations

import sys
import threading
import types
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ndr_edge.artifact import ArtifactMeta
from ndr_edge.runtime import tensorrt_backend
from ndr_edge.runtime.backend import InputLimits
from ndr_edge.runtime.engine_sidecar import EngineSidecar, sidecar_path

PROFILES = (InputLimits((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 32, 32)),
            InputLimits((1, 3, 40, 40), (1, 3, 48, 48), (1, 3, 64, 64)))
GPU_NAME, CC = "Fake Orin", (8, 7)


def reference(x: np.ndarray) -> np.ndarray:
    return 2.0 * x + 1.0


# -- the fake GPU ----------------------------------------------------------------------------
class FakeGPU:
    def __init__(self) -> None:
        self.queue: list[tuple[Any, ...]] = []  # (op, owner stream or context, callable)
        self.memory: dict[int, np.ndarray] = {}
        self.next_address = 0x1000
        self.streams: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self.blocking_waits = 0
        self.violations: list[str] = []
        self.destroyed: list[tuple[str, bool, bool]] = []  # (kind, context current here, already detached)
        self.primary: FakePrimaryContext | None = None
        self.stacks = threading.local()

    # context bookkeeping
    def stack(self) -> list[Any]:
        if not hasattr(self.stacks, "items"):
            self.stacks.items = []
        return self.stacks.items

    def current(self) -> bool:
        stack = self.stack()
        return bool(stack) and stack[-1] is self.primary and not self.primary.detached

    def require_context(self, what: str) -> None:
        if not self.current():
            self.violations.append(f"{what} without the backend's CUDA context current in {threading.current_thread().name}")

    def record_destroyed(self, kind: str) -> None:
        detached = self.primary is not None and self.primary.detached
        self.destroyed.append((kind, self.current(), detached))

    # the queue
    def enqueue(self, owner: Any, run: Any) -> tuple[Any, ...]:
        op = (owner, run)
        self.queue.append(op)
        return op

    def run_until(self, op: tuple[Any, ...] | None) -> None:
        """Run queued work in issue order up to and including ``op`` (all of it for None)."""
        while self.queue:
            head = self.queue.pop(0)
            head[1]()
            if head is op:
                return

    def pending_executions(self) -> int:
        return sum(1 for owner, _ in self.queue if isinstance(owner, FakeExecutionContext))

    def alloc(self, nbytes: int) -> int:
        address = self.next_address
        self.next_address += nbytes + 256
        self.memory[address] = np.zeros(nbytes, np.uint8)
        return address


GPU: FakeGPU  # the one a test's fakes use (set by the fixture)


class FakePrimaryContext:
    def __init__(self) -> None:
        self.detached = False
        self.detach_calls = 0

    def push(self) -> None:
        GPU.stack().append(self)

    def detach(self) -> None:
        self.detach_calls += 1
        GPU.record_destroyed("detach")
        self.detached = True


class FakeContextClass:
    @staticmethod
    def pop() -> None:
        GPU.stack().pop()


class FakeDevice:
    def __init__(self, index: int) -> None:
        self.index = index

    def compute_capability(self) -> tuple[int, int]:
        return CC

    def name(self) -> str:
        return GPU_NAME

    def retain_primary_context(self) -> FakePrimaryContext:
        GPU.primary = FakePrimaryContext()
        return GPU.primary


class FakeStream:
    def __init__(self) -> None:
        GPU.require_context("Stream()")
        self.handle = id(self)
        GPU.streams[self.handle] = self

    def synchronize(self) -> None:
        GPU.require_context("Stream.synchronize")
        mine = [op for op in GPU.queue if op[0] is self]
        if mine:
            GPU.blocking_waits += 1
            GPU.run_until(mine[-1])

    def wait_for_event(self, event: FakeEvent) -> None:
        GPU.require_context("Stream.wait_for_event")  # issue order already runs the event's work first

    def __del__(self) -> None:
        GPU.record_destroyed("stream")


class FakeEvent:
    def __init__(self) -> None:
        GPU.require_context("Event()")
        self.recorded = self.completed = 0
        self.op: tuple[Any, ...] | None = None

    def record(self, stream: FakeStream) -> None:
        GPU.require_context("Event.record")
        self.recorded += 1
        generation, me = self.recorded, weakref.ref(self)  # no cycle: a pycuda Event goes with its last reference

        def complete() -> None:
            event = me()
            if event is not None:
                event.completed = generation

        self.op = GPU.enqueue(stream, complete)

    def query(self) -> bool:
        GPU.require_context("Event.query")
        return self.completed == self.recorded

    def synchronize(self) -> None:
        GPU.require_context("Event.synchronize")
        if not self.query():
            GPU.blocking_waits += 1
            GPU.run_until(self.op)

    def __del__(self) -> None:
        GPU.record_destroyed("event")


class FakeAllocation:
    def __init__(self, nbytes: int) -> None:
        GPU.require_context("mem_alloc")
        self.address = GPU.alloc(nbytes)
        self.freed = False

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        GPU.require_context("DeviceAllocation.free")
        self.freed = True
        GPU.record_destroyed("device buffer")

    def __del__(self) -> None:
        if not self.freed:
            GPU.record_destroyed("device buffer")


class FakePinned(bytearray):
    def __del__(self) -> None:
        GPU.record_destroyed("pinned buffer")


def pagelocked_empty(count: int, dtype: Any) -> np.ndarray:
    GPU.require_context("pagelocked_empty")
    dtype = np.dtype(dtype)
    return np.frombuffer(FakePinned(int(count) * dtype.itemsize), dtype)


def memcpy_htod_async(dest: FakeAllocation, src: np.ndarray, stream: FakeStream) -> None:
    GPU.require_context("memcpy_htod_async")

    def copy() -> None:  # reads the pinned buffer when it runs, as the GPU does
        GPU.memory[int(dest)][: src.nbytes] = src.view(np.uint8).reshape(-1)

    GPU.enqueue(stream, copy)


def memcpy_dtoh_async(dest: np.ndarray, src: FakeAllocation, stream: FakeStream) -> None:
    GPU.require_context("memcpy_dtoh_async")

    def copy() -> None:
        dest.view(np.uint8).reshape(-1)[:] = GPU.memory[int(src)][: dest.nbytes]

    GPU.enqueue(stream, copy)


def fake_pycuda() -> types.ModuleType:
    driver = types.ModuleType("pycuda.driver")
    driver.Device = FakeDevice  # type: ignore[attr-defined]
    driver.Context = FakeContextClass  # type: ignore[attr-defined]
    driver.Stream = FakeStream  # type: ignore[attr-defined]
    driver.Event = FakeEvent  # type: ignore[attr-defined]
    driver.mem_alloc = FakeAllocation  # type: ignore[attr-defined]
    driver.pagelocked_empty = pagelocked_empty  # type: ignore[attr-defined]
    driver.memcpy_htod_async = memcpy_htod_async  # type: ignore[attr-defined]
    driver.memcpy_dtoh_async = memcpy_dtoh_async  # type: ignore[attr-defined]
    return driver


# -- the fake TensorRT -------------------------------------------------------------------------
class FakeExecutionContext:
    def __init__(self, engine: FakeEngine) -> None:
        GPU.require_context("create_execution_context")
        self.engine = engine
        taken = {c.profile for c in engine.live_contexts()}
        self.profile = 0 if engine.share_profiles or 0 not in taken else -1
        engine.contexts.add(self)
        self.shape: tuple[int, ...] | None = None
        self.addresses: dict[str, int] = {}
        self.running = 0

    def _configure(self, what: str) -> None:
        if self.running:
            GPU.violations.append(f"{what} while an enqueue of this execution context runs")

    def set_optimization_profile_async(self, index: int, stream_handle: int) -> bool:
        GPU.require_context("set_optimization_profile_async")
        self._configure("set_optimization_profile_async")
        others = {c.profile for c in self.engine.live_contexts() if c is not self}
        if not 0 <= index < len(self.engine.profiles) or (not self.engine.share_profiles and index in others):
            return False
        assert stream_handle == 0 or stream_handle in GPU.streams, "profile switch on an unknown stream"
        self.profile = index
        return True

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self._configure("set_input_shape")
        limits = self.engine.profiles[self.profile] if self.profile >= 0 else None
        self.shape = tuple(shape)
        return limits is not None and limits.accepts(self.shape)

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        assert self.shape is not None
        return self.shape  # the model keeps NCHW

    def set_tensor_address(self, name: str, address: int) -> bool:
        self._configure("set_tensor_address")
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        GPU.require_context("execute_async_v3")
        shape, source, target = self.shape, self.addresses["input"], self.addresses["output"]  # read at enqueue
        assert shape is not None and self.engine.profiles[self.profile].accepts(shape)
        count = int(np.prod(shape))
        self.running += 1

        def run() -> None:
            x = GPU.memory[source][: count * 4].view(np.float32)
            GPU.memory[target][: count * 4] = reference(x).astype(np.float32).view(np.uint8)
            self.running -= 1

        GPU.enqueue(self, run)
        return True

    def __del__(self) -> None:
        GPU.record_destroyed("execution context")


class FakeEngine:
    def __init__(self, profiles: tuple[InputLimits, ...], share_profiles: bool, names: tuple[str, str]) -> None:
        self.profiles = profiles
        self.share_profiles = share_profiles
        self.names = names
        self.contexts: weakref.WeakSet[FakeExecutionContext] = weakref.WeakSet()
        self.num_io_tensors = 2
        self.num_optimization_profiles = len(profiles)

    def live_contexts(self) -> list[FakeExecutionContext]:
        return list(self.contexts)

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if name == self.names[0] else "OUTPUT"

    def get_tensor_dtype(self, name: str) -> str:
        return "float32"

    def get_tensor_profile_shape(self, name: str, index: int) -> list[tuple[int, ...]]:
        p = self.profiles[index]
        return [p.min, p.opt, p.max]

    def create_execution_context(self) -> FakeExecutionContext:
        return FakeExecutionContext(self)

    def __del__(self) -> None:
        GPU.record_destroyed("engine")


def fake_tensorrt(version: str, share_profiles: bool = True, names: tuple[str, str] = ("input", "output")
                  ) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class Runtime:
        def __init__(self, logger: Any) -> None:
            GPU.require_context("Runtime()")

        def deserialize_cuda_engine(self, data: bytes) -> FakeEngine:
            GPU.require_context("deserialize_cuda_engine")
            return FakeEngine(PROFILES, share_profiles, names)

        def __del__(self) -> None:
            GPU.record_destroyed("runtime")

    trt.Logger = Logger  # type: ignore[attr-defined]
    trt.Runtime = Runtime  # type: ignore[attr-defined]
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")  # type: ignore[attr-defined]
    trt.nptype = lambda dtype: np.float32  # type: ignore[attr-defined]
    return trt


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
def gpu() -> FakeGPU:
    global GPU
    GPU = FakeGPU()
    return GPU


@pytest.fixture
def engine_file(tmp_path: Path) -> Path:
    path = tmp_path / "model-fp16.engine"
    path.write_bytes(b"a fake plan")
    return path


def install(monkeypatch: pytest.MonkeyPatch, engine: Path, version: str = "10.3.0.26", share_profiles: bool = True,
            names: tuple[str, str] = ("input", "output")) -> None:
    """The fakes in place of pycuda and tensorrt, and a sidecar for ``engine`` that matches them."""
    trt = fake_tensorrt(version, share_profiles, names)
    driver = fake_pycuda()
    package = types.ModuleType("pycuda")
    package.driver = driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setattr(tensorrt_backend, "require_tensorrt", lambda device=0, build=False: trt)
    EngineSidecar(path=sidecar_path(engine), meta=ArtifactMeta(preset="fake", precision="fp16"),
                  tensorrt_version=version, gpu_name=GPU_NAME, compute_capability=f"{CC[0]}.{CC[1]}",
                  precision="fp16", profiles=PROFILES).write()


def batch(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return rng.random((n, 3, size, size), dtype=np.float32)


def open_backend(engine: Path) -> tensorrt_backend.TensorRTBackend:
    return tensorrt_backend.TensorRTBackend(engine, tensorrt_backend.TensorRTSettings(slots=2))


# -- #10: one execution context per slot --------------------------------------------------------
def test_each_slot_has_its_own_context_and_the_next_batch_is_enqueued_while_one_runs(gpu, engine_file, monkeypatch):
    install(monkeypatch, engine_file)
    rng = np.random.default_rng(0)
    with open_backend(engine_file) as backend:
        assert backend.contexts == 2
        waits = gpu.blocking_waits
        first, second = batch(rng, 2, 16), batch(rng, 1, 48)  # the second in profile 1
        p1, p2 = backend.submit(first), backend.submit(second)
        # both enqueued, neither run: the second submit did not wait for the first execution
        assert gpu.blocking_waits == waits and gpu.pending_executions() == 2
        assert not p1.done() and not p2.done()
        np.testing.assert_allclose(p2.result(), reference(second), rtol=1e-6)
        np.testing.assert_allclose(p1.result(), reference(first), rtol=1e-6)
        # a longer stream, collected two behind, switching profiles and shapes on every slot
        frames = [batch(rng, 1 + i % 2, 8 * (1 + i % 4)) if i % 3 else batch(rng, 1, 64) for i in range(9)]
        pending, results = [], []
        for frame in frames:
            pending.append(backend.submit(frame))
            if len(pending) > 2:
                results.append(pending.pop(0).result())
        results += [p.result() for p in pending]
        for got, frame in zip(results, frames):
            np.testing.assert_allclose(got, reference(frame), rtol=1e-6)
    assert gpu.violations == []


def test_without_profile_sharing_the_slots_share_one_context_and_wait_for_it(gpu, engine_file, monkeypatch):
    """TensorRT before 10 (profiles not shared by default): one context, and each submit waits
    for the execution before it instead of reconfiguring the context under it."""
    install(monkeypatch, engine_file, version="8.6.1")
    rng = np.random.default_rng(1)
    with open_backend(engine_file) as backend:
        assert backend.contexts == 1
        first, second = batch(rng, 1, 16), batch(rng, 2, 24)
        p1 = backend.submit(first)
        waits = gpu.blocking_waits
        p2 = backend.submit(second)
        assert gpu.blocking_waits == waits + 1 and gpu.pending_executions() == 1
        np.testing.assert_allclose(p1.result(), reference(first), rtol=1e-6)
        np.testing.assert_allclose(p2.result(), reference(second), rtol=1e-6)
    assert gpu.violations == []


def test_a_second_context_that_refuses_the_profile_falls_back_to_one_shared_context(gpu, engine_file, monkeypatch):
    install(monkeypatch, engine_file, share_profiles=False)
    rng = np.random.default_rng(2)
    with pytest.warns(UserWarning, match="share one"):
        backend = open_backend(engine_file)
    with backend:
        assert backend.contexts == 1
        # the refused context went at once, with the CUDA context current
        assert [c for c in gpu.destroyed if c[0] == "execution context"] == [("execution context", True, False)]
        frames = [batch(rng, 1, 16), batch(rng, 1, 40), batch(rng, 2, 8)]
        pending = [backend.submit(f) for f in frames]
        for p, frame in zip(pending, frames):
            np.testing.assert_allclose(p.result(), reference(frame), rtol=1e-6)
    assert gpu.violations == []


def test_profile_sharing_is_the_rule_from_tensorrt_10():
    assert tensorrt_backend.profiles_shared_across_contexts("10.3.0.26")
    assert tensorrt_backend.profiles_shared_across_contexts("11.1.0")
    assert not tensorrt_backend.profiles_shared_across_contexts("8.6.1.6")
    assert not tensorrt_backend.profiles_shared_across_contexts("unknown")


# -- #5: what lives in the CUDA context goes while it is current ---------------------------------
EXPECTED = {"stream": 3, "event": 6, "device buffer": 4, "pinned buffer": 4, "execution context": 2, "engine": 1,
            "runtime": 1}


def _released(gpu: FakeGPU) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, _, _ in gpu.destroyed:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _check_released_inside_the_context(gpu: FakeGPU) -> None:
    assert gpu.destroyed[-1][0] == "detach" and gpu.primary is not None and gpu.primary.detach_calls == 1
    released = gpu.destroyed[:-1]
    outside = [kind for kind, current, detached in released if not current or detached]
    assert outside == [], f"released without the CUDA context current (or after detach): {outside}"


@pytest.mark.parametrize("where", ["same thread", "another thread"])
def test_close_releases_every_cuda_object_inside_the_context_then_detaches(gpu, engine_file, monkeypatch, where):
    install(monkeypatch, engine_file)
    rng = np.random.default_rng(3)
    backend = open_backend(engine_file)
    frame = batch(rng, 1, 16)
    pending = backend.submit(frame)  # not collected before close
    if where == "same thread":
        backend.close()
    else:
        errors: list[BaseException] = []

        def close() -> None:
            try:
                backend.close()
                assert gpu.stack() == []  # the closing thread pushed and popped its own context
            except BaseException as exc:  # noqa: BLE001 -- reported in the main thread
                errors.append(exc)

        closer = threading.Thread(target=close, name="closer")
        closer.start()
        closer.join()
        assert errors == []
    assert _released(gpu) == {**EXPECTED, "detach": 1}  # all of it, at close, with no garbage collection
    _check_released_inside_the_context(gpu)
    assert gpu.stack() == [] and gpu.violations == []
    np.testing.assert_allclose(pending.result(), reference(frame), rtol=1e-6)  # close collected it first
    assert pending.done()
    backend.close()  # a second close does nothing
    assert gpu.primary is not None and gpu.primary.detach_calls == 1


def test_a_failed_construction_releases_what_it_made_inside_the_context(gpu, engine_file, monkeypatch):
    from ndr_edge.errors import ArtifactError

    install(monkeypatch, engine_file, names=("image", "output"))  # not the input name the runtime feeds
    with pytest.raises(ArtifactError, match="expected input 'input'"):
        open_backend(engine_file)
    released = _released(gpu)
    assert released["stream"] == 3 and released["engine"] == 1 and released["runtime"] == 1
    _check_released_inside_the_context(gpu)
    assert gpu.violations == []
