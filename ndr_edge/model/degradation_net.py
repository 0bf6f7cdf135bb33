"""NDR-Degrad (``degradation_net``): re-synthesises the degraded image from the clean one
and the restoration network's degradation estimates D_1..D_3. Training only; never exported.
"""

from __future__ import annotations

import torch
from torch import nn

from ndr_edge.model.blocks import Downsample, Upsample
from ndr_edge.model.config import NDRConfig
from ndr_edge.model.ndr import DegradationInjection


class ResBlock(nn.Module):
    """x + conv(relu(conv(x))), 3x3 convs with bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class RCAB(nn.Module):
    """Residual channel-attention block."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            ChannelAttention(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    def __init__(self, channels: int, num_rcab: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[RCAB(channels) for _ in range(num_rcab)], nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DegradationNet(nn.Module):
    def __init__(self, config: NDRConfig) -> None:
        super().__init__()
        c = config.degrad_dim
        c1, c2, c3, c4 = c, 2 * c, 4 * c, 8 * c
        self.extractor = nn.Conv2d(3, c1, 3, padding=1)
        self.block1 = ResBlock(c1)
        self.pool1 = Downsample(c1)
        self.block2 = ResBlock(c2)
        self.pool2 = Downsample(c2)
        self.block3 = ResBlock(c3)
        self.pool3 = Downsample(c3)
        self.bottom = ResBlock(c4)
        self.inject_degradation1 = DegradationInjection(c1, config.dq_dim, config.rank)
        self.inject_degradation2 = DegradationInjection(c2, config.dq_dim, config.rank)
        self.inject_degradation3 = DegradationInjection(c3, config.dq_dim, config.rank)
        self.up3 = Upsample(c4)
        self.block_up3 = nn.Sequential(nn.Conv2d(c4, c3, 1, bias=False), ResBlock(c3))
        self.up2 = Upsample(c3)
        self.block_up2 = nn.Sequential(nn.Conv2d(c3, c2, 1, bias=False), ResBlock(c2))
        self.up1 = Upsample(c2)
        self.block_up1 = nn.Sequential(nn.Conv2d(c2, c2, 1, bias=False), ResBlock(c2))
        self.refinement = ResidualGroup(c2, config.degrad_rcab)
        self.reconstruction = nn.Conv2d(c2, 3, 3, padding=1)

    def forward(self, clean: torch.Tensor, degradations: list[torch.Tensor]) -> torch.Tensor:
        d1, d2, d3 = degradations
        e1 = self.block1(self.extractor(clean))
        e2 = self.block2(self.pool1(e1))
        e3 = self.block3(self.pool2(e2))
        bottom = self.bottom(self.pool3(e3))
        x = self.block_up3(torch.cat([self.inject_degradation3(e3, d3), self.up3(bottom)], dim=1))
        x = self.block_up2(torch.cat([self.inject_degradation2(e2, d2), self.up2(x)], dim=1))
        x = self.block_up1(torch.cat([self.inject_degradation1(e1, d1), self.up1(x)], dim=1))
        return self.reconstruction(self.refinement(x)) + clean
