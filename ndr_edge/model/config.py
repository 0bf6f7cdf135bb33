"""Configuration of the NDR-Restore family: one dataclass, named presets.

A configuration describes both networks of the family: the restoration network that is
exported and the auxiliary NDR-Degrad network used only in training. Every field is
recoverable from a checkpoint's tensors (see ``ndr_edge.checkpoint.infer``), so the
authors' checkpoints load without a side file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ndr_edge.errors import ConfigError

__all__ = ["PRESETS", "ConfigError", "NDRConfig", "Preset", "get_preset", "preset_name"]



@dataclass(frozen=True)
class NDRConfig:
    """Shape of one member of the NDR-Restore family.

    Widths double per level: ``dim`` at full resolution, ``2*dim``, ``4*dim`` and
    ``8*dim`` at the bottleneck; the first decoder level and the refinement run at
    ``2*dim``. ``num_blocks`` and ``heads`` give the encoder levels 1-3 and the
    bottleneck; decoder level l repeats encoder level l.
    """

    dim: int = 48
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    num_refinement_blocks: int = 3
    heads: tuple[int, int, int, int] = (1, 2, 4, 6)
    ffn_expansion_factor: float = 2.66
    ndr_entries: int = 32
    ndr_dim: int = 128
    dq_dim: int = 64
    rank: int = 16
    degrad_dim: int = 48
    degrad_rcab: int = 1
    # The public code has none (output = exit conv). The edge presets add one
    # (output = input + exit conv) so that a small model starts at the identity.
    global_residual: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_blocks", tuple(int(n) for n in self.num_blocks))
        object.__setattr__(self, "heads", tuple(int(h) for h in self.heads))
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise ConfigError("num_blocks and heads need four entries (levels 1-3 and the bottleneck)")
        if self.dim <= 0 or self.dim % 2:
            raise ConfigError(f"dim must be a positive even number, got {self.dim}")
        for level, heads in enumerate(self.heads):
            width = self.dim * 2**level
            if heads <= 0 or width % heads:
                raise ConfigError(f"level {level + 1}: width {width} is not divisible by {heads} heads")
        if (2 * self.dim) % self.heads[0]:
            raise ConfigError(f"decoder width {2 * self.dim} is not divisible by {self.heads[0]} heads")
        if min(self.num_blocks) < 1 or self.num_refinement_blocks < 0:
            raise ConfigError("every level needs at least one block")

    def widths(self) -> tuple[int, int, int, int]:
        return (self.dim, self.dim * 2, self.dim * 4, self.dim * 8)

    def hidden(self, width: int) -> int:
        """GDFN hidden width for a level of ``width`` channels (as the published code)."""
        return int(width * self.ffn_expansion_factor)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["num_blocks"] = list(self.num_blocks)
        data["heads"] = list(self.heads)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NDRConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration fields: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class Preset:
    name: str
    config: NDRConfig
    summary: str
    aliases: tuple[str, ...] = field(default=())


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("ndr-restore", NDRConfig(), "the published configuration (27.3 M parameters)", ("published",)),
        Preset(
            "ndr-edge-s",
            NDRConfig(dim=24, num_blocks=(2, 3, 3, 4), num_refinement_blocks=2, heads=(1, 2, 4, 4), degrad_dim=24,
                global_residual=True,
            ),
            "edge member for desktop GPUs and Jetson Orin",
        ),
        Preset(
            "ndr-edge-xs",
            NDRConfig(dim=16, num_blocks=(1, 1, 2, 2), num_refinement_blocks=1, heads=(1, 2, 2, 4), degrad_dim=16,
                global_residual=True,
            ),
            "smallest member: trains on two CPU cores in minutes",
        ),
    )
}


def get_preset(name: str) -> NDRConfig:
    """The configuration of a named preset; ``ConfigError`` lists the valid names."""
    for preset in PRESETS.values():
        if name == preset.name or name in preset.aliases:
            return preset.config
    raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")


def preset_name(config: NDRConfig) -> str | None:
    """The preset a configuration equals, if any."""
    for preset in PRESETS.values():
        if preset.config == config:
            return preset.name
    return None
