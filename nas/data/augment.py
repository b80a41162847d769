"""Training-time augmentation of normalized batches, per example: images are translated (a zero-padded
random crop) and optionally flipped; sequences are scaled in amplitude, given noise and optionally shifted.

Random draws come from torch's global CPU generator, whose state the training checkpoint keeps, so a resumed
run augments exactly as an uninterrupted one would (on any device).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nas.schemas import AugmentConfig


def augment(x: Tensor, cfg: AugmentConfig) -> Tensor:
    """A randomly augmented copy of `x`: images (B, C, H, W) or sequences (B, C, L)."""
    if not cfg.enabled:
        return x
    if x.dim() == 4:
        x = shift(x, round(cfg.shift * x.shape[-1]))
        return flip(x) if cfg.flip else x
    x = shift(x, round(cfg.seq_shift * x.shape[-1]))
    batch = x.shape[0]
    if cfg.scale:
        factor = 1 + cfg.scale * (2 * torch.rand(batch) - 1)
        x = x * factor.to(x.device, x.dtype)[:, None, None]
    if cfg.noise:
        x = x + cfg.noise * torch.randn(x.shape).to(x.device, x.dtype)
    return x


def shift(x: Tensor, most: int) -> Tensor:
    """Each example moved by up to `most` positions along every spatial axis, zero-filled (0 is the mean of
    normalized inputs)."""
    if most <= 0:
        return x
    batch, spatial = x.shape[0], x.shape[2:]
    padded = torch.nn.functional.pad(x, [most] * (2 * len(spatial)))
    offsets = torch.randint(0, 2 * most + 1, (batch, len(spatial))).to(x.device)
    b = torch.arange(batch, device=x.device)
    if len(spatial) == 1:
        (length,) = spatial
        cols = offsets[:, 0, None] + torch.arange(length, device=x.device)  # (B, L)
        return padded[b[:, None], :, cols].permute(0, 2, 1)  # (B, L, C) -> (B, C, L)
    h, w = spatial
    rows = offsets[:, 0, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=x.device)  # (B, W)
    return padded[b[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, H, W, C) -> NCHW


def flip(x: Tensor) -> Tensor:
    """Each image mirrored left-right with probability 1/2."""
    mask = (torch.rand(x.shape[0]) < 0.5).to(x.device)[:, None, None, None]
    return torch.where(mask, x.flip(-1), x)
