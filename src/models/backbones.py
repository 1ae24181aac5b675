"""Backbones with a separate head, so DDN can unroll on the head alone (``unroll_scope=head``)."""
from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Iterator

from torch import Tensor, nn
from torch.nn import functional as F


class CosineHead(nn.Module):
    """``scale * cos(features, class weight)``: the ER-ACE reference code's head in its online setting."""

    def __init__(self, in_features: int, out_features: int, scale: float = 10.0) -> None:
        super().__init__()
        self.in_features, self.out_features, self.scale = in_features, out_features, scale
        self.weight = nn.Parameter(nn.Linear(in_features, out_features, bias=False).weight.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


def make_head(kind: str, in_features: int, out_features: int) -> nn.Module:
    """``linear`` (mammoth, DER) or ``cosine`` (ER-ACE reference code, scale 10)."""
    if kind == "linear":
        return nn.Linear(in_features, out_features)
    if kind == "cosine":
        return CosineHead(in_features, out_features)
    raise ValueError(f"head={kind!r}: choose linear or cosine")


@contextlib.contextmanager
def frozen_norm_stats(net: nn.Module) -> Iterator[None]:
    """Batch-norm layers inside normalise as before (batch statistics in train mode, running ones in eval
    mode) but do not update their running statistics: forwards that are not training steps (DDN's virtual
    steps, diagnostics) leave the model's state as it was, without cloning every statistic per call."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


class Classifier(nn.Module, abc.ABC):
    """``forward(x) = head(features(x))``; ``features`` gives the penultimate representation."""

    head: nn.Module  # has in_features / out_features

    @abc.abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """Penultimate features, shape (B, feature_dim)."""

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLP(Classifier):
    """Flatten -> [Linear -> ReLU] x len(hidden) -> head (mammoth's 784-100-100 MLP for Split MNIST)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: list[int], head: str = "linear") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = make_head(head, width, num_classes)
        self.feature_dim = width

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(Classifier):
    """ResNet-18 for small images as in mammoth / ER-ACE: 3x3 stem, stride 1, no max-pool.

    ``nf=64`` is the offline (DER paper) network, ``nf=20`` the reduced one of the online protocol.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, nf: int = 64, head: str = "linear") -> None:
        super().__init__()
        in_channels = input_shape[0]
        self.conv1 = nn.Conv2d(in_channels, nf, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(nf)
        layers, planes = [], nf
        for i, width in enumerate([nf, 2 * nf, 4 * nf, 8 * nf]):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(planes, width, stride), BasicBlock(width, width, 1)))
            planes = width
        self.layers = nn.Sequential(*layers)
        self.head = make_head(head, 8 * nf, num_classes)
        self.feature_dim = 8 * nf

    def features(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        return F.adaptive_avg_pool2d(out, 1).flatten(1)
