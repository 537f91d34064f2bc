# Copyright (c) scrim-mm contributors. All rights reserved.
"""Spatial diversity of the coarse parts."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS


@MODELS.register_module()
class PartDiversityLoss(nn.Module):
    """Penalise coarse parts that attend to the same place.

    OSME's part maps ``A_p = F * m_p`` share the layout of ``F`` unless
    the excitations pick channels that fire at different places; with a
    metric loss on pooled vectors only, the attention maps
    ``a_p = mean_c(A_p)`` come out nearly identical. After MA-CNN's
    diversity term (Zheng et al., ICCV 2017), this penalises the overlap
    of the spatial distributions of every pair of parts (zero with one
    part), blind to the scale and offset of ``a_p``::

        s_p = softmax_hw(sharpness * standardise_hw(a_p))
        L = mean_b mean_{p<q} <s_p, s_q> / (|s_p| |s_q|)

    Args:
        sharpness (float): Multiplier of the standardised maps before the
            softmax. High values compare the peaks only; towards 0 the loss
            tends to ``1 - s^2 (1 - r)`` (``r`` the Pearson correlation of
            the maps), the whole layout, with a gradient shrinking as
            ``s^2``; 1.0 left stage-3 maps more correlated (hard demo set,
            weight 0.2: 0.96 against 0.73). Defaults to 2.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        eps (float): Added to the spatial std. Defaults to 1e-6.
    """

    def __init__(
        self, sharpness: float = 2.0, loss_weight: float = 1.0, eps=1e-6
    ) -> None:
        super().__init__()
        if sharpness <= 0:
            raise ValueError(
                f'sharpness={sharpness}: must be positive; use e.g. 2.0.'
            )
        self.sharpness = float(sharpness)
        self.loss_weight = float(loss_weight)
        self.eps = float(eps)

    def distributions(self, maps: torch.Tensor) -> torch.Tensor:
        """Spatial distributions of attention maps.

        Args:
            maps (torch.Tensor): Attention maps (B, P, H, W).

        Returns:
            torch.Tensor: (B, P, H*W), each row summing to 1.
        """
        flat = maps.flatten(2).float()
        mean = flat.mean(dim=2, keepdim=True)
        std = flat.std(dim=2, keepdim=True, unbiased=False)
        z = (flat - mean) / (std + self.eps)
        return torch.softmax(self.sharpness * z, dim=2)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            maps (torch.Tensor): Attention maps of one stage (B, P, H, W),
                e.g. from :func:`~scrim_mm.models.ops.part_attention_maps`.

        Returns:
            torch.Tensor: The weighted scalar loss.
        """
        if maps.dim() != 4:
            raise ValueError(
                f'maps.shape={tuple(maps.shape)}: expected (B, P, H, W) '
                'attention maps.'
            )
        num_parts = maps.shape[1]
        if num_parts < 2:
            return maps.sum() * 0.0
        dist = F.normalize(self.distributions(maps), dim=2)
        cos = torch.bmm(dist, dist.transpose(1, 2))  # (B, P, P)
        pairs = torch.triu_indices(num_parts, num_parts, 1, device=cos.device)
        loss = cos[:, pairs[0], pairs[1]].mean()
        return self.loss_weight * loss
