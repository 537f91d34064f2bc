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
    num_anchors_per_level,
)
from ..wiring import default_stage_names

_SCALES_2 = (2 ** (1 / 3), 2 ** (2 / 3))
_SCALES_3 = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
_RATIOS = (0.667, 1.0, 1.5)


def default_anchor_cfg(stage_stride: int) -> dict:
    """NTS-Net's anchor setting, scaled to a stage of stride ``s``.

    Level strides ``s * (1, 2, 4)``, base sizes ``1.5 * s * (1, 2, 4)``,
    scales ``{2^(1/3), 2^(2/3)}`` on the first two levels and
    ``{1, 2^(1/3), 2^(2/3)}`` on the last, ratios ``{0.667, 1, 1.5}``. For
    ``s = 32`` this is NTS-Net's setting (1614 anchors at 448x448).

    Args:
        stage_stride (int): Stride ``s`` of the stage map.

    Returns:
        dict: Keys ``strides``, ``sizes``, ``scales``, ``ratios``.
    """
    s = int(stage_stride)
    return dict(
        strides=(s, 2 * s, 4 * s),
        sizes=(1.5 * s, 3.0 * s, 6.0 * s),
        scales=(_SCALES_2, _SCALES_2, _SCALES_3),
        ratios=_RATIOS,
    )


class FPLOutput(NamedTuple):
    """Outputs of :class:`FPLHead`, ``N`` regions per stage and image
    (``M`` in training, ``K`` at inference), in pick order.

    Attributes:
        boxes (Tensor): (B, S, N, 4) float32 ``(x1, y1, x2, y2)`` in input
            pixels, not clipped (the crops are zero-padded outside the
            image); no gradient.
        scores (Tensor): (B, S, N) float32 navigator scores, with gradient
            to the navigators.
        part_feats (Tensor): (B, S, N, C) features of the re-encoded
            regions; no gradient (crops do not train the backbone).
        fusion_feats (Tensor): (B, S, K, C), the first ``K`` of them: the
            part features of the fusion, in training as at inference.
    """

    boxes: Tensor
    scores: Tensor
    part_feats: Tensor
    fusion_feats: Tensor


def _first_levels(values: Sequence, num: int) -> Sequence:
    """The first ``num`` levels of a per-level setting; a shared one as is."""
    if all(isinstance(v, (int, float)) for v in values):
        return values
    return values[:num]


@MODELS.register_module()
class FPLHead(BaseModule):
    """Fine Parts Localization head: navigator, selection, crops, teacher.

    The FPL module of SCRIM ("Spatial-aware collaborative region mining for
    fine-grained recognition", Multimedia Tools and Applications, 2024),
    built after the navigator-teacher scheme of NTS-Net (Yang et al.,
    "Learning to Navigate for Fine-grained Classification", ECCV 2018). One
    FPL per stage ("dual FPLs"): each has its own :class:`Navigator` scoring
    multi-level anchors on the CPL-enhanced stage map; greedy hard NMS keeps
    ``M`` regions in training and ``K`` at inference; the regions are cut
    from the input (the classifier re-encodes them with the shared
    backbone); a teacher linear layer per stage classifies the part
    features, and a ranking loss teaches each navigator to order its scores
    like the teacher's per-crop losses.

    Where this departs from NTS-Net, the part benchmark
    (``docs/part_benchmark.md``) measured why:

    - **A teacher per stage.** The stages crop at different scales; a
      teacher shared by both that learns the coarse stage's crops first
      rates the finer stage's crops wrongly, and that navigator learns to
      avoid the part.
    - **Teachers also learn on the whole image** (which always shows the
      part), so they can tell informative crops from the others before the
      navigators select good ones. The ranking uses the crops only.
    - **Ranking capped at chance.** The per-crop losses that order the
      ranking pairs are clamped at ``ln(num_classes)``: crops on which the
      teacher gives the true class less than a uniform guess tie. Without
      the cap, a teacher that is confidently wrong early in training makes
      the navigator prefer background and padding to the part.
    - **Crops do not train the backbone.** The part features are detached:
      the backbone learns from the whole images, every teacher is a linear
      probe, and the crop pass runs without autograd (about half the cost
      of a step). Crops of navigators that have not found the part are
      label noise for the backbone.

    Gradient flow: the navigator input is detached and the crops are
    detached, so each navigator learns only from its ranking loss; the
    ranking loss sees the teacher losses detached, so the teacher learns only
    from its cross-entropy.

    Inside a :class:`SCRIMClassifier`, ``num_classes``, ``in_channels``,
    ``feat_channels``, ``stage_strides`` and ``stage_names`` are derived
    (:func:`~scrim_mm.models.wiring.wire`).

    Args:
        num_classes (int): Number of classes of the teachers.
        in_channels (Sequence[int]): Channels of the enhanced map of every
            stage (navigator inputs).
        feat_channels (int): Channels of a part feature (the pooled last
            backbone stage of a crop).
        stage_strides (Sequence[int]): Stride of every stage map w.r.t.
            the input.
        anchor_cfgs (Sequence[dict], optional): Per stage, a dict with any of
            ``strides``, ``sizes``, ``scales``, ``ratios`` (see
            :func:`~scrim_mm.models.ops.generate_anchors`); missing keys
            take :func:`default_anchor_cfg` of the stage stride. ``strides``
            must be ``stage_stride * (1, 2, 4, ...)`` (the navigator's
            pyramid). Defaults to None (all defaults). Whatever the
            setting, the levels are fitted to the input size
            (:func:`~scrim_mm.models.ops.fit_anchor_levels`): a level
            whose largest square box is wider than
            :data:`~scrim_mm.models.ops.MAX_REGION_FRAC` (0.4) of the
            input side is dropped, and a stage left without a level keeps
            its first one, shrunk to that width. A region as large as the
            image localises nothing.
        navigator_channels (int): Channels of the navigator tower.
            Defaults to 128.
        num_train_parts (int): Regions per stage and image in training
            (``M``). NTS-Net used 6; 4 is what the part benchmark
            validated (6 steadied stage 4 but lost stage 3 on two seeds of
            three). Defaults to 4.
        num_test_parts (int): Regions per stage and image at inference
            (``K <= M``), the part features of the fusion. Defaults to 2.
        nms_iou (float): IoU threshold of the hard NMS. Defaults to 0.25.
        crop_size (int | Sequence[int], optional): Size ``(h, w)`` of the
            crops. None derives half the input size from every batch
            (NTS-Net's 224 at 448). Defaults to None.
        teacher_loss (dict, optional): Config of the teacher's per-crop
            classification loss. Defaults to None, meaning
            ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        rank_loss (dict, optional): Config of the ranking loss. Defaults to
            None, meaning ``dict(type='RegionRankingLoss', loss_weight=1.0)``.
        stage_names (Sequence[str], optional): Stage names used in loss
            keys; None takes the neck's inside a :class:`SCRIMClassifier`,
            else ``('s3', 's4')`` for two stages (the last stages of a
            four-stage backbone). Defaults to None.
        explore (float): Exploration of the training selection: the NMS
            picks regions by the navigator scores plus Gaussian noise of
            ``explore`` times each image's score spread (the ranking loss
            still sees the plain scores; inference is unaffected). It lets
            the teacher see regions the navigator does not rank first yet,
            which breaks the bootstrap where a stage never selects the part
            and so never learns that it is informative. 0 turns it off
            (NTS-Net). Defaults to 0.5.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.
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
        teacher_loss: Optional[dict] = None,
        rank_loss: Optional[dict] = None,
        stage_names: Optional[Sequence[str]] = None,
        explore: float = 0.5,
        init_cfg: Optional[Union[dict, List[dict]]] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        num_stages = len(in_channels)
        if stage_names is None:
            stage_names = default_stage_names(num_stages)
        if num_classes <= 0:
            raise ValueError(
                f'num_classes={num_classes}: must be positive; set the '
                'number of classes of the dataset'
            )
        for key, value in (
            ('stage_strides', stage_strides),
            ('stage_names', stage_names),
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
        if num_test_parts < 1 or num_train_parts < 1:
            raise ValueError(
                f'num_train_parts={num_train_parts}, num_test_parts='
                f'{num_test_parts}: must be positive (M and K regions per '
                'stage); set both to 1 or more'
            )
        if num_test_parts > num_train_parts:
            raise ValueError(
                f'num_test_parts={num_test_parts}: more than num_train_parts='
                f'{num_train_parts}, but inference keeps the first K of the '
                f'M regions of training (K <= M); set num_test_parts <= '
                f'{num_train_parts}'
            )
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        if crop_size is not None:
            crop_size = tuple(int(c) for c in crop_size)
            if len(crop_size) != 2 or min(crop_size) <= 0:
                raise ValueError(
                    f'crop_size={crop_size}: not a size; give a positive '
                    'int, (h, w) or None (half the input)'
                )
        if anchor_cfgs is None:
            anchor_cfgs = [dict() for _ in range(num_stages)]
        if len(anchor_cfgs) != num_stages:
            raise ValueError(
                f'anchor_cfgs={list(anchor_cfgs)}: {len(anchor_cfgs)} entries '
                f'for {num_stages} stages; give one dict per stage'
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

        self.anchor_cfgs = []
        self.navigators = nn.ModuleList()
        for name, stride, channels, cfg in zip(
            self.stage_names, self.stage_strides, self.in_channels, anchor_cfgs
        ):
            unknown = set(cfg) - {'strides', 'sizes', 'scales', 'ratios'}
            if unknown:
                raise ValueError(
                    f'anchor_cfgs[{name!r}]={cfg}: unknown keys '
                    f'{sorted(unknown)}; use strides, sizes, scales, ratios'
                )
            cfg = {**default_anchor_cfg(stride), **cfg}
            num_levels = len(cfg['strides'])
            expected = tuple(stride * 2**i for i in range(num_levels))
            if tuple(int(s) for s in cfg['strides']) != expected:
                raise ValueError(
                    f'anchor_cfgs[{name!r}].strides='
                    f'{tuple(cfg["strides"])}: the navigator levels of a '
                    f'stage of stride {stride} have strides {expected} '
                    '(doubled at every level); set those or leave them unset'
                )
            self.anchor_cfgs.append(cfg)
            self.navigators.append(
                Navigator(
                    channels,
                    navigator_channels,
                    num_anchors_per_level(
                        cfg['scales'], cfg['ratios'], num_levels
                    ),
                )
            )
        if explore < 0:
            raise ValueError(
                f'explore={explore}: must be >= 0; set 0 to turn exploration '
                'off'
            )
        self.explore = float(explore)
        # One teacher ("partcls" of NTS-Net) per stage, shared by its crops.
        self.teacher_fcs = nn.ModuleList(
            nn.Linear(feat_channels, num_classes) for _ in range(num_stages)
        )
        self.loss_teacher = self._build_loss(
            teacher_loss, dict(type='CrossEntropyLoss', loss_weight=1.0)
        )
        self.loss_rank = self._build_loss(
            rank_loss, dict(type='RegionRankingLoss', loss_weight=1.0)
        )
        # (stage, H, W, device, dtype) -> anchors; not part of the state.
        self._anchor_cache: Dict[tuple, Tensor] = {}

    @staticmethod
    def _build_loss(
        cfg: Optional[Union[dict, nn.Module]], default: dict
    ) -> nn.Module:
        if cfg is None:
            cfg = default
        if isinstance(cfg, nn.Module):
            return cfg
        return MODELS.build(cfg)

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
        """Anchors of one stage for an input size, cached.

        The levels are fitted to the input size
        (:func:`~scrim_mm.models.ops.fit_anchor_levels`); the kept levels
        are the first ones, so their anchors are the first of the
        navigator's scores.

        Args:
            stage (int): Stage index.
            img_shape (Tuple[int, int]): Input size ``(H, W)``.
            device (torch.device): Device of the anchors.

        Returns:
            Tensor: Float32 anchors (A, 4), ``(x1, y1, x2, y2)``, of the
            kept levels.
        """
        img_shape = (int(img_shape[0]), int(img_shape[1]))
        key = (stage, img_shape, device, torch.float32)
        anchors = self._anchor_cache.get(key)
        if anchors is None:
            cfg = self.anchor_cfgs[stage]
            num_kept, sizes = fit_anchor_levels(
                cfg['sizes'], cfg['scales'], img_shape
            )
            try:
                anchors = generate_anchors(
                    img_shape,
                    cfg['strides'][:num_kept],
                    sizes[:num_kept],
                    _first_levels(cfg['scales'], num_kept),
                    _first_levels(cfg['ratios'], num_kept),
                    device,
                    torch.float32,
                )
            except ValueError as e:
                raise ValueError(
                    f'stage {self.stage_names[stage]}: {e}'
                ) from e
            self._anchor_cache[key] = anchors
        return anchors

    def forward(
        self,
        enhanced: Sequence[Tensor],
        inputs: Tensor,
        encoder: Callable[[Tensor], Tensor],
    ) -> FPLOutput:
        """Select regions, crop them from the inputs and encode them.

        Args:
            enhanced (Sequence[Tensor]): Per stage, the CPL-enhanced map
                (B, in_channels[s], H / stride_s, W / stride_s).
            inputs (Tensor): Normalised network inputs (B, 3, H, W).
            encoder (Callable[[Tensor], Tensor]): Maps crops
                (B * S * N, 3, h, w) to features (B * S * N, C); the
                classifier's backbone, pooled.

        Returns:
            FPLOutput: Boxes, scores and part features of the regions.
        """
        boxes, scores = self.select(enhanced, inputs.shape[-2:])
        num_imgs, num_stages, num_parts = scores.shape
        part_feats = encoder(self.crop(inputs, boxes)).view(
            num_imgs, num_stages, num_parts, -1
        )
        # Inference keeps K regions per stage; training M, of which the
        # fusion takes the first K, the ones inference would pick.
        return FPLOutput(
            boxes, scores, part_feats, part_feats[:, :, : self.num_test_parts]
        )

    def select(
        self, enhanced: Sequence[Tensor], img_shape: Tuple[int, int]
    ) -> Tuple[Tensor, Tensor]:
        """Score the anchors of every stage and select regions by NMS.

        Args:
            enhanced (Sequence[Tensor]): Per stage, the CPL-enhanced map
                (B, in_channels[s], H / stride_s, W / stride_s). Detached
                here.
            img_shape (Tuple[int, int]): Network input size ``(H, W)``.

        Returns:
            Tuple[Tensor, Tensor]: Boxes (B, S, N, 4), float32
            ``(x1, y1, x2, y2)`` in input pixels (no gradient), and their
            navigator scores (B, S, N), float32 with gradient to the
            navigators. ``N`` is ``num_train_parts`` in training mode and
            ``num_test_parts`` otherwise; regions are in pick order.
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
            # The scores of the levels fitted out of the input are dropped
            # (the last ones).
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
        """Scores with exploration noise, for the training selection only.

        Gaussian noise of ``explore`` times each image's score spread lets
        the selection try regions the navigator does not rank first yet,
        so the teacher sees them and the ranking loss can learn from them.

        Args:
            scores (Tensor): Navigator scores (B, A).

        Returns:
            Tensor: Detached perturbed scores (B, A).
        """
        scores = scores.detach().float()
        spread = scores.std(dim=1, keepdim=True).clamp_min(1e-6)
        return scores + self.explore * spread * torch.randn_like(scores)

    def _navigate(self, stage: int, feat: Tensor) -> Tensor:
        """Run one navigator; in fp32 under CPU autocast.

        oneDNN's bf16 weight gradient of a 3x3 stride-2 convolution on a
        1x1 map (a navigator level on small inputs, e.g. stage 4 at 64-96
        px) returns garbage, up to inf (torch 2.14, AVX-512 CPUs). The
        navigator is a small part of the cost, so on the CPU it runs in
        fp32; CUDA autocast is left as it is.

        Args:
            stage (int): Stage index.
            feat (Tensor): The detached enhanced map of the stage.

        Returns:
            Tensor: Scores of every anchor (B, A).
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
            Tensor: Detached crops (B * S * N, 3, h, w), ordered
            ``(b, s, n)``, zero-padded outside the image.
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
            part_feats (Tensor): Part features of the selected regions
                (B, S, N, feat_channels).
            scores (Tensor): Their navigator scores (B, S, N).
            labels (Tensor): Class indices (B,), or class scores
                (B, num_classes) (e.g. from Mixup / CutMix).
            image_feats (Tensor): Pooled features of the whole images
                (B, feat_channels); the teachers also learn from them.

        Returns:
            Dict[str, Tensor]: ``loss_teacher_<stage>`` (classification loss
            on every crop and on the whole image) and ``loss_rank_<stage>``
            (ranking of the scores by the per-crop cross-entropy, capped at
            chance) for every stage.
        """
        num_imgs, num_stages, num_parts = part_feats.shape[:3]
        if labels.dim() == 1:
            labels = labels.long()
        else:
            labels = labels.float()
        # Crop (b, n) of a stage has label b.
        targets = labels.repeat_interleave(num_parts, dim=0)
        # The part features are a linear probe's input: the teachers do not
        # train the backbone (see the class docstring).
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
