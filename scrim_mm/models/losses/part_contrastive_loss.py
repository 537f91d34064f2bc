# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

# Finite stand-in for -inf in masked log-sum-exps: exp() underflows to 0
# in fp32, and a fully masked row gives no inf - inf = NaN in backward.
_NEG_FILL = -1e4


@MODELS.register_module()
class PartContrastiveLoss(nn.Module):
    """Contrastive loss over the part embeddings of a batch.

    SCRIM's metric constraint: same-class, same-part embeddings lie closer.

    - ``mode='mamc'``: MAMC (Sun et al., ECCV 2018). Each of the ``B * P``
      L2-normalised embeddings is an anchor ``(i, p)`` whose others are
      SPSC (same part and class, other image), SPDC, DPSC (image ``i``
      included) or DPDC. SPSC vs SPDC + DPSC + DPDC, SPDC vs DPDC and DPSC
      vs DPDC each give the N-pair term
      ``sum_pos log(1 + sum_neg exp(<a, neg> - <a, pos>))``, averaged over
      the anchors with a positive; the three are summed. Cosines are
      divided by ``temperature``, else the minimum collapses each part to
      a point (``docs/part_benchmark.md``).
    - ``mode='c3s'``: Cross-X's label-free constraint (ICCV 2019): with
      ``S_ij`` the mean cosine of parts ``i`` and ``j`` over image pairs
      ``b != b'`` (the image itself when ``B = 1``),
      ``L = sum_i (1 - S_ii) + sum_{i<j} S_ij``.

    In fp32; finite in value and gradient when no class repeats, for one
    image and for equal or all-zero embeddings.

    Args:
        mode (str): ``'mamc'`` or ``'c3s'``. Defaults to ``'mamc'``.
        temperature (float): Divisor of the cosines in ``'mamc'`` (0.05-0.1
            in normalised N-pair variants). Defaults to 0.1.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        eps (float): Norm floor of the L2 normalisation, which bounds the
            gradient of near-zero embeddings by ``1 / eps``. Defaults to 1e-6.
    """

    MODES = ('mamc', 'c3s')

    def __init__(
        self,
        mode: str = 'mamc',
        temperature: float = 0.1,
        loss_weight: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(
                f'PartContrastiveLoss mode must be one of '
                f'{self.MODES}, got {mode!r}.'
            )
        if not temperature > 0:
            raise ValueError(
                f'PartContrastiveLoss temperature={temperature!r}: must be '
                'positive; use e.g. 0.1'
            )
        self.mode = mode
        self.temperature = float(temperature)
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(
        self, embeds: torch.Tensor, labels: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            embeds (torch.Tensor): Part embeddings, shape ``(B, P, D)``.
            labels (torch.Tensor, optional): Class indices ``(B, )``, needed
                by ``'mamc'`` only. Defaults to None.

        Returns:
            torch.Tensor: The weighted scalar loss.
        """
        if embeds.dim() != 3:
            raise ValueError(
                'PartContrastiveLoss expects embeddings of '
                f'shape (B, P, D), got {tuple(embeds.shape)}.'
            )
        if self.mode == 'mamc':
            if labels is None:
                raise ValueError(
                    "PartContrastiveLoss(mode='mamc') needs class labels; "
                    "use mode='c3s' for a label-free loss."
                )
            labels = labels.reshape(-1).to(embeds.device)
            if labels.numel() != embeds.shape[0]:
                raise ValueError(
                    f'PartContrastiveLoss got {labels.numel()} labels for '
                    f'{embeds.shape[0]} images.'
                )
        # Cosines and their exponentials in fp32, also under AMP.
        with torch.autocast(device_type=embeds.device.type, enabled=False):
            x = F.normalize(embeds.float(), dim=-1, eps=self.eps)
            if self.mode == 'mamc':
                loss = self._mamc(x, labels)
            else:
                loss = self._c3s(x)
        return self.loss_weight * loss

    @staticmethod
    def _npair(
        sim: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        """N-pair term, averaged over anchors with positives, as
        ``softplus(lse(s_neg) - s_pos) = log(1 + sum exp(s_neg - s_pos))``.
        """
        lse = torch.logsumexp(sim.masked_fill(~neg, _NEG_FILL), dim=1)
        terms = F.softplus(lse[:, None] - sim)
        # An anchor without negatives has log(1 + 0) = 0 for each positive.
        terms = torch.where(
            pos & neg.any(dim=1, keepdim=True), terms, terms.new_zeros(())
        )
        has_pos = pos.any(dim=1)
        per_anchor = terms.sum(dim=1)
        return per_anchor.sum() / has_pos.sum().clamp(min=1)

    def _mamc(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_imgs, num_parts, _ = x.shape
        flat = x.reshape(num_imgs * num_parts, -1)
        sim = flat @ flat.t() / self.temperature
        device = x.device
        img = torch.arange(num_imgs, device=device).repeat_interleave(
            num_parts
        )
        part = torch.arange(num_parts, device=device).repeat(num_imgs)
        cls = labels.repeat_interleave(num_parts)
        same_img = img[:, None] == img[None, :]
        same_part = part[:, None] == part[None, :]
        same_cls = cls[:, None] == cls[None, :]
        spsc = same_part & same_cls & ~same_img
        spdc = same_part & ~same_cls
        dpsc = ~same_part & same_cls
        dpdc = ~same_part & ~same_cls
        return (
            self._npair(sim, spsc, spdc | dpsc | dpdc)
            + self._npair(sim, spdc, dpdc)
            + self._npair(sim, dpsc, dpdc)
        )

    @staticmethod
    def _c3s(x: torch.Tensor) -> torch.Tensor:
        num_imgs = x.shape[0]
        # <x_bi, x_b'j> summed over b != b' without a (B, B, P, P) tensor.
        same = torch.einsum('bid,bjd->ij', x, x)
        if num_imgs > 1:
            total = x.sum(dim=0)
            sim = (total @ total.t() - same) / (num_imgs * (num_imgs - 1))
        else:
            sim = same
        num_parts = sim.shape[0]
        upper = torch.triu(torch.ones_like(sim, dtype=torch.bool), diagonal=1)
        return (num_parts - sim.diagonal().sum()) + sim[upper].sum()
