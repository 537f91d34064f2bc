# Copyright (c) scrim-mm contributors. All rights reserved.
"""FPL: fine parts localization (dual navigator / teacher head)."""

import math
from typing import (
    Callable,
    Dict,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

from ..ops import (
    Navigator,
    batched_hard_nms,
    crop_regions,
    fit_anchor_levels,
    generate_anchors,
    input_size_problem,
    per_level,
)
from ..wiring import default_stage_names

_SCALES_2 = (2 ** (1 / 3), 2 ** (2 / 3))
_SCALES_3 = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
_RATIOS = (0.667, 1.0, 1.5)


def default_anchor_cfg(stage_stride: int) -> dict:
    """NTS-Net's anchor setting, scaled to a stage of stride ``s``.

    Level strides ``s * (1, 2, 4)``, sizes ``1.5 * s * (1, 2, 4)``, scales
    ``2^(1/3), 2^(2/3)`` (and ``1`` on the last level), ratios
    ``0.667, 1, 1.5``; ``s = 32`` gives 1614 anchors at 448.

    Args:
        stage_stride (int): Stride ``s`` of the stage map.

    Returns:
        dict: Keys ``sizes``, ``scales``, ``ratios``.
    """
    s = int(stage_stride)
    return dict(
        sizes=(1.5 * s, 3.0 * s, 6.0 * s),
        scales=(_SCALES_2, _SCALES_2, _SCALES_3),
        ratios=_RATIOS,
    )


class FPLOutput(NamedTuple):
    """Outputs of :class:`FPLHead`: ``N`` regions (``M`` / ``K`` in train /
    test) per stage and image, in pick order.

    Attributes:
        boxes (Tensor): (B, S, N, 4) float32 ``(x1, y1, x2, y2)`` input
            pixels, not clipped; no gradient.
        scores (Tensor): (B, S, N) float32 navigator scores, with gradient.
        part_feats (Tensor): (B, S, N, C) features of the crops; detached.
        fusion_feats (Tensor): (B, S, K, C), the first ``K``, to be fused.
    """

    boxes: Tensor
    scores: Tensor
    part_feats: Tensor
    fusion_feats: Tensor


@MODELS.register_module()
class FPLHead(BaseModule):
    """Fine Parts Localization: navigators, NMS, crops and teachers.

    SCRIM's FPL after NTS-Net (Yang et al., ECCV 2018). Per stage, a
    :class:`Navigator` scores anchors on the detached enhanced map, hard
    NMS keeps ``M`` regions (``K`` at test), the shared backbone encodes
    their crops, a linear teacher classifies them and a ranking loss
    teaches the navigator their order. Departures from NTS-Net (measured
    in ``docs/part_benchmark.md``): a teacher per stage, also trained on
    the whole image; teacher losses capped at ``ln(num_classes)`` in the
    ranking; crops that do not train the backbone (no autograd); noise in
    the training selection. :class:`SCRIMClassifier` derives the wiring.

    Args:
        num_classes (int): Number of classes of the teachers.
        in_channels (Sequence[int]): Channels of every enhanced stage map.
        feat_channels (int): Channels of a part feature (a pooled crop).
        stage_strides (Sequence[int]): Stride of every stage map.
        anchor_cfgs (Sequence[dict], optional): Per stage, any of ``sizes``
            (one per level), ``scales``, ``ratios`` of
            :func:`default_anchor_cfg`, fitted to the input
            (:func:`~scrim_mm.models.ops.fit_anchor_levels`). Defaults to None.
        navigator_channels (int): Navigator channels. Defaults to 128.
        num_train_parts (int): Training regions ``M`` per stage and image,
            not NTS-Net's 6 (``docs/part_benchmark.md``). Defaults to 4.
        num_test_parts (int): Fused regions ``K <= M``. Defaults to 2.
        nms_iou (float): IoU threshold of the hard NMS. Defaults to 0.25.
        crop_size (int | Sequence[int], optional): Crop size ``(h, w)``;
            None is half the input (NTS-Net's 224 at 448). Defaults to None.
        teacher_loss (dict): Loss of the teachers. Defaults to
            ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        rank_loss (dict): Ranking loss. Defaults to
            ``dict(type='RegionRankingLoss', loss_weight=1.0)``.
        stage_names (Sequence[str], optional): Stage names of the loss
            keys; None is ``('s3', 's4')`` for two stages. Defaults to None.
        explore (float): Gaussian noise of the training selection, in units
            of each image's score spread; 0 is NTS-Net. Defaults to 0.5.
        init_cfg (dict | list[dict], optional): Init config. Defaults to None.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: Sequence[int],
        feat_channels: int,
        stage_strides: Sequence[int],
        anchor_cfgs: Optional[Sequence[dict]] = None,
        navigator_channels: int = 128,
        num_train_parts: int = 4,
        num_test_parts: int = 2,
        nms_iou: float = 0.25,
        crop_size: Optional[Union[int, Sequence[int]]] = None,
        teacher_loss: dict = dict(  # noqa: B006
            type='CrossEntropyLoss', loss_weight=1.0
        ),
        rank_loss: dict = dict(  # noqa: B006
            type='RegionRankingLoss', loss_weight=1.0
        ),
        stage_names: Optional[Sequence[str]] = None,
        explore: float = 0.5,
        init_cfg: Optional[Union[dict, List[dict]]] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        num_stages = len(in_channels)
        if stage_names is None:
            stage_names = default_stage_names(num_stages)
        if anchor_cfgs is None:
            anchor_cfgs = [dict() for _ in range(num_stages)]
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        if crop_size is not None:
            crop_size = tuple(int(c) for c in crop_size)
        for key, value in (
            ('stage_strides', stage_strides),
            ('stage_names', stage_names),
            ('anchor_cfgs', anchor_cfgs),
        ):
            if len(value) != num_stages:
                raise ValueError(
                    f'{key}={tuple(value)}: {len(value)} values for the '
                    f'{num_stages} stages of in_channels='
                    f'{tuple(in_channels)}; give one per stage'
                )
        if num_stages == 0 or len(set(stage_names)) != num_stages:
            raise ValueError(
                f'stage_names={tuple(stage_names)}: must be non-empty and '
                'unique; give each stage its own name'
            )
        if min(num_test_parts, num_train_parts) < 1:
            raise ValueError(
                f'num_train_parts={num_train_parts}, num_test_parts='
                f'{num_test_parts}: must be positive (M and K regions per '
                'stage); set both to 1 or more'
            )
        if num_test_parts > num_train_parts:
            raise ValueError(
                f'num_test_parts={num_test_parts}: more than num_train_parts='
                f'{num_train_parts}, but inference keeps the first K of the M '
                f'regions of training (K <= M); set num_test_parts <= '
                f'{num_train_parts}'
            )
        if crop_size is not None and (
            len(crop_size) != 2 or min(crop_size) <= 0
        ):
            raise ValueError(
                f'crop_size={crop_size}: not a size; give a positive int, '
                '(h, w) or None (half the input)'
            )
        if explore < 0:
            raise ValueError(
                f'explore={explore}: must be >= 0; set 0 to turn '
                'exploration off'
            )

        self.num_classes = num_classes
        self.in_channels = tuple(int(c) for c in in_channels)
        self.feat_channels = feat_channels
        self.stage_strides = tuple(int(s) for s in stage_strides)
        self.stage_names = tuple(stage_names)
        self.num_train_parts = num_train_parts
        self.num_test_parts = num_test_parts
        self.nms_iou = nms_iou
        self.crop_size = crop_size
        self.explore = float(explore)
        self.anchor_cfgs = []
        self.navigators = nn.ModuleList()
        for name, stride, channels, cfg in zip(
            self.stage_names, self.stage_strides, self.in_channels, anchor_cfgs
        ):
            unknown = set(cfg) - {'sizes', 'scales', 'ratios'}
            if unknown:
                raise ValueError(
                    f'anchor_cfgs[{name!r}]={cfg}: unknown keys '
                    f'{sorted(unknown)}; use sizes, scales, ratios (the '
                    'level strides are the stage stride, doubled per level)'
                )
            cfg = {**default_anchor_cfg(stride), **cfg}
            for key in ('scales', 'ratios'):
                cfg[key] = per_level(cfg[key], len(cfg['sizes']), key)
            self.anchor_cfgs.append(cfg)
            num_anchors = [
                len(s) * len(r) for s, r in zip(cfg['scales'], cfg['ratios'])
            ]
            self.navigators.append(
                Navigator(channels, navigator_channels, num_anchors)
            )
        # One teacher ("partcls" of NTS-Net) per stage, shared by its crops.
        self.teacher_fcs = nn.ModuleList(
            nn.Linear(feat_channels, num_classes) for _ in range(num_stages)
        )
        self.loss_teacher = MODELS.build(teacher_loss)
        self.loss_rank = MODELS.build(rank_loss)
        # (stage, H, W, device) -> anchors; not part of the state.
        self._anchor_cache: Dict[tuple, Tensor] = {}

    @property
    def num_stages(self) -> int:
        """int: Number of FPL stages ``S``."""
        return len(self.stage_names)

    @property
    def num_parts(self) -> int:
        """int: Regions per stage and image in the current mode (M or K)."""
        return self.num_train_parts if self.training else self.num_test_parts

    def get_anchors(
        self, stage: int, img_shape: Tuple[int, int], device: torch.device
    ) -> Tensor:
        """Anchors of the levels of one stage that fit an input, cached.

        Args:
            stage (int): Stage index.
            img_shape (Tuple[int, int]): Input size ``(H, W)``.
            device (torch.device): Device of the anchors.

        Returns:
            Tensor: (A, 4) float32 ``(x1, y1, x2, y2)``; the kept levels are
            the first, so they match the first navigator scores.
        """
        key = (stage, int(img_shape[0]), int(img_shape[1]), device)
        if key not in self._anchor_cache:
            cfg, size = self.anchor_cfgs[stage], key[1:3]
            num, sizes = fit_anchor_levels(cfg['sizes'], cfg['scales'], size)
            strides = [self.stage_strides[stage] * 2**i for i in range(num)]
            self._anchor_cache[key] = generate_anchors(
                size,
                strides,
                sizes[:num],
                cfg['scales'][:num],
                cfg['ratios'][:num],
                device,
            )
        return self._anchor_cache[key]

    def forward(
        self,
        enhanced: Sequence[Tensor],
        inputs: Tensor,
        encoder: Callable[[Tensor], Tensor],
    ) -> FPLOutput:
        """Select regions, crop them from the inputs and encode them.

        Args:
            enhanced (Sequence[Tensor]): CPL-enhanced maps (B, C_s, H_s, W_s).
            inputs (Tensor): Normalised network inputs (B, 3, H, W).
            encoder (Callable[[Tensor], Tensor]): The pooled backbone:
                crops (B * S * N, 3, h, w) to features (B * S * N, C).

        Returns:
            FPLOutput: Boxes, scores and part features of the regions.
        """
        boxes, scores = self.select(enhanced, inputs.shape[-2:])
        num_imgs, num_stages, num_parts = scores.shape
        part_feats = encoder(self.crop(inputs, boxes)).view(
            num_imgs, num_stages, num_parts, -1
        )
        # The fusion takes the first K: the regions inference would pick.
        return FPLOutput(
            boxes, scores, part_feats, part_feats[:, :, : self.num_test_parts]
        )

    def select(
        self, enhanced: Sequence[Tensor], img_shape: Tuple[int, int]
    ) -> Tuple[Tensor, Tensor]:
        """Score the anchors of every stage and select regions by NMS.

        Args:
            enhanced (Sequence[Tensor]): As in :meth:`forward`; detached.
            img_shape (Tuple[int, int]): Network input size ``(H, W)``.

        Returns:
            Tuple[Tensor, Tensor]: Boxes and scores as in :class:`FPLOutput`.
        """
        height, width = int(img_shape[0]), int(img_shape[1])
        problem = input_size_problem(height, width, self.stage_strides)
        if problem:
            raise ValueError(f'img_shape={height}x{width}: {problem}')
        num_parts = self.num_parts
        boxes, scores = [], []
        for i, feat in enumerate(enhanced):
            name, stride = self.stage_names[i], self.stage_strides[i]
            anchors = self.get_anchors(i, (height, width), feat.device)
            # The anchors assume a map of exactly input / stride.
            expected = (height // stride, width // stride)
            if tuple(feat.shape[-2:]) != expected:
                raise ValueError(
                    f'stage_strides[{i}]={stride}: the {name} map of a '
                    f'{height}x{width} input is {feat.shape[-2]}x'
                    f'{feat.shape[-1]}, not {expected[0]}x{expected[1]}; '
                    "set the backbone's stride of that stage"
                )
            # Drop the scores of the levels fitted out (the last ones).
            all_scores = self._navigate(i, feat.detach())[
                :, : anchors.shape[0]
            ]
            select = all_scores
            if self.training and self.explore > 0:
                select = self._perturb(all_scores)
            keep = batched_hard_nms(anchors, select, self.nms_iou, num_parts)
            boxes.append(anchors[keep])
            scores.append(all_scores.gather(1, keep).float())
        return torch.stack(boxes, dim=1), torch.stack(scores, dim=1)

    def _perturb(self, scores: Tensor) -> Tensor:
        """Detached scores (B, A) plus noise of ``explore`` x spread."""
        scores = scores.detach().float()
        spread = scores.std(dim=1, keepdim=True).clamp_min(1e-6)
        return scores + self.explore * spread * torch.randn_like(scores)

    def _navigate(self, stage: int, feat: Tensor) -> Tensor:
        """Run one navigator in fp32 under CPU autocast: oneDNN's bf16 weight
        gradient of a 3x3 stride-2 conv on a 1x1 map (e.g. stage 4 at 64-96
        px) is garbage, up to inf (torch 2.14, AVX-512). CUDA is left alone.
        """
        navigator = self.navigators[stage]
        if feat.device.type == 'cpu' and torch.is_autocast_enabled('cpu'):
            with torch.autocast(device_type='cpu', enabled=False):
                return navigator(feat.float())
        return navigator(feat)

    def crop(self, inputs: Tensor, boxes: Tensor) -> Tensor:
        """Cut the selected regions of all stages out of the inputs.

        Args:
            inputs (Tensor): Normalised network inputs (B, 3, H, W).
            boxes (Tensor): Boxes (B, S, N, 4) from :meth:`select`.

        Returns:
            Tensor: Detached zero-padded crops (B * S * N, 3, h, w), in
            ``(b, s, n)`` order.
        """
        num_imgs, num_stages, num_parts = boxes.shape[:3]
        crop_size = self.crop_size
        if crop_size is None:
            crop_size = (inputs.shape[-2] // 2, inputs.shape[-1] // 2)
        return crop_regions(
            inputs,
            boxes.reshape(num_imgs, num_stages * num_parts, 4),
            crop_size,
        )

    def teacher(self, part_feats: Tensor) -> Tensor:
        """Classify every part feature with the teacher of its stage.

        Args:
            part_feats (Tensor): Part features (B, S, N, feat_channels).

        Returns:
            Tensor: Part logits (B, S, N, num_classes).
        """
        return torch.stack(
            [fc(part_feats[:, i]) for i, fc in enumerate(self.teacher_fcs)],
            dim=1,
        )

    def loss(
        self,
        part_feats: Tensor,
        scores: Tensor,
        labels: Tensor,
        image_feats: Tensor,
    ) -> Dict[str, Tensor]:
        """Teacher and ranking losses of every stage.

        Args:
            part_feats (Tensor): Part features (B, S, N, feat_channels).
            scores (Tensor): Their navigator scores (B, S, N).
            labels (Tensor): Class indices (B,) or scores (B, num_classes).
            image_feats (Tensor): Whole-image features (B, feat_channels).

        Returns:
            Dict[str, Tensor]: Per stage, ``loss_teacher_<stage>`` (crops
            and whole image) and ``loss_rank_<stage>`` (capped at chance).
        """
        num_imgs, num_stages, num_parts = part_feats.shape[:3]
        if labels.dim() == 1:
            labels = labels.long()
        else:
            labels = labels.float()
        # Crop (b, n) of a stage has label b.
        targets = labels.repeat_interleave(num_parts, dim=0)
        # Linear probes: the teachers do not train the backbone.
        logits = self.teacher(part_feats.detach()).float()
        image_logits = self.teacher(
            image_feats.detach()[:, None, None].expand(-1, num_stages, 1, -1)
        ).float()
        image_targets = torch.cat([targets, labels], dim=0)
        chance = math.log(self.num_classes)
        losses = {}
        for i, name in enumerate(self.stage_names):
            stage_logits = logits[:, i].reshape(num_imgs * num_parts, -1)
            losses[f'loss_teacher_{name}'] = self.loss_teacher(
                torch.cat([stage_logits, image_logits[:, i, 0]]),
                image_targets,
            )
            with torch.no_grad():
                part_losses = F.cross_entropy(
                    stage_logits, targets, reduction='none'
                ).clamp(max=chance)
            losses[f'loss_rank_{name}'] = self.loss_rank(
                scores[:, i], part_losses.view(num_imgs, num_parts)
            )
        return losses
