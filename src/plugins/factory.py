"""Builds the label plug-in that ``labels=`` names (``hard``: none)."""
from __future__ import annotations

from omegaconf import DictConfig
from torch import nn

from src.plugins.labels import HardExtra, LabelPlugin, RandomLabels, Smooth

LABEL_VARIANTS = ("hard", "hard_extra", "smooth", "random", "l2y", "ddn", "ddn_frozen")


def build_label_plugin(cfg: DictConfig, net: nn.Module, n_classes: int,
                       image_shape: tuple[int, ...]) -> LabelPlugin | None:
    kind = cfg.labels
    if kind == "hard":
        return None
    if kind == "hard_extra":
        return HardExtra()
    if kind == "smooth":
        return Smooth(cfg.label_smoothing)
    if kind == "random":
        return RandomLabels(cfg.buffer, n_classes, seed=cfg.seed)
    from src.plugins.ddn import build_learned_labels

    return build_learned_labels(cfg, net, n_classes, image_shape)
