"""Batched, on-device preprocessing of uint8 images: scale, optional crop+flip augmentation, normalise.

Done on whole batches in the training step (on the GPU when there is one) so that per-sample
augmentation never becomes the bottleneck of a batch-10 online stream.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class BatchPreprocess(nn.Module):
    """uint8 (B, C, H, W) -> normalised float; ``augment=True`` adds RandomCrop(pad) + horizontal flip.

    Random draws come from the caller's generator (CPU), so augmentation is reproducible and does not
    consume the global RNG that model initialisation uses.
    """

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None, crop_padding: int = 0,
                 flip: bool = False) -> None:
        super().__init__()
        self.crop_padding, self.flip = crop_padding, flip
        m = torch.tensor(list(mean) if mean is not None else [0.0]).view(1, -1, 1, 1)
        s = torch.tensor(list(std) if std is not None else [1.0]).view(1, -1, 1, 1)
        self.register_buffer("mean", m, persistent=False)
        self.register_buffer("std", s, persistent=False)

    @property
    def can_augment(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def forward(self, x: Tensor, augment: bool = False, generator: torch.Generator | None = None) -> Tensor:
        x = x.float().div_(255.0)
        if augment and self.can_augment:
            x = self._augment(x, generator)
        return (x - self.mean) / self.std

    def _augment(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        b, c, h, w = x.shape
        p = self.crop_padding
        if p > 0:
            padded = nn.functional.pad(x, (p, p, p, p))
            off = torch.randint(0, 2 * p + 1, (2, b), generator=generator).to(x.device)
            rows = (off[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (off[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]
            bi = torch.arange(b, device=x.device)[:, None, None, None]
            ci = torch.arange(c, device=x.device)[None, :, None, None]
            x = padded[bi, ci, rows, cols]
        if self.flip:
            flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)[:, None, None, None]
            x = torch.where(flip, x.flip(3), x)
        return x
