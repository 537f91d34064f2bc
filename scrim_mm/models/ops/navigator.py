# Copyright (c) scrim-mm contributors. All rights reserved.
"""The FPL navigator: informativeness score of every anchor."""

from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor


class Navigator(BaseModule):
    """Convolutional tower scoring the anchors of a feature pyramid.

    NTS-Net's navigator (Yang et al., ECCV 2018): a 3x3 stride-1 conv gives
    level 1, each further level a 3x3 stride-2 padding-1 conv, all with
    ReLU; a 1x1 conv per level scores every anchor type and location, in
    the order of :func:`~scrim_mm.models.ops.generate_anchors`.

    Args:
        in_channels (int): Channels of the input feature map.
        feat_channels (int): Channels of the tower. Defaults to 128.
        num_anchors_per_level (Sequence[int]): Anchor types per location at
            every level, one per level. Defaults to (6, 6, 9).
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None (PyTorch's default initialisation).
    """

    def __init__(
        self,
        in_channels: int,
        feat_channels: int = 128,
        num_anchors_per_level: Sequence[int] = (6, 6, 9),
        init_cfg: Optional[Union[dict, List[dict]]] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(num_anchors_per_level) == 0:
            raise ValueError('`num_anchors_per_level` must not be empty.')
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.num_anchors_per_level = tuple(
            int(n) for n in num_anchors_per_level
        )
        self.convs = nn.ModuleList()
        self.score_convs = nn.ModuleList()
        for level, num_anchors in enumerate(self.num_anchors_per_level):
            self.convs.append(
                nn.Conv2d(
                    in_channels if level == 0 else feat_channels,
                    feat_channels,
                    kernel_size=3,
                    stride=1 if level == 0 else 2,
                    padding=1,
                )
            )
            self.score_convs.append(
                nn.Conv2d(feat_channels, num_anchors, kernel_size=1)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Score every anchor.

        Args:
            x (Tensor): Feature map (B, in_channels, h, w).

        Returns:
            Tensor: Scores (B, A), ``A = sum_l h_l * w_l * n_l``.
        """
        scores = []
        for conv, score_conv in zip(self.convs, self.score_convs):
            x = self.relu(conv(x))
            # (B, n, h, w) -> (B, h, w, n): y, x, then anchor type.
            scores.append(score_conv(x).permute(0, 2, 3, 1).flatten(1))
        return torch.cat(scores, dim=1)
