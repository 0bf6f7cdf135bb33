"""The restoration network (``restoration_net``): the part of NDR-Restore that is exported."""

from __future__ import annotations

import torch
from torch import nn

from ndr_edge.model.blocks import Downsample, TransformerBlock, Upsample
from ndr_edge.model.config import NDRConfig
from ndr_edge.model.ndr import ResConnect


def _blocks(count: int, channels: int, heads: int, config: NDRConfig) -> list[nn.Module]:
    return [TransformerBlock(channels, heads, config.hidden(channels)) for _ in range(count)]


class RestorationNet(nn.Module):
    """Restormer-style U-Net whose three skips are modulated by the NDR (DQ + DI).

    ``forward`` returns the restored image and the degradation estimates D_1..D_3.
    """

    def __init__(self, config: NDRConfig, ndr: nn.Parameter | None = None) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.widths()
        n1, n2, n3, n4 = config.num_blocks
        h1, h2, h3, h4 = config.heads
        self.dr = ndr if ndr is not None else nn.Parameter(torch.randn(1, config.ndr_entries, config.ndr_dim))

        self.extractor = nn.Conv2d(3, c1, 3, padding=1)
        self.block1 = nn.Sequential(*_blocks(n1, c1, h1, config))
        self.pool1 = Downsample(c1)
        self.block2 = nn.Sequential(*_blocks(n2, c2, h2, config))
        self.pool2 = Downsample(c2)
        self.block3 = nn.Sequential(*_blocks(n3, c3, h3, config))
        self.pool3 = Downsample(c3)
        self.bottom = nn.Sequential(*_blocks(n4, c4, h4, config))

        skip = {"dq_dim": config.dq_dim, "ndr_dim": config.ndr_dim, "rank": config.rank}
        self.res_connect1 = ResConnect(c1, **skip)
        self.res_connect2 = ResConnect(c2, **skip)
        self.res_connect3 = ResConnect(c3, **skip)

        self.up3 = Upsample(c4)
        self.block_up3 = nn.Sequential(nn.Conv2d(c4, c3, 1, bias=False), *_blocks(n3, c3, h3, config))
        self.up2 = Upsample(c3)
        self.block_up2 = nn.Sequential(nn.Conv2d(c3, c2, 1, bias=False), *_blocks(n2, c2, h2, config))
        self.up1 = Upsample(c2)
        self.block_up1 = nn.Sequential(nn.Conv2d(c2, c2, 1, bias=False), *_blocks(n1, c2, h1, config))
        self.refinement = nn.Sequential(*_blocks(config.num_refinement_blocks, c2, h1, config))
        self.reconstruction = nn.Conv2d(c2, 3, 3, padding=1)
        if config.global_residual:  # start at the identity: training only has to learn the correction
            nn.init.zeros_(self.reconstruction.weight)
            if self.reconstruction.bias is not None:
                nn.init.zeros_(self.reconstruction.bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        e1 = self.block1(self.extractor(image))
        e2 = self.block2(self.pool1(e1))
        e3 = self.block3(self.pool2(e2))
        bottom = self.bottom(self.pool3(e3))

        s1, d1 = self.res_connect1(e1, self.dr)
        s2, d2 = self.res_connect2(e2, self.dr)
        s3, d3 = self.res_connect3(e3, self.dr)

        x = self.block_up3(torch.cat([s3, self.up3(bottom)], dim=1))
        x = self.block_up2(torch.cat([s2, self.up2(x)], dim=1))
        x = self.block_up1(torch.cat([s1, self.up1(x)], dim=1))
        out = self.reconstruction(self.refinement(x))
        if self.config.global_residual:
            out = out + image
        return out, [d1, d2, d3]


class RestorationOnly(nn.Module):
    """The exported graph: one image in, the restored image out."""

    def __init__(self, net: RestorationNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)[0]
