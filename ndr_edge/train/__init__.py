"""Bidirectional training of NDR-Restore (``ndr-train``)."""

from ndr_edge.train.config import SCHEDULES, TrainConfig
from ndr_edge.train.loop import Trainer

__all__ = ["SCHEDULES", "TrainConfig", "Trainer"]
