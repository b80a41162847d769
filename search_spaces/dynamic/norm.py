"""Batch and layer norms whose active channels slice one max-size set of statistics and affine weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DynamicBatchNorm(nn.Module):
    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor

    def __init__(self, channels_max: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels_max))
        self.bias = nn.Parameter(torch.zeros(channels_max))
        self.register_buffer("running_mean", torch.zeros(channels_max))
        self.register_buffer("running_var", torch.ones(channels_max))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.momentum, self.eps = momentum, eps

    def weights(self, c: int) -> dict[str, Tensor]:
        return {
            "weight": self.weight[:c],
            "bias": self.bias[:c],
            "running_mean": self.running_mean[:c],
            "running_var": self.running_var[:c],
            "num_batches_tracked": self.num_batches_tracked,
        }

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if self.training:
            self.num_batches_tracked.add_(1)
        # in training mode F.batch_norm updates the sliced views, i.e. the shared buffers, in place
        return F.batch_norm(
            x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
            self.training, self.momentum, self.eps,
        )


class DynamicLayerNorm(nn.Module):
    def __init__(self, channels_max: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels_max))
        self.bias = nn.Parameter(torch.zeros(channels_max))
        self.eps = eps

    def weights(self, c: int) -> dict[str, Tensor]:
        return {"weight": self.weight[:c], "bias": self.bias[:c]}

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[-1]
        return F.layer_norm(x, (c,), self.weight[:c], self.bias[:c], self.eps)
