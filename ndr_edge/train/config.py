"""Training configuration: one dataclass, every default the one ``ndr-train`` uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ndr_edge.errors import InputError

SCHEDULES = ("joint", "alternating")
#: Restoration losses. ``l1``: the published L1 over the batch. ``relative``: each sample's
#: L1 divided by its degraded input's own L1 error (floored at ``RELATIVE_FLOOR``, 0.02),
#: so a dense-haze crop (error 0.2) and a light-noise crop (error 0.02) pull equally hard. ``psnr``: the mean over samples of
#: ``10 log10(MSE)``, the negative PSNR, whose gradient is each sample's MSE gradient over
#: its own MSE (per-sample normalisation that follows the current error).
LOSSES = ("l1", "relative", "psnr")
#: ``auto``: bf16 autocast where the CPU has native bf16 (AVX512-BF16 or AMX) or on CUDA,
#: else fp32 (bf16 emulated in AVX2 runs about 10x slower than fp32).
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    """Bidirectional NDR-Restore training.

    ``joint`` is the published code's schedule: one Adam over every parameter, loss =
    L1(restored, clean) + L1(NDR-Degrad(clean, D), degraded). ``alternating`` is the
    paper's: odd steps update the restoration network and the NDR on that loss with
    NDR-Degrad frozen, even steps update NDR-Degrad on the degradation loss with the
    restoration side frozen (two Adam optimisers).
    """

    preset: str | None = None  # None: ndr-edge-xs, or the resumed checkpoint's
    out: str = "runs/ndr-edge-xs.safetensors"
    data: list[str] = field(default_factory=list)  # folders of clean images; empty -> demo train images
    degradations: list[str] = field(default_factory=lambda: ["noise", "rain", "haze", "lowres", "mix"])
    val_degradations: list[str] = field(default_factory=lambda: ["noise25", "rain", "haze", "lowres2", "lowres4", "mix"])
    loss: str = "l1"
    #: ``psnr`` loss: ``10 log10(MSE + 10^(-ceiling/10))``, so a crop restored past about this
    #: PSNR stops pulling. 80 dB (the old 1e-8) is effectively none; about 40 keeps ``clean``
    #: crops (where the identity error tends to 0 and log-MSE's gradient grows as 1/RMSE)
    #: from outweighing the rest of the batch.
    psnr_ceiling: float = 80.0
    balanced: bool = True  # sample i gets degradation i mod len(degradations)
    procedural: float = 0.0  # fraction of crops from dead-leaves images instead of photos
    grey: float = 0.25  # probability that a clean crop is made greyscale (CropConfig.grey)
    tone: float = 0.0  # probability that a clean crop's contrast and level change (CropConfig.tone)
    procedural_images: int = 48  # size of the seeded dead-leaves pool (256 px each)
    structured: float = 0.0  # fraction of crops from structured scenes (walls, tiles, lines)
    structured_images: int = 48  # size of the seeded structured pool (256 px each)
    objects: float = 0.0  # fraction of crops from objects on flat backgrounds (coins, moons)
    objects_images: int = 48  # size of the seeded objects pool (256 px each)
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False  # torch.compile the training forward (minutes of warm-up)
    device: str = "auto"  # auto: cuda when available, else cpu
    keep_best: bool = True  # also keep the checkpoint of the best mean validation gain (X.best.safetensors)
    snapshots: str | None = None  # folder: keep a copy of every periodic save there (step-N.safetensors), for ndr-average
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
        for name, value, valid in (("schedule", self.schedule, SCHEDULES), ("loss", self.loss, LOSSES),
                                   ("precision", self.precision, TRAIN_PRECISIONS)):
            if value not in valid:
                raise InputError(f"{name} must be one of {', '.join(valid)}, got {value!r}")
        if not 10.0 <= self.psnr_ceiling <= 100.0:
            raise InputError(f"psnr_ceiling must be between 10 and 100 dB, got {self.psnr_ceiling}")
        if self.crop % 8:
            raise InputError(f"crop must be a multiple of 8, got {self.crop}")
        for name in ("grey", "tone"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.procedural <= 1.0:
            raise InputError(f"procedural must be a fraction in [0, 1], got {self.procedural}")
        if not 0.0 <= self.structured <= 1.0 - self.procedural:
            raise InputError(f"structured must be a fraction in [0, 1 - procedural], got {self.structured} "
                             f"(procedural {self.procedural})")
        if not 0.0 <= self.objects <= 1.0 - self.procedural - self.structured + 1e-9:
            raise InputError(f"objects must be a fraction in [0, 1 - procedural - structured], got {self.objects} "
                             f"(procedural {self.procedural}, structured {self.structured})")
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    def milestone_steps(self) -> list[int]:
        return [int(m * self.steps) if m < 1 else int(m) for m in self.milestones]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
