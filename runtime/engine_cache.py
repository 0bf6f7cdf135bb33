"""TensorRT engines built where they run, from an export folder's ONNX graphs, and cached.

An engine only loads in the TensorRT release and on the GPU architecture that built it, so
the Jetson workflow is: export (and calibrate) on a workstation, copy the export folder to
the device, build there, run. :func:`ensure_engine` is that third step, torch-free and with
the same builder as ``ndr-export`` (:func:`ndr_edge.export.tensorrt_build.build_engine`):

- the engine's :class:`EngineKey` is everything that makes an engine valid: the ONNX's
  SHA-256, the precision, the optimisation profiles, the workspace, the TensorRT release,
  the GPU's name and compute capability. Its digest names the cached file
  (``model-fp16.3f2a....engine``), and the sidecar records the key;
- a cached engine whose sidecar holds the same key and whose size matches the size recorded
  at build time loads without building; anything else (another key, a truncated or
  foreign file) is rebuilt;
- concurrent first runs (two processes, or two threads) take an exclusive lock on
  ``<engine>.lock`` and check again once they hold it, so one builds and the others load;
  the engine and its sidecar are written to temporary files and renamed into place, so a
  killed build leaves nothing that looks like an engine;
- the timing cache (``timing.cache`` in the cache folder) is shared by every build there.

``ndr-build`` (and ``ndr-restore --build-only``) call :func:`build_export_engines`;
``Restorer.open(folder, backend="tensorrt")`` calls :func:`engine_for_manifest` when the
manifest lists no engine of the precision asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndr_edge.artifact import ArtifactMeta, Manifest, sha256_file
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.profiles import Profile
from ndr_edge.export.variants import BY_NAME, DEFAULT_WORKSPACE_MB, ENGINE_SUFFIXES, PRECISIONS
from ndr_edge.runtime.engine_sidecar import EngineSidecar

#: Folder of cached engines inside an export folder (when no cache folder is named).
CACHE_DIRNAME = "engines"
TIMING_CACHE_FILE = "timing.cache"
#: Seconds between "still building" lines while TensorRT reports nothing.
HEARTBEAT_S = 15.0

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class EngineKey:
    """What makes a cached engine valid for this machine and this graph."""

    onnx_sha256: str
    precision: str
    profiles: tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]
    workspace_mb: int
    tensorrt_version: str
    gpu_name: str
    compute_capability: str

    def to_dict(self) -> dict[str, Any]:
        return {"onnx_sha256": self.onnx_sha256, "precision": self.precision,
                "profiles": [[list(s) for s in p] for p in self.profiles], "workspace_mb": self.workspace_mb,
                "tensorrt_version": self.tensorrt_version, "gpu_name": self.gpu_name,
                "compute_capability": self.compute_capability}

    @property
    def digest(self) -> str:
        """16 hex digits of the key's SHA-256 (part of the cached file's name)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EngineCacheConfig:
    """Where engines are cached and how they are built.

    ``folder`` None: ``<export folder>/engines`` (or beside the ONNX file)."""

    folder: Path | None = None
    profiles: tuple[Profile, ...] = (Profile(),)
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    optimization_level: int | None = None
    timing_cache: bool = True

    def __post_init__(self) -> None:
        if not self.profiles:
            raise InputError("an engine needs at least one optimisation profile (--min/--opt/--max)")
        if self.workspace_mb < 1:
            raise InputError(f"workspace must be at least 1 MB, got {self.workspace_mb}")


@dataclass(frozen=True)
class MachineFacts:
    """The TensorRT release and GPU an engine is built for."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str


@dataclass
class BuildResult:
    """One engine: where it is, whether this call built it, its sidecar."""

    engine: Path
    built: bool
    sidecar: EngineSidecar
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def machine_facts(device: int = 0) -> MachineFacts:
    """This machine's TensorRT release and GPU (BackendUnavailableError, in one line, where
    engines cannot be built here)."""
    from ndr_edge.errors import BackendUnavailableError
    from ndr_edge.runtime.tensorrt_env import gpu_info, require_tensorrt

    trt = require_tensorrt(device, build=True)
    gpu = gpu_info(device)
    if gpu is None:
        raise BackendUnavailableError("no CUDA GPU/driver is visible; engines are built on the GPU that runs them")
    return MachineFacts(str(getattr(trt, "__version__", "unknown")), gpu["gpu_name"], gpu["compute_capability"])


def engine_key(onnx_path: Path, precision: str, config: EngineCacheConfig, facts: MachineFacts,
               onnx_sha256: str | None = None) -> EngineKey:
    return EngineKey(
        onnx_sha256=onnx_sha256 or sha256_file(onnx_path),
        precision=precision,
        profiles=tuple((tuple(p.min), tuple(p.opt), tuple(p.max)) for p in config.profiles),
        workspace_mb=int(config.workspace_mb),
        tensorrt_version=facts.tensorrt_version,
        gpu_name=facts.gpu_name,
        compute_capability=facts.compute_capability,
    )


def cache_folder(onnx_path: Path, config: EngineCacheConfig) -> Path:
    return Path(config.folder) if config.folder is not None else onnx_path.parent / CACHE_DIRNAME


def cached_engine_path(folder: Path, onnx_path: Path, key: EngineKey) -> Path:
    return folder / f"{onnx_path.stem}.{key.digest}{ENGINE_SUFFIXES[0]}"


def check_cache_folder(folder: Path) -> None:
    """InputError naming the folder and the fix unless engines can be written there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the engine cache folder ({exc.strerror}); "
                         "name a writable one with --engine-cache DIR") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{folder}: the engine cache folder is not writable; name a writable one with "
                         "--engine-cache DIR")


def valid_cached(engine: Path, key: EngineKey) -> tuple[EngineSidecar | None, str]:
    """(sidecar, "") when ``engine`` is a complete engine built for ``key``; else (None, why not)."""
    if not engine.is_file():
        return None, "not built yet"
    try:
        sidecar = EngineSidecar.read(engine)
    except ArtifactError as exc:
        return None, f"its sidecar is unusable ({exc})"
    if sidecar.extra.get("cache_key") != key.to_dict():
        return None, "it was built for another graph, precision, profile, TensorRT release or GPU"
    size = engine.stat().st_size
    if sidecar.extra.get("engine_bytes") != size:
        return None, f"it is {size} bytes, {sidecar.extra.get('engine_bytes')} were written (truncated or replaced)"
    return sidecar, ""


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), for processes and threads alike."""
    import fcntl

    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())
    with thread_lock, open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def heartbeat(progress: Progress, what: str, every: float = HEARTBEAT_S) -> Iterator[None]:
    """A "still building" line every ``every`` seconds until the block ends."""
    stop = threading.Event()
    start = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every):
            progress(f"  ... still building {what} ({time.perf_counter() - start:.0f} s)")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


BuildFn = Callable[..., EngineSidecar]


def ensure_engine(
    onnx_path: str | Path,
    precision: str,
    meta: ArtifactMeta,
    config: EngineCacheConfig = EngineCacheConfig(),
    *,
    facts: MachineFacts | None = None,
    onnx_sha256: str | None = None,
    progress: Progress = _stderr,
    build: BuildFn | None = None,
    device: int = 0,
) -> BuildResult:
    """The cached engine of ``onnx_path`` for this machine, building it first if needed.

    ``facts`` and ``build`` default to this machine's TensorRT and the export's builder
    (tests pass their own)."""
    onnx_path = Path(onnx_path)
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if not onnx_path.is_file():
        raise ArtifactError(f"{onnx_path}: ONNX graph not found; copy the whole export folder to this machine")
    for profile in config.profiles:
        profile.check(meta.size_multiple)
    facts = facts or machine_facts(device)
    key = engine_key(onnx_path, precision, config, facts, onnx_sha256)
    folder = cache_folder(onnx_path, config)
    check_cache_folder(folder)
    engine = cached_engine_path(folder, onnx_path, key)
    sidecar, why = valid_cached(engine, key)
    if sidecar is not None:
        return BuildResult(engine, False, sidecar)
    with file_lock(engine.with_name(engine.name + ".lock")):
        sidecar, why = valid_cached(engine, key)  # another process may have built it meanwhile
        if sidecar is not None:
            return BuildResult(engine, False, sidecar)
        notes = [] if why == "not built yet" else [f"{engine.name}: rebuilding, {why}"]
        for note in notes:
            progress(note)
        if build is None:
            from ndr_edge.export.tensorrt_build import build_engine as build
        from ndr_edge.export.tensorrt_build import EngineBuildOptions

        options = EngineBuildOptions(profiles=tuple(config.profiles), workspace_mb=config.workspace_mb,
                                     timing_cache=folder / TIMING_CACHE_FILE if config.timing_cache else None,
                                     optimization_level=config.optimization_level)
        what = f"the {precision} engine of {onnx_path.name} for {facts.gpu_name}"
        progress(f"building {what} (TensorRT {facts.tensorrt_version}; once per machine, minutes on a Jetson) "
                 f"-> {engine}")
        start = time.perf_counter()
        with heartbeat(progress, what):
            sidecar = build(onnx_path, engine, precision, meta, options,
                            extra={"cache_key": key.to_dict(), "source_onnx": onnx_path.name}, progress=progress)
        seconds = time.perf_counter() - start
        progress(f"built {engine.name} in {seconds:.0f} s")
        return BuildResult(engine, True, sidecar, seconds, notes)


# -- export folders ------------------------------------------------------------------------
def onnx_meta(path: Path) -> ArtifactMeta:
    """The ndr-edge metadata of an exported ONNX file (with ``onnx`` where installed, else
    ONNX Runtime's model metadata)."""
    try:
        import onnx
    except ImportError:
        from ndr_edge.runtime.onnxruntime_backend import cpu_session

        session = cpu_session(path, "copy it again from the export")
        return ArtifactMeta.from_props(dict(session.get_modelmeta().custom_metadata_map), source=str(path))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ArtifactError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}); "
                            "copy it again from the export") from exc
    return ArtifactMeta.from_props({p.key: p.value for p in model.metadata_props}, source=str(path))


def buildable_precisions(manifest: Manifest) -> list[str]:
    """Precisions whose engine variant's ONNX source the manifest lists (fp16, int8)."""
    have = {e.name for e in manifest.artifacts}
    return [v.precision for v in (BY_NAME["engine-fp16"], BY_NAME["engine-int8"]) if (v.source or "") in have]


def engine_for_manifest(folder: str | Path, precision: str, config: EngineCacheConfig = EngineCacheConfig(),
                        **kwargs: Any) -> BuildResult:
    """The engine of ``precision`` for an export folder: built from the ONNX graph the
    variants table names as that engine's source, or loaded from the cache."""
    folder = Path(folder)
    directory = folder if folder.is_dir() else folder.parent
    manifest = Manifest.read(folder)
    variant = BY_NAME.get(f"engine-{precision}")
    if variant is None:
        raise InputError(f"no TensorRT engine variant for {precision}; build fp16 or int8 engines")
    source = next((e for e in manifest.artifacts if e.name == variant.source), None)
    if source is None:
        have = ", ".join(buildable_precisions(manifest)) or "none"
        raise ArtifactError(
            f"{directory / 'manifest.json'}: no {variant.source} graph to build the {precision} engine from "
            f"(buildable here: {have}); re-run ndr-export with --precision {precision} on the workstation and copy "
            "the folder again")
    onnx_path = manifest.resolve(directory, source)
    return ensure_engine(onnx_path, precision, onnx_meta(onnx_path), config, onnx_sha256=source.sha256 or None,
                         **kwargs)


def build_export_engines(folder: str | Path, precisions: Sequence[str] | None = None,
                         config: EngineCacheConfig = EngineCacheConfig(), **kwargs: Any) -> list[BuildResult]:
    """Every engine ``precisions`` (default: each the manifest can build) of an export folder."""
    manifest = Manifest.read(folder)
    wanted = list(precisions) if precisions else buildable_precisions(manifest)
    if not wanted:
        raise ArtifactError(f"{folder}: the export has no FP16 or INT8 ONNX graph to build engines from; re-run "
                            "ndr-export with --precision fp16,int8")
    return [engine_for_manifest(folder, precision, config, **kwargs) for precision in wanted]
