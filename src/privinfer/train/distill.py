"""Utility loss without box labels: the tail on the obfuscated embedding must reproduce the tail
on the clean one (distillation of NanoDet's raw outputs).

Class scores are probabilities already (the graph ends in a sigmoid): binary KL divergence
from the teacher's. Box distances are 11-bin distributions per side: KL divergence to the
teacher's, weighted by the teacher's best class score so that background anchors do not dominate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from privinfer.models.nanodet import NUM_CLASSES, REG_BINS


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, anchor_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Both (N, anchors, 124) raw outputs; returns a scalar. ``anchor_weight`` (N, anchors), when
    given, weighs each anchor's terms (all ones: the unweighted loss)."""
    s_cls, t_cls = student[..., :NUM_CLASSES].clamp(1e-6, 1 - 1e-6), teacher[..., :NUM_CLASSES]
    # Binary KL: cross-entropy minus the teacher's own entropy, so the loss is 0 at the teacher.
    t_safe = t_cls.clamp(1e-6, 1 - 1e-6)
    if anchor_weight is None:
        cls_loss = F.binary_cross_entropy(s_cls, t_cls) - F.binary_cross_entropy(t_safe, t_cls)
    else:
        per_anchor = (
            F.binary_cross_entropy(s_cls, t_cls, reduction="none")
            - F.binary_cross_entropy(t_safe, t_cls, reduction="none")
        ).mean(-1)
        cls_loss = (per_anchor * anchor_weight).sum() / anchor_weight.sum().clamp_min(1e-6)
    s_reg = student[..., NUM_CLASSES:].reshape(*student.shape[:2], 4, REG_BINS)
    t_reg = teacher[..., NUM_CLASSES:].reshape(*teacher.shape[:2], 4, REG_BINS)
    kl = F.kl_div(s_reg.log_softmax(-1), t_reg.log_softmax(-1), log_target=True, reduction="none").sum(-1).mean(-1)
    weight = t_cls.max(dim=-1).values
    if anchor_weight is not None:
        weight = weight * anchor_weight
    reg_loss = (kl * weight).sum() / weight.sum().clamp_min(1e-6)
    return cls_loss * 10 + reg_loss
