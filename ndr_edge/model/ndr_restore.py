"""The top-level NDR-Restore module, laid out as the published checkpoints are."""

from __future__ import annotations

import torch
from torch import nn

from ndr_edge.model.config import NDRConfig
from ndr_edge.model.degradation_net import DegradationNet
from ndr_edge.model.restoration import RestorationNet


class NDRRestore(nn.Module):
    """NDR (``degradation_representations``), the restoration network and, for training,
    NDR-Degrad. The NDR is one parameter, shared with ``restoration_net.dr``.
    """

    def __init__(self, config: NDRConfig, with_degradation_net: bool = True) -> None:
        super().__init__()
        self.config = config
        self.degradation_representations = nn.Parameter(torch.randn(1, config.ndr_entries, config.ndr_dim))
        self.restoration_net = RestorationNet(config, ndr=self.degradation_representations)
        self.degradation_net = DegradationNet(config) if with_degradation_net else None

    def forward(self, degraded: torch.Tensor, clean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Restore ``degraded``; with ``clean`` also re-synthesise the degradation from it."""
        restored, degradations = self.restoration_net(degraded)
        if clean is None or self.degradation_net is None:
            return restored, None
        return restored, self.degradation_net(clean, degradations)
