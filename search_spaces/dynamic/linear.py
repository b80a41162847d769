"""Linear layer whose active input and output features slice one max-size weight."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def init_linear_(weight: Tensor, bias: Tensor | None, fan_in: int) -> None:
    """The default initialisation of torch's nn.Linear / nn.ConvNd."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound)


class DynamicLinear(nn.Module):
    def __init__(self, in_max: int, out_max: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_max, in_max))
        self.bias = nn.Parameter(torch.empty(out_max)) if bias else None
        init_linear_(self.weight, self.bias, in_max)

    def weights(self, cin: int, cout: int) -> dict[str, Tensor]:
        w = {"weight": self.weight[:cout, :cin]}
        if self.bias is not None:
            w["bias"] = self.bias[:cout]
        return w

    def forward(self, x: Tensor, cout: int) -> Tensor:
        w = self.weights(x.shape[-1], cout)
        return F.linear(x, w["weight"], w.get("bias"))
