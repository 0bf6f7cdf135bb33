"""Bidirectional training of NDR-Restore (``ndr-train``)."""

from .config import SCHEDULES, TrainConfig
from .loop import Trainer

__all__ = ["SCHEDULES", "TrainConfig", "Trainer"]
