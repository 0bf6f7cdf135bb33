"""What a calibration set is made of: a mix of degradations, a crop size, a count and a seed.

INT8 ranges are only as good as the activations calibration sees: a set of clean frames
alone (or of noisy frames alone) clips what rain or haze produce. A recipe says how many
samples of each degradation a set holds, so the ranges cover all of them. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ndr_edge.degradations import CLEAN  # an undegraded crop (the network must not clip those either)
from ndr_edge.errors import InputError

REAL = "real"  # a crop of a real degraded frame, used as it is
RATIO_TOLERANCE = 1e-6
DEFAULT_RATIOS: dict[str, float] = {
    CLEAN: 0.1,
    "noise": 0.25,
    "rain": 0.2,
    "haze": 0.2,
    "lowres": 0.1,
    "mix": 0.15,
}


def known_degradations() -> tuple[str, ...]:
    """Names a recipe may use: ``clean``, ``real`` and the synthetic degradations of
    ``ndr_edge.degradations`` (a family name such as ``noise`` draws one of its members)."""
    from ndr_edge.degradations import NAMES

    return (CLEAN, REAL, *(name for name in NAMES if name != CLEAN))


@dataclass(frozen=True)
class CalibrationRecipe:
    """How to build a calibration set.

    ``ratios`` maps a degradation name to the share of samples that carry it; the shares
    sum to one. ``crop`` is the square sample size (a multiple of 8, the model's size
    multiple); ``samples`` the number of samples; ``seed`` makes the set reproducible;
    ``shard_size`` the number of samples per file on disk.
    """

    ratios: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATIOS))
    crop: int = 96
    samples: int = 64
    seed: int = 0
    shard_size: int = 16

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.ratios:
            raise InputError("calibration recipe: no degradations given; e.g. --recipe noise=0.5,rain=0.5")
        known = known_degradations()
        for name, share in self.ratios.items():
            if name not in known:
                raise InputError(f"calibration recipe: unknown degradation {name!r}; choose from {', '.join(known)}")
            if not isinstance(share, (int, float)) or not math.isfinite(share) or share < 0:
                raise InputError(f"calibration recipe: ratio of {name!r} must be a number >= 0, got {share!r}")
        total = math.fsum(self.ratios.values())
        if abs(total - 1.0) > RATIO_TOLERANCE:
            raise InputError(
                f"calibration recipe: ratios sum to {total:.6g}, not 1 "
                f"({self.to_string()}); scale them so that they add up to 1"
            )
        if REAL in self.ratios and len(self.ratios) > 1:
            raise InputError("calibration recipe: 'real' frames cannot be mixed with synthetic degradations")
        if self.crop < 8 or self.crop % 8:
            raise InputError(f"calibration recipe: crop {self.crop} must be a positive multiple of 8")
        if self.samples < 1:
            raise InputError(f"calibration recipe: samples must be >= 1, got {self.samples}")
        if self.shard_size < 1:
            raise InputError(f"calibration recipe: shard size must be >= 1, got {self.shard_size}")

    @classmethod
    def from_string(cls, text: str, **kwargs: Any) -> CalibrationRecipe:
        """``"noise=0.3,rain=0.2,haze=0.2,lowres=0.1,mix=0.2"`` -> a recipe (other fields from kwargs)."""
        ratios: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name:
                raise InputError(f"calibration recipe: {part!r} is not NAME=RATIO (e.g. noise=0.3)")
            if name in ratios:
                raise InputError(f"calibration recipe: {name!r} is given twice")
            try:
                ratios[name] = float(value)
            except ValueError:
                raise InputError(f"calibration recipe: ratio of {name!r} is not a number: {value.strip()!r}") from None
        return cls(ratios=ratios, **kwargs)

    @classmethod
    def real(cls, **kwargs: Any) -> CalibrationRecipe:
        """A recipe for a folder of real degraded frames: crops are used as they are."""
        return cls(ratios={REAL: 1.0}, **kwargs)

    def to_string(self) -> str:
        return ",".join(f"{name}={share:g}" for name, share in self.ratios.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratios": dict(self.ratios),
            "crop": self.crop,
            "samples": self.samples,
            "seed": self.seed,
            "shard_size": self.shard_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationRecipe:
        unknown = sorted(set(data) - {"ratios", "crop", "samples", "seed", "shard_size"})
        if unknown:
            raise InputError(f"calibration recipe: unknown fields {', '.join(unknown)}")
        return cls(**data)

    @property
    def is_real(self) -> bool:
        return REAL in self.ratios

    def counts(self) -> dict[str, int]:
        """Samples per degradation: ``samples * ratio`` rounded by largest remainder (sums to ``samples``)."""
        exact = {name: share * self.samples for name, share in self.ratios.items()}
        counts = {name: math.floor(value) for name, value in exact.items()}
        left = self.samples - sum(counts.values())
        # ties broken by the recipe's order, so the split is deterministic
        order = sorted(exact, key=lambda n: (-(exact[n] - counts[n]), list(self.ratios).index(n)))
        for name in order[:left]:
            counts[name] += 1
        return counts
