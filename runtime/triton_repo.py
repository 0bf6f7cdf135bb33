"""A Triton Inference Server model repository from an export folder, for Triton's own
``onnxruntime`` and ``tensorrt`` backends (NVIDIA's server container, DeepStream's
nvinferserver). Torch-free; needs nothing beyond the runtime (ONNX I/O types are read with
``onnx`` when installed, else with ONNX Runtime) and, to validate, ``tritonclient``.

>>> from ndr_edge.runtime.triton_repo import write_repository
>>> repo = write_repository("export/")                    # -> export/triton/
>>> [m.name for m in repo.models]                         # one model per ONNX variant and engine
['ndr-onnx-fp32', 'ndr-onnx-fp16', 'ndr-onnx-int8', 'ndr-engine-fp16']

Layout (``OUTDIR/triton``)::

    ndr-onnx-fp32/config.pbtxt   backend "onnxruntime", 1/model.onnx
    ndr-engine-fp16/config.pbtxt backend "tensorrt",    1/model.plan
                                 (or 1/model-sm87.plan, 1/model-sm89.plan ... and
                                 cc_model_filenames, when engines for several GPUs exist)
    ndr_edge_triton.json         what was written from what (Triton ignores files here)

Every ``config.pbtxt`` has input/output dims with -1 for H and W (the engines' batch axis
becomes ``max_batch_size``), ``dynamic_batching`` (preferred sizes, queue delay),
``instance_group``, a zero-frame ``model_warmup`` and, for ONNX on GPU, the execution
accelerator (TensorRT EP with the graph's precision, or the CUDA EP). The artifact metadata
(channel order, value range, size multiple, precision, ...) is in ``parameters`` under the
keys and JSON encoding of the ONNX metadata (``ndr_edge.channel_order: "\\"BGR\\""``), so
:func:`meta_from_parameters` gives back the :class:`~ndr_edge.artifact.ArtifactMeta`.
Each config is validated by parsing it with Triton's own ``ModelConfig`` protobuf
(``tritonclient.grpc.model_config_pb2``).

Triton feeds these models *model batches* (float32 NCHW in the model's channel order and
range, H and W multiples of the size multiple): clients convert and pad frames themselves;
``ndr-serve`` (:mod:`.serve`) is the served runtime that takes frames as they come.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndr_edge.artifact import INPUT_NAME, MANIFEST_NAME, OUTPUT_NAME, ArtifactMeta, Manifest, atomic_write_json
from ndr_edge.errors import ArtifactError, BackendUnavailableError, InputError
from ndr_edge.export.variants import DEFAULT_WORKSPACE_MB, ENGINE_SUFFIXES
from ndr_edge.runtime.engine_sidecar import EngineSidecar, sidecar_path

REPO_DIRNAME = "triton"
INDEX_NAME = "ndr_edge_triton.json"
INDEX_SCHEMA = 1
KINDS = ("gpu", "cpu")
ONNX_ACCELERATORS = ("tensorrt", "cuda", "none")
_ONNX_ELEM_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 11: "TYPE_FP64"}  # onnx.TensorProto elem types
_ORT_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(double)": "TYPE_FP64"}
_NUMPY_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int8": "TYPE_INT8", "int32": "TYPE_INT32"}
_PRECISION_MODES = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}


@dataclass(frozen=True)
class TritonRepoSettings:
    """How the repository's models are configured.

    ``prefix``: model names are ``<prefix>-<variant>`` (``ndr-onnx-fp16``). ``variants``:
    the manifest variants to include (names like ``onnx-fp16``; None: all). ``max_batch_size``
    and ``preferred_batch_sizes`` / ``max_queue_delay_us``: Triton's dynamic batcher (an
    engine's batch is capped at its profile's max). ``instances``: model instances per GPU
    (or on the CPU). ``kind``: ``gpu`` or ``cpu`` for the ONNX models (engines are GPU-only).
    ``onnx_accelerator``: for ONNX on GPU, ``tensorrt`` (TensorRT EP at the graph's
    precision, engines cached by ONNX Runtime), ``cuda`` (CUDA EP only) or ``none``.
    ``warmup``: (H, W) of the zero frame each instance runs once at load (None: none).
    ``max_side``: largest H/W of the TensorRT EP's optimisation profile.
    ``link``: hard-link the model files when the file system allows (copy otherwise)."""

    prefix: str = "ndr"
    variants: tuple[str, ...] | None = None
    max_batch_size: int = 8
    preferred_batch_sizes: tuple[int, ...] = (4, 8)
    max_queue_delay_us: int = 2000
    instances: int = 1
    kind: str = "gpu"
    onnx_accelerator: str = "tensorrt"
    warmup: tuple[int, int] | None = (256, 256)
    max_side: int = 2048
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    link: bool = True

    def validate(self) -> TritonRepoSettings:
        if not self.prefix or any(c in self.prefix for c in "/\\ \t\n") or self.prefix.startswith("."):
            raise InputError(f"model name prefix {self.prefix!r}: use letters, digits, '-', '_' or '.'")
        if self.max_batch_size < 1:
            raise InputError(f"max batch size {self.max_batch_size} must be at least 1")
        if any(b < 1 or b > self.max_batch_size for b in self.preferred_batch_sizes):
            raise InputError(f"preferred batch sizes {list(self.preferred_batch_sizes)} must be between 1 and the max "
                             f"batch size {self.max_batch_size}")
        if self.max_queue_delay_us < 0:
            raise InputError(f"queue delay {self.max_queue_delay_us} us must not be negative")
        if self.instances < 1:
            raise InputError(f"instances {self.instances} must be at least 1")
        if self.kind not in KINDS:
            raise InputError(f"instance kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.onnx_accelerator not in ONNX_ACCELERATORS:
            raise InputError(f"ONNX accelerator {self.onnx_accelerator!r}: use one of {', '.join(ONNX_ACCELERATORS)}")
        if self.warmup is not None and (len(self.warmup) != 2 or min(self.warmup) < 1):
            raise InputError(f"warm-up size {self.warmup} must be two positive numbers (H, W)")
        if self.max_side < 1:
            raise InputError(f"max side {self.max_side} must be positive")
        return self


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # TYPE_FP32 ...
    dims: tuple[int, ...]  # without the batch axis when the model batches


@dataclass
class TritonModel:
    """One model of the repository: its config text and the files of version 1."""

    name: str
    backend: str  # onnxruntime | tensorrt
    variant: str
    precision: str
    config: str
    files: dict[str, Path]  # file name in 1/ -> source file
    notes: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        return [str(p) for p in self.files.values()]


@dataclass
class TritonRepository:
    path: Path
    models: list[TritonModel]
    validated: bool

    def summary(self) -> str:
        names = ", ".join(f"{m.name} ({m.backend})" for m in self.models)
        return f"{len(self.models)} model(s) in {self.path}: {names}" + ("" if self.validated else " (not validated)")

    def notes(self) -> list[str]:
        return [note for m in self.models for note in m.notes]


# -- reading the artifacts ------------------------------------------------------------------
def _onnx_io(path: Path) -> tuple[ArtifactMeta, TensorSpec, TensorSpec, bool]:
    """(metadata, input, output, batch axis dynamic) of an ndr-edge ONNX file."""
    try:
        import onnx
    except ImportError:
        onnx_module: Any = None
    else:
        onnx_module = onnx
    if onnx_module is not None:
        try:
            model = onnx_module.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and friends
            raise ArtifactError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}); re-run ndr-export") \
                from exc
        meta = ArtifactMeta.from_props({p.key: p.value for p in model.metadata_props}, source=str(path))
        initializers = {i.name for i in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in initializers]
        output = next((o for o in model.graph.output if o.name == OUTPUT_NAME), None)
        specs = []
        for value in ([inputs[0]] if inputs else []) + ([output] if output is not None else []):
            ttype = value.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim)
            specs.append((value.name, _ONNX_ELEM_TYPES.get(ttype.elem_type, f"elem_type {ttype.elem_type}"), dims))
    else:
        from ndr_edge.runtime.onnxruntime_backend import cpu_session

        session = cpu_session(path)
        meta = ArtifactMeta.from_props(dict(session.get_modelmeta().custom_metadata_map), source=str(path))
        inputs = session.get_inputs()
        output = next((o for o in session.get_outputs() if o.name == OUTPUT_NAME), None)
        specs = [(v.name, _ORT_TYPES.get(v.type, v.type), tuple(d if isinstance(d, int) else -1 for d in v.shape))
                 for v in ([inputs[0]] if inputs else []) + ([output] if output is not None else [])]
    if len(specs) != 2 or specs[0][0] != INPUT_NAME:
        raise ArtifactError(f"{path}: expected an input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}; export it with "
                            "ndr-export")
    for name, dtype, dims in specs:
        if not dtype.startswith("TYPE_") or len(dims) != 4 or dims[1] != 3:
            raise ArtifactError(f"{path}: {name} is {dtype} with dims {list(dims)}; expected a float Nx3xHxW tensor")
    (iname, itype, idims), (oname, otype, odims) = specs
    batched = idims[0] == -1 and odims[0] == -1
    cut = 1 if batched else 0
    return meta, TensorSpec(iname, itype, idims[cut:]), TensorSpec(oname, otype, odims[cut:]), batched


def _engine_io(sidecar: EngineSidecar) -> tuple[TensorSpec, TensorSpec, bool]:
    by_mode: dict[str, dict[str, Any]] = {}
    for tensor in sidecar.io:
        by_mode.setdefault(str(tensor.get("mode", "")).upper(), tensor)
    tensors = [next((t for t in sidecar.io if t.get("name") == name), None) for name in (INPUT_NAME, OUTPUT_NAME)]
    if tensors[0] is None:
        tensors[0] = by_mode.get("INPUT")
    if tensors[1] is None:
        tensors[1] = by_mode.get("OUTPUT")
    if tensors[0] is None or tensors[1] is None:
        raise ArtifactError(f"{sidecar.path}: the sidecar lists no input/output tensors (io); rebuild the engine with "
                            "ndr-build EXPORT_FOLDER on this machine")
    specs = []
    for tensor in tensors:
        assert tensor is not None
        dims = tuple(int(d) for d in tensor.get("shape", ()))
        dtype = _NUMPY_TYPES.get(str(tensor.get("dtype", "")).lower())
        if dtype is None or len(dims) != 4:
            raise ArtifactError(f"{sidecar.path}: tensor {tensor.get('name')} is {tensor.get('dtype')} {list(dims)}; "
                                "expected a float Nx3xHxW tensor")
        specs.append((str(tensor["name"]), dtype, dims))
    batched = specs[0][2][0] == -1 and specs[1][2][0] == -1
    cut = 1 if batched else 0
    return TensorSpec(specs[0][0], specs[0][1], specs[0][2][cut:]), TensorSpec(specs[1][0], specs[1][1],
                                                                               specs[1][2][cut:]), batched


def meta_from_parameters(parameters: dict[str, Any], source: str = "config.pbtxt") -> ArtifactMeta:
    """The ArtifactMeta a config's ``parameters`` carry; accepts ``{key: "json"}`` or the
    JSON form of a config (``{key: {"string_value": "json"}}``)."""
    flat = {k: (v.get("string_value", "") if isinstance(v, dict) else str(v)) for k, v in parameters.items()}
    return ArtifactMeta.from_props(flat, source=source)


# -- config text ---------------------------------------------------------------------------
def _q(text: str) -> str:
    """A protobuf text-format string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dims(dims: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(d) for d in dims) + " ]"


def _parameters(meta: ArtifactMeta, extra: dict[str, str]) -> list[str]:
    props = {k: v for k, v in meta.to_props().items() if not k.endswith(".config")}
    props.update(extra)
    return [f"parameters {{ key: {_q(k)} value: {{ string_value: {_q(v)} }} }}" for k, v in props.items()]


def _warmup_dims(spec: TensorSpec, batched: bool, size: tuple[int, int], multiple: int) -> tuple[int, ...]:
    h, w = (max(multiple, s // multiple * multiple) for s in size)
    dims = list(spec.dims)
    if dims[-2] == -1:
        dims[-2] = h
    if dims[-1] == -1:
        dims[-1] = w
    if not batched and dims[0] == -1:
        dims[0] = 1
    return tuple(dims)


def render_config(
    name: str, backend: str, meta: ArtifactMeta, inp: TensorSpec, out: TensorSpec, batched: bool,
    settings: TritonRepoSettings, *, kind: str, max_batch: int, accelerator: list[str] | None = None,
    warmup: tuple[int, int] | None = None, default_filename: str | None = None,
    cc_filenames: dict[str, str] | None = None, extra: dict[str, str] | None = None,
) -> str:
    """The config.pbtxt text of one model."""
    lines = [f"name: {_q(name)}", f"backend: {_q(backend)}", f"max_batch_size: {max_batch if batched else 0}"]
    if default_filename:
        lines.append(f"default_model_filename: {_q(default_filename)}")
    for cc, filename in sorted((cc_filenames or {}).items()):
        lines.append(f"cc_model_filenames {{ key: {_q(cc)} value: {_q(filename)} }}")
    for section, spec in (("input", inp), ("output", out)):
        lines.append(f"{section} [ {{ name: {_q(spec.name)} data_type: {spec.data_type} dims: {_dims(spec.dims)} }} ]")
    if batched and max_batch > 1:
        preferred = sorted({b for b in settings.preferred_batch_sizes if b <= max_batch})
        lines.append("dynamic_batching {")
        if preferred:
            lines.append(f"  preferred_batch_size: {_dims(tuple(preferred))}")
        lines.append(f"  max_queue_delay_microseconds: {settings.max_queue_delay_us}")
        lines.append("}")
    lines.append(f"instance_group [ {{ count: {settings.instances} kind: KIND_{kind.upper()} }} ]")
    if warmup is not None:
        dims = _warmup_dims(inp, batched, warmup, meta.size_multiple)
        lines += [
            "model_warmup [ {",
            f"  name: {_q('zero frame ' + 'x'.join(str(d) for d in dims[-2:]))}",
            "  batch_size: 1",
            f"  inputs {{ key: {_q(inp.name)} value: {{ data_type: {inp.data_type} dims: {_dims(dims)} zero_data: true }} }}",
            "} ]",
        ]
    if accelerator:
        lines += ["optimization { execution_accelerators {", "  gpu_execution_accelerator: [ {", *accelerator,
                  "  } ]", "} }"]
    lines += _parameters(meta, extra or {})
    return "\n".join(lines) + "\n"


def _onnx_accelerator(settings: TritonRepoSettings, meta: ArtifactMeta, inp: TensorSpec, batched: bool,
                      max_batch: int) -> tuple[list[str] | None, list[str]]:
    if settings.kind != "gpu" or settings.onnx_accelerator == "none":
        return None, []
    if settings.onnx_accelerator == "cuda":
        return [f"    name: {_q('cuda')}",
                f"    parameters {{ key: {_q('cudnn_conv_use_max_workspace')} value: {_q('1')} }}"], []
    mode = _PRECISION_MODES.get(meta.precision, "FP32")
    m = meta.size_multiple
    side = max(m, settings.max_side // m * m)
    opt_h, opt_w = (max(m, s // m * m) for s in (settings.warmup or (256, 256)))
    n_max = max_batch if batched else 1

    def shape(n: int, h: int, w: int) -> str:
        return f"{inp.name}:{n}x3x{h}x{w}"

    params = {"precision_mode": mode, "max_workspace_size_bytes": str(settings.workspace_mb << 20),
              "trt_engine_cache_enable": "1", "trt_engine_cache_path": "/tmp/ndr-edge-trt-cache",
              "trt_profile_min_shapes": shape(1, m, m), "trt_profile_opt_shapes": shape(1, opt_h, opt_w),
              "trt_profile_max_shapes": shape(n_max, side, side)}
    notes = [(f"TensorRT EP at {mode}: ONNX Runtime builds an engine on first load (minutes), cached in the "
              f"container's /tmp/ndr-edge-trt-cache; frames up to {side}x{side}")]
    return [f"    name: {_q('tensorrt')}",
            *(f"    parameters {{ key: {_q(k)} value: {_q(v)} }}" for k, v in params.items())], notes


# -- planning -------------------------------------------------------------------------------
def _engine_candidates(directory: Path, listed: set[Path]) -> list[Path]:
    """Engines with a sidecar in the export folder (and one folder down) that the manifest
    does not list: engines built on other GPUs and copied in."""
    found = []
    for base in (directory, *(p for p in sorted(directory.iterdir()) if p.is_dir() and p.name != REPO_DIRNAME
                               and not p.name.startswith("."))):
        for path in sorted(base.iterdir()):
            if path.suffix.lower() in ENGINE_SUFFIXES and path.is_file() and sidecar_path(path).is_file() \
                    and path.resolve() not in listed:
                found.append(path)
    return found


def _cc_key(cc: str) -> str:
    return cc.strip()


def plan_repository(export_dir: str | os.PathLike[str], settings: TritonRepoSettings | None = None) -> list[TritonModel]:
    """The models a repository of ``export_dir`` holds (nothing written)."""
    settings = (settings or TritonRepoSettings()).validate()
    directory = Path(export_dir)
    if directory.name == MANIFEST_NAME:
        directory = directory.parent
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: export folder not found; run ndr-export CHECKPOINT -o {directory} first")
    manifest = Manifest.read(directory)
    entries = [e for e in manifest.artifacts if e.format in ("onnx", "engine")]
    if settings.variants is not None:
        unknown = sorted(set(settings.variants) - {e.name for e in entries})
        if unknown:
            have = ", ".join(e.name for e in entries) or "nothing"
            raise InputError(f"{directory}: no variant {', '.join(unknown)} in the manifest (it lists {have})")
        entries = [e for e in entries if e.name in settings.variants]
    if not entries:
        raise ArtifactError(f"{directory}: the manifest lists no ONNX file or engine; re-run ndr-export")
    models: list[TritonModel] = []
    listed = {(directory / e.path).resolve() for e in manifest.artifacts}
    extra_engines = _engine_candidates(directory, listed)
    for entry in entries:
        path = manifest.resolve(directory, entry)
        name = f"{settings.prefix}-{entry.name}"
        if entry.format == "onnx":
            meta, inp, out, batched = _onnx_io(path)
            max_batch = settings.max_batch_size
            accelerator, notes = _onnx_accelerator(settings, meta, inp, batched, max_batch)
            config = render_config(name, "onnxruntime", meta, inp, out, batched, settings, kind=settings.kind,
                                   max_batch=max_batch, accelerator=accelerator, warmup=settings.warmup,
                                   default_filename="model.onnx",
                                   extra={"ndr_edge.variant": json.dumps(entry.name),
                                          "ndr_edge.sha256": json.dumps(entry.sha256)})
            models.append(TritonModel(name, "onnxruntime", entry.name, entry.precision, config, {"model.onnx": path},
                                      notes))
            continue
        main = EngineSidecar.read(path)
        engines = [(path, main)]
        seen = {_cc_key(main.compute_capability)}
        notes = []
        for other in extra_engines:
            sidecar = EngineSidecar.read(other)
            if sidecar.precision != entry.precision:
                continue
            key = _cc_key(sidecar.compute_capability)
            if key in seen:
                notes.append(f"{name}: {other} is for compute capability {key} too; kept "
                             f"{engines[[_cc_key(s.compute_capability) for _, s in engines].index(key)][0].name}")
                continue
            seen.add(key)
            engines.append((other, sidecar))
        inp, out, batched = _engine_io(main)
        profile_batch = min(p.max[0] for p in main.profiles) if main.profiles else 1
        for other_path, sidecar in engines[1:]:
            other_in, other_out, other_batched = _engine_io(sidecar)
            if (other_in, other_out, other_batched) != (inp, out, batched):
                raise ArtifactError(f"{other_path}: its inputs/outputs differ from {path.name}'s; one Triton model "
                                    "needs engines of one graph")
            profile_batch = min([profile_batch, *(p.max[0] for p in sidecar.profiles)])
        max_batch = max(1, min(settings.max_batch_size, profile_batch))
        if batched and max_batch < settings.max_batch_size:
            notes.append(f"{name}: max_batch_size {max_batch} (the engine profile's max batch)")
        opt = main.profiles[0].opt if main.profiles else None
        warmup = None if settings.warmup is None else ((opt[2], opt[3]) if opt else settings.warmup)
        versions = sorted({s.tensorrt_version for _, s in engines})
        notes.append(f"{name}: built with TensorRT {', '.join(versions)}; serve it with the Triton container that ships "
                     "the same TensorRT release")
        if len(engines) == 1:
            files = {"model.plan": path}
            default, cc_files = "model.plan", None
        else:
            files, cc_files = {}, {}
            for engine_path, sidecar in engines:
                filename = f"model-sm{_cc_key(sidecar.compute_capability).replace('.', '')}.plan"
                files[filename] = engine_path
                cc_files[_cc_key(sidecar.compute_capability)] = filename
            default = None
        extra = {"ndr_edge.variant": json.dumps(entry.name), "ndr_edge.sha256": json.dumps(entry.sha256),
                 "ndr_edge.tensorrt_version": json.dumps(versions[0] if len(versions) == 1 else versions),
                 "ndr_edge.gpus": json.dumps({_cc_key(s.compute_capability): s.gpu_name for _, s in engines})}
        config = render_config(name, "tensorrt", main.meta, inp, out, batched, settings, kind="gpu",
                               max_batch=max_batch, warmup=warmup, default_filename=default, cc_filenames=cc_files,
                               extra=extra)
        models.append(TritonModel(name, "tensorrt", entry.name, entry.precision, config, files, notes))
    return models


# -- validation -----------------------------------------------------------------------------
def require_model_config() -> Any:
    """Triton's ``ModelConfig`` protobuf class, or BackendUnavailableError saying how to get it."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise BackendUnavailableError(
            "tritonclient is not installed, so config.pbtxt cannot be validated against Triton's ModelConfig; "
            "pip install 'tritonclient[grpc]' (ndr-edge[remote]) or pass --no-validate"
        ) from exc
    return model_config_pb2.ModelConfig


def validate_config(text: str, expected_name: str | None = None, source: str = "config.pbtxt") -> Any:
    """Parse ``text`` into Triton's ``ModelConfig`` protobuf (ArtifactError naming the line
    when it does not parse) and check what Triton checks at load; returns the message."""
    from google.protobuf import text_format

    config = require_model_config()()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise ArtifactError(f"{source}: not a valid Triton model config ({exc})") from exc
    problems = []
    if expected_name is not None and config.name != expected_name:
        problems.append(f"name {config.name!r} is not the folder name {expected_name!r}")
    if not config.backend and not config.platform:
        problems.append("no backend or platform")
    if not config.input or not config.output:
        problems.append("no input or output")
    if config.max_batch_size < 0:
        problems.append("negative max_batch_size")
    if config.HasField("dynamic_batching") and config.max_batch_size < 1:
        problems.append("dynamic_batching needs max_batch_size >= 1")
    for size in config.dynamic_batching.preferred_batch_size:
        if size > config.max_batch_size:
            problems.append(f"preferred batch size {size} > max_batch_size {config.max_batch_size}")
    for tensor in (*config.input, *config.output):
        if any(d < -1 or d == 0 for d in tensor.dims):
            problems.append(f"{tensor.name}: dims {list(tensor.dims)}")
    if problems:
        raise ArtifactError(f"{source}: {'; '.join(problems)}")
    return config


# -- writing --------------------------------------------------------------------------------
def _place(src: Path, dst: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def write_repository(
    export_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
    settings: TritonRepoSettings | None = None, validate: bool = True,
) -> TritonRepository:
    """Write the model repository of ``export_dir`` to ``out`` (default ``EXPORT/triton``).

    Built in a temporary folder beside ``out`` and renamed into place, so ``out`` is complete
    or untouched; an existing ``out`` is replaced only when this function wrote it (it holds
    ``ndr_edge_triton.json``). With ``validate`` (default) every config is parsed with
    Triton's ModelConfig protobuf first (needs tritonclient)."""
    settings = (settings or TritonRepoSettings()).validate()
    directory = Path(export_dir)
    if directory.name == MANIFEST_NAME:
        directory = directory.parent
    target = Path(out) if out is not None else directory / REPO_DIRNAME
    foreign = target.exists() and not (target / INDEX_NAME).is_file()
    if foreign and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target}: exists and is not a repository ndr-edge wrote; remove it or choose another "
                         "output folder")
    models = plan_repository(directory, settings)
    if validate:
        for model in models:
            validate_config(model.config, model.name, source=f"{model.name}/config.pbtxt")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for model in models:
            version = staging / model.name / "1"
            version.mkdir(parents=True)
            (staging / model.name / "config.pbtxt").write_text(model.config)
            for filename, src in model.files.items():
                _place(src, version / filename, settings.link)
        atomic_write_json(staging / INDEX_NAME, {
            "schema": INDEX_SCHEMA, "export": str(directory.resolve()), "validated": validate,
            "models": [{"name": m.name, "backend": m.backend, "variant": m.variant, "precision": m.precision,
                        "files": {k: str(v) for k, v in m.files.items()}, "notes": m.notes} for m in models],
        })
        for path in staging.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(staging, 0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TritonRepository(target, models, validate)


def docker_command(repository: str | os.PathLike[str], release: str = "24.08", gpus: bool = True) -> str:
    """The one ``docker run`` line that serves ``repository`` with NVIDIA's Triton container
    (HTTP 8000, gRPC 8001, metrics 8002). Pick the release whose TensorRT built the engines."""
    path = Path(repository).resolve()
    gpu = "--gpus all " if gpus else ""
    return (f"docker run --rm {gpu}-p 8000:8000 -p 8001:8001 -p 8002:8002 -v {path}:/models:ro "
            f"nvcr.io/nvidia/tritonserver:{release}-py3 tritonserver --model-repository=/models")


__all__ = [
    "INDEX_NAME",
    "REPO_DIRNAME",
    "TensorSpec",
    "TritonModel",
    "TritonRepoSettings",
    "TritonRepository",
    "docker_command",
    "meta_from_parameters",
    "plan_repository",
    "render_config",
    "require_model_config",
    "validate_config",
    "write_repository",
]
