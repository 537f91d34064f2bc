# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

# A finite stand-in for -inf in masked log-sum-exps: exp() of it underflows
# to exactly 0 in fp32, and unlike -inf it never produces inf - inf = NaN
# in the logsumexp backward when a whole row is masked.
_NEG_FILL = -1e4


@MODELS.register_module()
class PartContrastiveLoss(nn.Module):
    """Contrastive loss over the part embeddings of a batch.

    The metric constraint of the coarse parts localisation of SCRIM
    ("Spatial-aware collaborative region mining for fine-grained
    recognition", Multimedia Tools and Applications, 2024): part features of
    the same class and the same part must lie closer together.

    - ``mode='mamc'``: the multi-attention multi-class constraint of MAMC
      (Sun et al., "Multi-Attention Multi-Class Constraint for Fine-grained
      Image Recognition", ECCV 2018). The ``n = B * P`` L2-normalised
      embeddings are anchors; for anchor ``(i, p)`` the other embeddings
      fall into SPSC (same part, same class, other image), SPDC (same part,
      different class), DPSC (different part, same class, the other parts
      of image ``i`` included) and DPDC (different part, different class).
      Three (positive, negative) pairings, SPSC vs SPDC + DPSC + DPDC,
      SPDC vs DPDC and DPSC vs DPDC, each give the N-pair term
      ``sum_pos log(1 + sum_neg exp(<a, neg> - <a, pos>))`` per anchor,
      averaged over the anchors with at least one positive of the pairing
      (0 when none has); the three are summed. The similarities are the
      cosines divided by ``temperature``: on raw cosines, bounded in
      [-1, 1], the loss's minimum is the collapse of the same part of
      every image onto one point, whatever the class (5.84 against 0.52
      for class-structured embeddings at 4 classes x 2 images, P = 2,
      ``temperature=0.1``; 9.55 against 14.9 without it). Sohn's N-pair
      loss, which MAMC builds on, scales with raw inner products instead.
    - ``mode='c3s'``: the label-free cross-channel constraint of Cross-X
      (Luo et al., ICCV 2019). With ``S_ij`` the mean cosine between part
      ``i`` and part ``j`` over the image pairs ``b != b'`` of the batch
      (the single image itself when ``B = 1``),
      ``L = sum_i (1 - S_ii) + sum_{i<j} S_ij``.

    The loss is computed in fp32 and is finite in value and gradient for
    batches where no class repeats, a single image, equal or all-zero
    embeddings.

    Args:
        mode (str): ``'mamc'`` or ``'c3s'``. Defaults to ``'mamc'``.
        temperature (float): Divisor of the cosines in ``'mamc'``, in the
            range of normalised N-pair variants (0.05-0.1); ``'c3s'``
            averages cosines and ignores it. Defaults to 0.1.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        eps (float): Lower bound of the norm in the L2 normalisation. It
            also bounds the gradient of near-zero embeddings by about
            ``1 / eps``. Defaults to 1e-6.
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
            labels (torch.Tensor, optional): Class indices, shape ``(B, )``.
                Required by ``'mamc'``, ignored by ``'c3s'``.
                Defaults to None.

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
        # Under AMP the similarity matmuls would run in fp16; cosines and
        # their exponentials are kept in fp32.
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
        """N-pair term of one pairing, averaged over anchors with positives.

        Uses ``log(1 + sum_neg exp(s_neg - s_pos)) =
        softplus(logsumexp(s_neg) - s_pos)``, stable for any similarities.
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
        # Sum of <x_bi, x_b'j> over all ordered pairs (b, b'), minus the
        # pairs b = b', without forming the (B, B, P, P) tensor.
        same = torch.einsum('bid,bjd->ij', x, x)
        if num_imgs > 1:
            total = x.sum(dim=0)
            sim = (total @ total.t() - same) / (num_imgs * (num_imgs - 1))
        else:
            sim = same
        num_parts = sim.shape[0]
        upper = torch.triu(torch.ones_like(sim, dtype=torch.bool), diagonal=1)
        return (num_parts - sim.diagonal().sum()) + sim[upper].sum()
