# Copyright (c) scrim-mm contributors. All rights reserved.
"""How distinct the coarse parts of a stage are (the part benchmark's
measure)."""

from typing import Dict

import torch
import torch.nn.functional as F

from ..models.ops import part_attention_maps


def part_diversity(
    feat: torch.Tensor, excitations: torch.Tensor
) -> Dict[str, torch.Tensor]:
    """Per-image measures of how distinct the ``P`` parts of a stage are.

    For every pair of parts ``p < q`` of an image, averaged over the pairs:

    * ``excitation_cos``: cosine of the excitations ``m_p``, ``m_q`` (how
      differently the parts weight the channels);
    * ``map_cos``: cosine of the attention maps ``mean_c(F * m_p)`` (how
      differently they look at the image; near 1 for positive maps with
      the same layout);
    * ``map_corr``: Pearson correlation of the attention maps over the
      positions (the cosine after removing each map's mean);
    * ``same_peak``: 1 where the two maps peak at the same position.

    Args:
        feat (torch.Tensor): A stage map (B, C, H, W).
        excitations (torch.Tensor): Its excitations (B, P, C), P >= 2.

    Returns:
        Dict[str, torch.Tensor]: Each key a float tensor (B,).
    """
    num_parts = excitations.shape[1]
    if num_parts < 2:
        raise ValueError(
            f'excitations.shape={tuple(excitations.shape)}: part diversity '
            'needs at least 2 parts.'
        )
    maps = part_attention_maps(feat, excitations).flatten(2).float()
    first, second = torch.triu_indices(num_parts, num_parts, 1).to(feat.device)

    def pair_cos(x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=2)
        return (x[:, first] * x[:, second]).sum(dim=2).mean(dim=1)

    peaks = maps.argmax(dim=2)
    return dict(
        excitation_cos=pair_cos(excitations.float()),
        map_cos=pair_cos(maps),
        map_corr=pair_cos(maps - maps.mean(dim=2, keepdim=True)),
        same_peak=(peaks[:, first] == peaks[:, second]).float().mean(dim=1),
    )
