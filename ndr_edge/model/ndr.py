"""The neural degradation representation at work: Degradation Query (DQ) recognises the
degradation of a skip feature from the NDR, Degradation Injection (DI) fuses it back
through a low-rank CP transform. Names follow the published checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn


class _QueryAttention(nn.Module):
    # ``degradation_recog.attn``: pixels query the NDR entries (keys and values)
    def __init__(self, dq_dim: int, ndr_dim: int) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(1))
        self.qkv = nn.Conv2d(dq_dim, ndr_dim, 1)
        self.project_out = nn.Conv2d(ndr_dim, dq_dim, 1)

    def forward(self, x: torch.Tensor, ndr: torch.Tensor) -> torch.Tensor:
        q = self.qkv(x)  # (B, ndr_dim, H, W)
        flat = q.flatten(2).transpose(1, 2)  # (B, HW, ndr_dim)
        attn = ((flat @ ndr.transpose(1, 2)) * self.temperature).softmax(dim=-1)  # (B, HW, entries)
        d = (attn @ ndr).transpose(1, 2).reshape(q.shape)
        return self.project_out(d)


class _QueryProjection(nn.Module):
    # ``degradation_recog.ffn``: one 1x1 projection of the recognised degradation
    def __init__(self, dq_dim: int) -> None:
        super().__init__()
        self.project_out = nn.Conv2d(dq_dim, dq_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project_out(x)


class DegradationQuery(nn.Module):
    """From a mapped skip feature X and the NDR, the degradation estimate D (B, dq_dim, H, W)."""

    def __init__(self, dq_dim: int, ndr_dim: int) -> None:
        super().__init__()
        self.attn = _QueryAttention(dq_dim, ndr_dim)
        self.ffn = _QueryProjection(dq_dim)

    def forward(self, x: torch.Tensor, ndr: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.attn(x, ndr))


class LowRankTransform(nn.Module):
    """x * A, with A = (1/R) sum_r a_c[r] (x) a_h[r] (x) a_w[r] a rank-R CP attention tensor.

    The factors come from the global mean (channels), the mean over W (rows) and the
    mean over H (columns), each through a 1x1 conv and a sigmoid. Means are written as
    means (never adaptive pooling with one free axis) so the graph is exact at any size;
    the sum over R is one batched matmul (C x R) @ (R x HW).
    """

    def __init__(self, channels: int, rank: int) -> None:
        super().__init__()
        self.rank = rank
        self.conv_C = nn.Sequential(nn.Identity(), nn.Conv2d(channels, rank * channels, 1), nn.Sigmoid())
        self.conv_H = nn.Sequential(nn.Identity(), nn.Conv2d(channels, rank, 1), nn.Sigmoid())
        self.conv_W = nn.Sequential(nn.Identity(), nn.Conv2d(channels, rank, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_c = self.conv_C(x.mean(dim=(2, 3), keepdim=True)).flatten(2).unflatten(1, (self.rank, -1))  # (B,R,C,1)
        a_h = self.conv_H(x.mean(dim=3, keepdim=True))  # (B, R, H, 1)
        a_w = self.conv_W(x.mean(dim=2, keepdim=True))  # (B, R, 1, W)
        spatial = (a_h * a_w).flatten(2)  # (B, R, HW)
        attention = a_c.squeeze(-1).transpose(1, 2) @ spatial  # (B, C, HW)
        return x * (attention / self.rank).reshape(x.shape)


class DegradationInjection(nn.Module):
    """DI: output = f(LRT(conv1(D))) * LRT(F) + g(LRT(conv1(D)))."""

    def __init__(self, channels: int, dq_dim: int, rank: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dq_dim, dq_dim, 1)
        self.f = nn.Conv2d(dq_dim, channels, 1)
        self.g = nn.Conv2d(dq_dim, channels, 1)
        self.low_rank_transform1 = LowRankTransform(dq_dim, rank)
        self.low_rank_transform3 = LowRankTransform(channels, rank)

    def forward(self, feature: torch.Tensor, degradation: torch.Tensor) -> torch.Tensor:
        x = self.low_rank_transform3(feature)
        d = self.low_rank_transform1(self.conv1(degradation))
        return self.f(d) * x + self.g(d)


class ResConnect(nn.Module):
    """A skip connection of the restoration network: DQ on the feature, then DI into it."""

    def __init__(self, channels: int, dq_dim: int, ndr_dim: int, rank: int) -> None:
        super().__init__()
        self.mapping = nn.Conv2d(channels, dq_dim, 3, padding=1, bias=False)
        self.degradation_recog = DegradationQuery(dq_dim, ndr_dim)
        self.inject_degradation = DegradationInjection(channels, dq_dim, rank)

    def forward(self, feature: torch.Tensor, ndr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        degradation = self.degradation_recog(self.mapping(feature), ndr)
        return self.inject_degradation(feature, degradation), degradation
