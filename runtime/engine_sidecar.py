"""The JSON sidecar of a TensorRT engine (``X.engine.json``) and the checks made before an
engine is trusted: same TensorRT version, same GPU architecture, an input inside one of its
optimisation profiles. Pure functions over plain data -- no TensorRT, no GPU -- so they are
tested everywhere and the TensorRT backend only feeds them what the machine reports.

:class:`EngineSidecar` is the one schema: the export builds one and writes
:meth:`EngineSidecar.to_dict`, the runtime reads it back with :meth:`EngineSidecar.read`.
Keys: ``meta`` (ArtifactMeta fields), ``tensorrt_version``, ``gpu_name``,
``compute_capability`` ("8.7"), ``precision``, ``profiles`` (list of ``{"min": [n, c, h, w],
"opt": [...], "max": [...]}``), ``io`` (list of ``{name, mode, dtype, shape}``),
``onnx_sha256``, and build facts kept in ``extra`` (``strongly_typed``, ``workspace_mb``,
``timing_cache``, ``build_seconds``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ndr_edge.artifact import ArtifactMeta, atomic_write_json
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.variants import SIDECAR_SUFFIX
from ndr_edge.runtime.backend import InputLimits

REBUILD_HINT = ("rebuild the engine on this machine: ndr-build EXPORT_FOLDER (torch-free), or ndr-export CHECKPOINT "
                "--engine (or trtexec --onnx=MODEL.onnx)")


_KEYS = ("meta", "tensorrt_version", "gpu_name", "compute_capability", "precision", "profiles", "io", "onnx_sha256")


def sidecar_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class EngineSidecar:
    """What the export recorded about an engine when it built it."""

    path: Path
    meta: ArtifactMeta
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profiles: tuple[InputLimits, ...]
    io: tuple[dict[str, Any], ...] = ()
    onnx_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's JSON content (what :meth:`from_dict` reads)."""
        data = {key: getattr(self, key) for key in _KEYS}
        data.update(meta=asdict(self.meta), io=[dict(t) for t in self.io], profiles=[p.to_dict() for p in self.profiles])
        return {**data, **self.extra}

    def write(self) -> None:
        """Write :meth:`to_dict` to :attr:`path` atomically."""
        atomic_write_json(self.path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> EngineSidecar:
        try:
            meta_fields = dict(data["meta"])
            meta_fields["value_range"] = tuple(meta_fields.get("value_range", (0.0, 1.0)))
            known = ArtifactMeta.__dataclass_fields__
            meta = ArtifactMeta(**{k: v for k, v in meta_fields.items() if k in known})
            profiles = tuple(
                InputLimits(min=_dims(p["min"]), opt=_dims(p["opt"]), max=_dims(p["max"])) for p in data["profiles"]
            )
            return cls(
                path=path,
                meta=meta,
                tensorrt_version=str(data["tensorrt_version"]),
                gpu_name=str(data["gpu_name"]),
                compute_capability=str(data["compute_capability"]),
                precision=str(data.get("precision", meta.precision)),
                profiles=profiles,
                io=tuple(data.get("io", ())),
                onnx_sha256=str(data.get("onnx_sha256", "")),
                extra={k: v for k, v in data.items() if k not in _KEYS},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path}: incomplete engine sidecar ({type(exc).__name__}: {exc}); {REBUILD_HINT}") from exc

    @classmethod
    def read(cls, engine: str | Path) -> EngineSidecar:
        path = sidecar_path(engine)
        if not path.is_file():
            raise ArtifactError(
                f"{path}: the engine's sidecar is missing (it holds the model's metadata and build machine); "
                f"keep it beside the engine or {REBUILD_HINT}"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: unreadable engine sidecar ({exc}); {REBUILD_HINT}") from exc
        if not isinstance(data, dict):
            raise ArtifactError(f"{path}: engine sidecar is not a JSON object; {REBUILD_HINT}")
        return cls.from_dict(data, path)


def _dims(values: Any) -> tuple[int, int, int, int]:
    dims = tuple(int(v) for v in values)
    if len(dims) != 4:
        raise ValueError(f"profile shape {values} is not NCHW")
    return dims  # type: ignore[return-value]


def _version_key(version: str) -> tuple[str, ...]:
    """Engines are tied to a TensorRT release: compare major.minor.patch."""
    return tuple(version.strip().split(".")[:3])


def check_compatibility(
    sidecar: EngineSidecar, tensorrt_version: str, gpu_name: str, compute_capability: str
) -> list[str]:
    """Refuse an engine built by another TensorRT release or for another GPU architecture
    (ArtifactError naming what to rebuild). Returns warnings for softer differences (same
    architecture, another GPU model)."""
    engine = sidecar.path.name.removesuffix(SIDECAR_SUFFIX)
    if _version_key(sidecar.tensorrt_version) != _version_key(tensorrt_version):
        raise ArtifactError(
            f"{engine}: built with TensorRT {sidecar.tensorrt_version}, this machine has TensorRT {tensorrt_version}; "
            f"engines only load in the TensorRT release that built them; {REBUILD_HINT}"
        )
    if sidecar.compute_capability.strip() != compute_capability.strip():
        raise ArtifactError(
            f"{engine}: built for {sidecar.gpu_name} (compute capability {sidecar.compute_capability}), this GPU is "
            f"{gpu_name} (compute capability {compute_capability}); {REBUILD_HINT}"
        )
    warnings = []
    if sidecar.gpu_name.strip() != gpu_name.strip():
        warnings.append(
            f"{engine}: built on {sidecar.gpu_name}, running on {gpu_name} (same compute capability "
            f"{compute_capability}); it runs, but rebuild on this GPU for its best tactics"
        )
    return warnings


def pick_profile(shape: tuple[int, ...], profiles: tuple[InputLimits, ...], engine: str = "engine") -> int:
    """Index of the first optimisation profile that accepts ``shape`` (NCHW), else InputError
    saying which shapes the engine takes and what to rebuild."""
    for index, profile in enumerate(profiles):
        if profile.accepts(shape):
            return index
    ranges = "; ".join(f"profile {i}: {p.describe()}" for i, p in enumerate(profiles)) or "no profiles"
    raise InputError(
        f"{engine}: input shape {'x'.join(map(str, shape))} is outside the engine's profiles ({ranges}); "
        "use tiling with a tile inside the profile (--tile), or rebuild the engine with a larger max shape "
        "(ndr-export CHECKPOINT --engine --max NxCxHxW)"
    )


def union_limits(profiles: tuple[InputLimits, ...]) -> InputLimits:
    """The smallest box holding every profile (used to size buffers and default tiles)."""
    if not profiles:
        raise ArtifactError("engine has no optimisation profile; " + REBUILD_HINT)

    def pick(attr: str, fn: Any) -> tuple[int, int, int, int]:
        return tuple(fn(getattr(p, attr)[i] for p in profiles) for i in range(4))  # type: ignore[return-value]

    return InputLimits(min=pick("min", min), opt=profiles[0].opt, max=pick("max", max))
