"""Convolution whose channels and kernel size are elastic (1D or 2D).

Channels slice the max-size weight. A smaller kernel is, as in Once-for-All, a learned linear
transformation of the centre of the next larger kernel, so kernel sizes share weights without
forcing the small kernel to equal the big one's centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.dynamic.linear import init_linear_
from search_spaces.dynamic.naming import prefixed
from search_spaces.dynamic.norm import DynamicBatchNorm


def _centre(w: Tensor, k: int, dims: int) -> Tensor:
    start = (w.shape[-1] - k) // 2
    w = w[..., start : start + k]
    return w[..., start : start + k, :] if dims == 2 else w


class DynamicConv(nn.Module):
    def __init__(
        self, dims: int, cin_max: int, cout_max: int, kernels: list[int] | tuple[int, ...] = (1,),
        stride: int = 1, depthwise: bool = False, bias: bool = False,
    ):
        super().__init__()
        self.dims, self.stride, self.depthwise = dims, stride, depthwise
        self.kernels = sorted(kernels, reverse=True)  # largest first
        kmax = self.kernels[0]
        shape = (cout_max, 1 if depthwise else cin_max) + (kmax,) * dims
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(cout_max)) if bias else None
        init_linear_(self.weight, self.bias, shape[1] * kmax**dims)
        self.transforms = nn.ParameterDict(
            {f"k{k}": nn.Parameter(torch.eye(k**dims)) for k in self.kernels[1:]}  # identity at start
        )

    def kernel(self, w: Tensor, k: int) -> Tensor:
        """Transform (already channel-sliced) max-size kernels down to size k."""
        for size in self.kernels[1:]:
            if size < k:
                break
            flat = _centre(w, size, self.dims).reshape(-1, size**self.dims)
            w = F.linear(flat, self.transforms[f"k{size}"]).reshape(w.shape[:2] + (size,) * self.dims)
        return w

    def weights(self, cin: int, cout: int, k: int | None = None) -> dict[str, Tensor]:
        w = self.weight[:cout] if self.depthwise else self.weight[:cout, :cin]
        out = {"weight": self.kernel(w, k or self.kernels[0])}
        if self.bias is not None:
            out["bias"] = self.bias[:cout]
        return out

    def forward(self, x: Tensor, cout: int, k: int | None = None, stride: int | None = None) -> Tensor:
        cin = x.shape[1]
        w = self.weights(cin, cout, k)
        conv = F.conv2d if self.dims == 2 else F.conv1d
        kernel = w["weight"].shape[-1]
        return conv(x, w["weight"], w.get("bias"), stride or self.stride, kernel // 2, 1, cin if self.depthwise else 1)


class ElasticConvNormAct(nn.Module):
    """The elastic twin of standalone.ConvNormAct: conv, batch norm, optional SiLU."""

    def __init__(
        self, dims: int, cin_max: int, cout_max: int, kernels: list[int] | tuple[int, ...] = (1,),
        stride: int = 1, depthwise: bool = False, act: bool = True,
    ):
        super().__init__()
        self.conv = DynamicConv(dims, cin_max, cout_max, kernels, stride, depthwise)
        self.norm = DynamicBatchNorm(cout_max)
        self.act = act

    def forward(self, x: Tensor, cout: int, k: int | None = None, stride: int | None = None) -> Tensor:
        x = self.norm(self.conv(x, cout, k, stride))
        return F.silu(x) if self.act else x

    def weights(self, cin: int, cout: int, k: int | None = None) -> dict[str, Tensor]:
        return prefixed("conv", self.conv.weights(cin, cout, k)) | prefixed("norm", self.norm.weights(cout))
