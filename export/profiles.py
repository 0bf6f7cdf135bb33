"""Optimisation profiles for the TensorRT engines: ``--min/--opt/--max`` NxCxHxW shapes.

Parsed and checked here (no TensorRT needed), so a bad profile fails before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ndr_edge.errors import InputError
from ndr_edge.runtime.backend import InputLimits

Shape = tuple[int, int, int, int]

DEFAULT_MIN: Shape = (1, 3, 64, 64)
DEFAULT_OPT: Shape = (1, 3, 256, 256)
DEFAULT_MAX: Shape = (4, 3, 1024, 1024)


def parse_shape(text: str, what: str = "shape") -> Shape:
    """``"1x3x256x256"`` (or with commas) -> (1, 3, 256, 256)."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"{what} {text!r}: write it as NxCxHxW, e.g. 1x3x256x256") from None
    if len(values) != 4:
        raise InputError(f"{what} {text!r}: needs four numbers NxCxHxW, e.g. 1x3x256x256")
    return values


def format_shape(shape: Sequence[int]) -> str:
    return "x".join(str(v) for v in shape)


@dataclass(frozen=True)
class Profile(InputLimits):
    """One optimisation profile of the engine's single input, as given on the command line
    (the runtime's :class:`~ndr_edge.runtime.backend.InputLimits` with defaults and checks)."""

    min: Shape = DEFAULT_MIN
    opt: Shape = DEFAULT_OPT
    max: Shape = DEFAULT_MAX

    def check(self, size_multiple: int = 8) -> Profile:
        """Raise InputError unless min <= opt <= max, C is 3 and H, W are multiples of ``size_multiple``."""
        for label, shape in (("--min", self.min), ("--opt", self.opt), ("--max", self.max)):
            n, c, h, w = shape
            if c != 3:
                raise InputError(f"{label} {format_shape(shape)}: the network takes 3 channels; use Nx3xHxW")
            if n < 1 or h < size_multiple or w < size_multiple:
                raise InputError(f"{label} {format_shape(shape)}: N must be >= 1 and H, W >= {size_multiple}")
            if h % size_multiple or w % size_multiple:
                raise InputError(
                    f"{label} {format_shape(shape)}: H and W must be multiples of {size_multiple}; "
                    f"round them, e.g. {n}x3x{_round(h, size_multiple)}x{_round(w, size_multiple)}"
                )
        for axis, name in enumerate("NCHW"):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise InputError(
                    f"profile {format_shape(self.min)} / {format_shape(self.opt)} / {format_shape(self.max)}: "
                    f"{name} must satisfy min <= opt <= max; fix --min/--opt/--max"
                )
        return self

    def contains(self, shape: Sequence[int]) -> bool:
        return all(lo <= v <= hi for lo, v, hi in zip(self.min, shape, self.max))

    def require(self, shape: Sequence[int], what: str) -> None:
        """InputError naming ``what`` when ``shape`` lies outside the profile."""
        if not self.contains(shape):
            raise InputError(
                f"{what} {format_shape(shape)} is outside the engine profile "
                f"{format_shape(self.min)} .. {format_shape(self.max)}; widen --min/--max or use other sizes"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        shapes = [tuple(int(v) for v in data[key]) for key in ("min", "opt", "max")]
        if any(len(shape) != 4 for shape in shapes):
            raise InputError(f"profile {data}: every shape needs four numbers NxCxHxW")
        return cls(*shapes)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, min_shape: str | None = None, opt_shape: str | None = None, max_shape: str | None = None) -> Profile:
        """From CLI strings; an unset opt is the default opt clamped into [min, max]."""
        lo = parse_shape(min_shape, "--min") if min_shape else DEFAULT_MIN
        hi = parse_shape(max_shape, "--max") if max_shape else DEFAULT_MAX
        if opt_shape:
            mid = parse_shape(opt_shape, "--opt")
        else:
            mid = tuple(min(max(a, d), b) for a, d, b in zip(lo, DEFAULT_OPT, hi))  # type: ignore[assignment]
        return cls(lo, mid, hi)


def _round(value: int, multiple: int) -> int:
    return max(multiple, (value + multiple - 1) // multiple * multiple)

