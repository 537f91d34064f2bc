# Copyright (c) scrim-mm contributors. All rights reserved.
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class OSME(BaseModule):
    """One-squeeze multi-excitation (OSME) channel attention.

    Cross-X's part excitations (Luo et al., ICCV 2019), used by the CPL:
    one squeeze ``z = GAP(F)`` feeds ``P`` excitations, batched over parts::

        m_p = sigmoid(W2_p relu(W1_p z)),  W1_p: C -> C/r,  W2_p: C/r -> C

    Args:
        in_channels (int): Channels ``C`` of the input map.
        num_parts (int): Number of parts ``P``. Defaults to 2.
        reduction (int): Reduction ratio ``r``; the hidden width is
            ``max(1, C // r)``. Defaults to 16.
        init_cfg (dict, optional): Initialisation config; None initialises
            like ``nn.Linear``. Defaults to None.
    """

    def __init__(
        self,
        in_channels: int,
        num_parts: int = 2,
        reduction: int = 16,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        for key, value in (
            ('in_channels', in_channels),
            ('num_parts', num_parts),
            ('reduction', reduction),
        ):
            if value < 1:
                raise ValueError(
                    f'{key}={value}: must be positive; set 1 or more'
                )
        self.in_channels = in_channels
        self.num_parts = num_parts
        self.reduction = reduction
        self.hidden_channels = max(1, in_channels // reduction)

        hid, c, p = self.hidden_channels, in_channels, num_parts
        self.squeeze_weight = nn.Parameter(torch.empty(p, hid, c))
        self.squeeze_bias = nn.Parameter(torch.empty(p, hid))
        self.excite_weight = nn.Parameter(torch.empty(p, c, hid))
        self.excite_bias = nn.Parameter(torch.empty(p, c))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every part like an independent ``nn.Linear``."""
        for weight, bias in (
            (self.squeeze_weight, self.squeeze_bias),
            (self.excite_weight, self.excite_bias),
        ):
            for p in range(self.num_parts):
                nn.init.kaiming_uniform_(weight[p], a=math.sqrt(5))
            bound = 1.0 / math.sqrt(weight.shape[-1])
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the part excitations.

        Args:
            x (torch.Tensor): A stage map (B, C, H, W) or its squeeze (B, C).

        Returns:
            torch.Tensor: The excitations ``m_p`` in (0, 1), ``(B, P, C)``.
        """
        if x.dim() == 4:
            z = x.mean(dim=(2, 3))
        elif x.dim() == 2:
            z = x
        else:
            raise ValueError(
                f'x.shape={tuple(x.shape)}: neither a (B, C, H, W) map nor a '
                '(B, C) vector; pass one of those'
            )
        if z.shape[1] != self.in_channels:
            raise ValueError(
                f'in_channels={self.in_channels}: the input has '
                f'{z.shape[1]} channels; build OSME for {z.shape[1]}'
            )
        hidden = torch.einsum('bc,phc->bph', z, self.squeeze_weight)
        hidden = F.relu(hidden + self.squeeze_bias)
        logits = torch.einsum('bph,pch->bpc', hidden, self.excite_weight)
        return torch.sigmoid(logits + self.excite_bias)

    def extra_repr(self) -> str:
        return (
            f'in_channels={self.in_channels}, '
            f'num_parts={self.num_parts}, '
            f'hidden_channels={self.hidden_channels}'
        )
