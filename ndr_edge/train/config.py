"""Training configuration: one dataclass, every default the one ``ndr-train`` uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEDULES = ("joint", "alternating")


@dataclass
class TrainConfig:
    """Bidirectional NDR-Restore training.

    ``joint`` is the published code's schedule: one Adam over every parameter, loss =
    L1(restored, clean) + L1(NDR-Degrad(clean, D), degraded). ``alternating`` is the
    paper's: odd steps update the restoration network and the NDR on that loss with
    NDR-Degrad frozen, even steps update NDR-Degrad on the degradation loss with the
    restoration side frozen (two Adam optimisers).
    """

    preset: str = "ndr-edge-xs"
    out: str = "runs/ndr-edge-xs.safetensors"
    data: list[str] = field(default_factory=list)  # folders of clean images; empty -> demo train images
    degradations: list[str] = field(default_factory=lambda: ["noise", "rain", "haze", "lowres"])
    val_degradations: list[str] = field(default_factory=lambda: ["noise25", "rain", "haze", "lowres4"])
    steps: int = 2000
    batch: int = 8
    crop: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-8
    clip: float = 10.0
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75, 0.9])  # fractions of steps
    gamma: float = 0.5
    schedule: str = "joint"
    seed: int = 0
    val_every: int = 250
    save_every: int = 500
    workers: int = 0
    channel_order: str = "BGR"
    resume: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.crop % 8:
            raise ValueError(f"crop must be a multiple of 8, got {self.crop}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    def milestone_steps(self) -> list[int]:
        return [int(m * self.steps) if m < 1 else int(m) for m in self.milestones]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
