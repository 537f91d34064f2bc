# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..ops import part_attention_maps
from ..wiring import default_stage_names, stage_indices
from .osme import OSME


class CPLOutput(NamedTuple):
    """Outputs of :class:`CPLNeck`, one tensor per stage in every field.

    Attributes:
        feats (tuple[torch.Tensor]): Stage maps ``F``, (B, C_s, H_s, W_s).
        enhanced (tuple[torch.Tensor]): ``F * mean_p(m_p)``, the FPL
            navigator input, (B, C_s, H_s, W_s).
        excitations (tuple[torch.Tensor]): OSME weights ``m_p``, (B, P, C_s).
        part_vecs (tuple[torch.Tensor]): Part vectors ``f_p``, (B, P, C_s).
        part_embeds (tuple[torch.Tensor]): Embeddings of the metric loss,
            cut from the backbone, (B, P, D) (``D = C_s`` unprojected).
    """

    feats: Tuple[torch.Tensor, ...]
    enhanced: Tuple[torch.Tensor, ...]
    excitations: Tuple[torch.Tensor, ...]
    part_vecs: Tuple[torch.Tensor, ...]
    part_embeds: Tuple[torch.Tensor, ...]


def _per_stage(value, num_stages: int, name: str) -> tuple:
    """Expand a scalar setting to one value per stage and check length."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_stages:
            raise ValueError(
                f'{name}={tuple(value)}: {len(value)} values for '
                f'{num_stages} stages; give one value, or one per stage'
            )
        return tuple(value)
    return (value,) * num_stages


@MODELS.register_module()
class CPLNeck(BaseModule):
    """Coarse parts localisation (CPL) of SCRIM, one branch per stage.

    On each of the last backbone stages, an :class:`OSME` block gives ``P``
    channel excitations ``m_p``; the part map is ``A_p = F * m_p``, the
    part vector ``f_p = pool(A_p)``, optionally projected to a ``D``-dim
    embedding for the metric loss, which trains OSME and the projection
    only (from the detached maps); the diversity loss of :class:`SCRIMHead`
    reaches the backbone (``docs/part_benchmark.md``).
    :class:`SCRIMClassifier` derives ``in_channels`` and ``stage_names``.

    Args:
        in_channels (int | Sequence[int]): Channels of every stage map used.
        num_parts (int): Number of parts ``P`` per stage. Defaults to 2.
        reduction (int | Sequence[int]): OSME reduction ratio, shared or per
            stage. Defaults to 16.
        pool (str | Sequence[str]): Pooling of the part vectors, ``'avg'``
            or ``'max'``, shared or per stage. Defaults to ``'avg'``.
        embed_dims (int, optional): Size ``D`` of the part embeddings; None
            keeps the part vectors. Defaults to 512.
        stage_names (Sequence[str], optional): Stage names of the loss
            keys; None is ``('s3', 's4')`` for two stages. Defaults to None.
        in_indices (Sequence[int], optional): Backbone outputs to use; None
            takes the last ``len(in_channels)``. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    POOL_MODES = ('avg', 'max')

    def __init__(
        self,
        in_channels: Union[int, Sequence[int]],
        num_parts: int = 2,
        reduction: Union[int, Sequence[int]] = 16,
        pool: Union[str, Sequence[str]] = 'avg',
        embed_dims: Optional[int] = 512,
        stage_names: Optional[Sequence[str]] = None,
        in_indices: Optional[Sequence[int]] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, int):
            in_channels = (in_channels,)
        self.in_channels = tuple(in_channels)
        num_stages = len(self.in_channels)
        if num_stages == 0:
            raise ValueError(
                'in_channels=(): no stage; give the channels of at least '
                'one stage map'
            )
        if stage_names is None:
            stage_names = default_stage_names(num_stages)
        self.stage_names = _per_stage(
            tuple(stage_names), num_stages, 'stage_names'
        )
        self.num_parts = num_parts
        self.reductions = _per_stage(reduction, num_stages, 'reduction')
        self.pools = _per_stage(pool, num_stages, 'pool')
        for mode in self.pools:
            if mode not in self.POOL_MODES:
                raise ValueError(
                    f'pool={mode!r}: unknown pooling; use one of '
                    f'{self.POOL_MODES}'
                )
        if in_indices is not None:
            in_indices = _per_stage(
                tuple(in_indices), num_stages, 'in_indices'
            )
        self.in_indices = in_indices
        self.embed_dims = embed_dims

        self.osmes = nn.ModuleList(
            OSME(c, num_parts=num_parts, reduction=r)
            for c, r in zip(self.in_channels, self.reductions)
        )
        if embed_dims is None:
            self.projs = None
        else:
            self.projs = nn.ModuleList(
                nn.Linear(c, embed_dims) for c in self.in_channels
            )

    def _select(self, inputs) -> Tuple[torch.Tensor, ...]:
        """Pick the stage maps, checking ``in_channels`` against them."""
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs,)
        inputs = tuple(inputs)
        indices = stage_indices(len(inputs), self.in_indices, self.in_channels)
        maps = tuple(inputs[i] for i in indices)
        shapes = tuple(tuple(x.shape[1:]) for x in maps)
        if any(len(s) != 3 for s in shapes) or self.in_channels != tuple(
            s[0] for s in shapes
        ):
            raise ValueError(
                f'model.neck.in_channels={self.in_channels}: the backbone '
                f'gives stage maps of shapes (C, H, W) {shapes}; set the '
                'channels of these NCHW maps (check model.backbone.'
                'out_indices)'
            )
        return maps

    def forward(self, inputs: Sequence[torch.Tensor]) -> CPLOutput:
        """Compute the coarse parts of every stage.

        Args:
            inputs (Sequence[torch.Tensor]): Backbone stage maps (B, C, H, W).

        Returns:
            CPLOutput: The coarse parts of every stage.
        """
        maps = self._select(inputs)
        enhanced, excitations, part_vecs, part_embeds = [], [], [], []
        for i, x in enumerate(maps):
            squeeze = x.mean(dim=(2, 3))
            m = self.osmes[i](squeeze)  # (B, P, C)
            enhanced.append(x * m.mean(dim=1)[:, :, None, None])
            # m_p > 0 commutes with GAP and GMP: pooling F once skips the P
            # part maps, with the same values and gradients.
            if self.pools[i] == 'avg':
                pooled = squeeze
            else:
                pooled = x.amax(dim=(2, 3))
            part_vecs.append(pooled[:, None, :] * m)
            excitations.append(m)
            # Same values from the detached map (see the class docstring).
            if torch.is_grad_enabled():
                m = self.osmes[i](squeeze.detach())
            embed_in = pooled.detach()[:, None, :] * m
            part_embeds.append(
                embed_in if self.projs is None else self.projs[i](embed_in)
            )
        return CPLOutput(
            feats=tuple(maps),
            enhanced=tuple(enhanced),
            excitations=tuple(excitations),
            part_vecs=tuple(part_vecs),
            part_embeds=tuple(part_embeds),
        )

    def attention_maps(self, out: CPLOutput) -> Tuple[torch.Tensor, ...]:
        """Channel means of the part maps ``A_p = F * m_p``, to visualise.

        Args:
            out (CPLOutput): The output of :meth:`forward`.

        Returns:
            tuple[torch.Tensor]: One ``(B, P, H_s, W_s)`` map per stage.
        """
        return tuple(
            part_attention_maps(x, m)
            for x, m in zip(out.feats, out.excitations)
        )
