# Copyright (c) scrim-mm contributors. All rights reserved.
"""Pairwise hinge loss ranking region scores by their teacher losses."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class RegionRankingLoss(nn.Module):
    """Region-ranking loss of the FPL navigator.

    The ranking loss of NTS-Net (Yang et al., "Learning to Navigate for
    Fine-grained Classification", ECCV 2018), used by the FPL module of SCRIM
    (Multimedia Tools and Applications, 2024). For every image ``b`` and
    every ordered pair of regions ``(i, j)`` whose teacher losses satisfy
    ``L[b, j] > L[b, i]`` (region ``i`` is more informative), the navigator
    score of ``i`` should exceed that of ``j`` by ``margin``:

    .. math::
        \\mathcal{L} = \\frac{w}{B} \\sum_b \\sum_{(i, j): L_{bj} > L_{bi}}
        \\max(0, m - I_{bi} + I_{bj})

    The teacher losses are detached: they only order the pairs. Computed in
    float32 whatever the input dtype.

    Args:
        margin (float): Hinge margin ``m``. Defaults to 1.0.
        loss_weight (float): Weight ``w`` of the loss. Defaults to 1.0.
    """

    def __init__(self, margin: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.margin = margin
        self.loss_weight = loss_weight

    def forward(self, scores: Tensor, part_losses: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            scores (Tensor): Navigator scores ``I`` of the selected regions,
                shape (B, M).
            part_losses (Tensor): Teacher losses ``L`` (e.g. per-crop
                cross-entropy) of the same regions, shape (B, M).

        Returns:
            Tensor: Scalar loss (float32).
        """
        if scores.dim() != 2 or scores.shape != part_losses.shape:
            raise ValueError(
                f'`scores` and `part_losses` must both be (B, M), got '
                f'{tuple(scores.shape)} and {tuple(part_losses.shape)}.'
            )
        scores = scores.float()
        part_losses = part_losses.detach().float()
        # Entry [b, i, j]: region i should outrank region j.
        pairs = part_losses[:, None, :] > part_losses[:, :, None]
        hinge = F.relu(self.margin - scores[:, :, None] + scores[:, None, :])
        loss = torch.where(pairs, hinge, hinge.new_zeros(())).sum()
        return self.loss_weight * loss / max(scores.shape[0], 1)
