# Copyright (c) scrim-mm contributors. All rights reserved.
"""Pairwise hinge loss ranking region scores by their teacher losses."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class RegionRankingLoss(nn.Module):
    """Region-ranking loss of the FPL navigator (NTS-Net, ECCV 2018).

    For every image ``b`` and region pair ``(i, j)`` with teacher losses
    ``L[b, j] > L[b, i]``, the navigator score of ``i`` should exceed that
    of ``j`` by ``margin``:

    .. math::
        \\mathcal{L} = \\frac{w}{B} \\sum_b \\sum_{(i, j): L_{bj} > L_{bi}}
        \\max(0, m - I_{bi} + I_{bj})

    The teacher losses only order the pairs (detached). Computed in float32.

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
            scores (Tensor): Navigator scores ``I`` of the regions (B, M).
            part_losses (Tensor): Their teacher losses ``L`` (B, M).

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
