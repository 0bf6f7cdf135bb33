"""What every exported artifact says about itself, and the export manifest. Torch-free:
the export writes these, the runtime and the report read them.

ONNX files carry :class:`ArtifactMeta` in ``metadata_props`` (keys ``ndr_edge.*``);
TensorRT engines carry it in their JSON sidecar (``<engine>.json``, key ``meta``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ndr_edge.errors import ArtifactError

INPUT_NAME = "input"
OUTPUT_NAME = "output"
META_PREFIX = "ndr_edge."
MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = 1


@dataclass(frozen=True)
class ArtifactMeta:
    """Model-side conventions a runtime needs to feed the artifact correctly."""

    preset: str | None
    channel_order: str = "BGR"  # "BGR" or "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    size_multiple: int = 8
    source_sha256: str = ""
    precision: str = "fp32"  # fp32 | fp16 | int8
    config: dict[str, Any] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        data = asdict(self)
        return {META_PREFIX + key: json.dumps(value) for key, value in data.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "artifact") -> ArtifactMeta:
        data = {k[len(META_PREFIX) :]: v for k, v in props.items() if k.startswith(META_PREFIX)}
        if "channel_order" not in data:
            raise ArtifactError(f"{source}: no ndr_edge metadata; export it with ndr-export")
        try:
            values = {k: json.loads(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{source}: unreadable ndr_edge metadata ({exc})") from exc
        values["value_range"] = tuple(values.get("value_range", (0.0, 1.0)))
        return cls(**values)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def default_file_mode(mode: int = 0o666) -> int:
    """The permissions a plain ``open``/``mkdir`` would give (``mode`` less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def publish(tmp: str | os.PathLike[str], target: str | os.PathLike[str], mode: int = 0o666) -> None:
    """Rename a finished temporary file into place with a normal file's permissions.

    ``mkstemp`` makes private (0600) files; artifacts are for sharing.
    """
    os.chmod(tmp, default_file_mode(mode))
    os.replace(tmp, target)


@contextmanager
def atomic_output(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is renamed into place
    (:func:`publish`), on any error removed, so ``path`` is complete or untouched."""
    target = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    with atomic_output(path) as tmp, os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode())


@dataclass
class ArtifactEntry:
    """One deployable file of an export: ``format`` is ``onnx`` or ``engine``."""

    name: str
    format: str
    precision: str
    path: str  # relative to the export directory
    sha256: str
    verification: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    """``OUTDIR/manifest.json``: where the artifacts came from and how each was verified."""

    source: dict[str, Any]  # path, sha256, preset, channel_order, value_range
    artifacts: list[ArtifactEntry] = field(default_factory=list)
    stages: dict[str, Any] = field(default_factory=dict)
    schema: int = MANIFEST_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, directory: str | os.PathLike[str]) -> Path:
        path = Path(directory) / MANIFEST_NAME
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def read(cls, directory: str | os.PathLike[str]) -> Manifest:
        directory = Path(directory)
        path = directory / MANIFEST_NAME if directory.is_dir() else directory
        if not path.is_file():
            raise ArtifactError(f"{path}: no export manifest here; run ndr-export CHECKPOINT -o {directory} first")
        try:
            data = json.loads(path.read_text())
            artifacts = [ArtifactEntry(**entry) for entry in data.pop("artifacts", [])]
            return cls(artifacts=artifacts, **data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ArtifactError(f"{path}: not a valid ndr-edge manifest ({exc})") from exc

    def resolve(self, directory: str | os.PathLike[str], entry: ArtifactEntry) -> Path:
        path = Path(directory) / entry.path
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing; re-run ndr-export")
        return path
