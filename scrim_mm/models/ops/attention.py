# Copyright (c) scrim-mm contributors. All rights reserved.
"""Spatial attention of the OSME parts."""

import torch


def part_attention_maps(
    feat: torch.Tensor, excitations: torch.Tensor
) -> torch.Tensor:
    """Channel means of the part maps ``A_p = F * m_p``, in one contraction.

    Args:
        feat (torch.Tensor): A stage map ``F`` (B, C, H, W).
        excitations (torch.Tensor): OSME excitations ``m_p`` (B, P, C).

    Returns:
        torch.Tensor: ``mean_c(F * m_p)`` for every part, (B, P, H, W).
    """
    return torch.einsum('bchw,bpc->bphw', feat, excitations) / feat.shape[1]
