# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import Dict, List, NamedTuple, Optional

import torch
import torch.nn as nn
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .. import wiring
from ..heads import FPLOutput
from ..necks import CPLOutput
from ..ops import CropNormStats, unpack_targets


class SCRIMOutput(NamedTuple):
    """Everything one pass of :class:`SCRIMClassifier` computes.

    Attributes:
        cpl (CPLOutput): The coarse parts of every stage.
        image_feats (torch.Tensor): (B, C) pooled last backbone output.
        fpl (FPLOutput | None): Regions and part features; None without FPL.
        boxes (torch.Tensor | None): (B, S, N, 4) ``(x1, y1, x2, y2)`` in
            input pixels, clipped to the input.
        box_stages (torch.Tensor | None): (B, S, N) int64 stage index of
            every box in ``fpl_head.stage_names``.
        logits (dict[str, torch.Tensor]): :meth:`SCRIMHead.forward_all`.
    """

    cpl: CPLOutput
    image_feats: torch.Tensor
    fpl: Optional[FPLOutput]
    boxes: Optional[torch.Tensor]
    box_stages: Optional[torch.Tensor]
    logits: Dict[str, torch.Tensor]


@MODELS.register_module()
class SCRIMClassifier(ImageClassifier):
    """SCRIM: Spatial-aware Collaborative Region Mining (MTAP, 2024).

    The stage maps feed the coarse parts (:class:`CPLNeck`); the fine parts
    (:class:`FPLHead`) select regions on each stage, whose crops the shared
    backbone encodes in one call (with its own batch-norm statistics,
    :class:`~scrim_mm.models.ops.CropNormStats`); :class:`SCRIMHead`
    classifies the fusion of the global and part features. One
    :meth:`forward_all` pass serves ``loss``, ``predict``, ``'tensor'``
    mode, :meth:`extract_feat` and ONNX export. What follows from the
    backbone is derived or checked (:mod:`scrim_mm.models.wiring`); stages
    are named ``'s<i+1>'`` after its ``out_indices``. The minimal model::

        model = dict(
            type='SCRIMClassifier',
            num_classes=200,
            backbone=dict(type='ResNet', depth=50, out_indices=(2, 3)))

    Args:
        backbone (dict): Any mmpretrain backbone returning NCHW stage maps.
        neck (dict): :class:`CPLNeck` config; the type and unset wiring are
            filled in. Defaults to ``dict()``.
        head (dict): :class:`SCRIMHead` config, likewise. Defaults to dict().
        fpl_head (dict, optional): :class:`FPLHead` config, likewise; None
            gives the CPL-only model. Defaults to ``dict()``.
        num_classes (int, optional): Classes of the heads and (by default)
            the data preprocessor; None takes a part's. Defaults to None.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        train_cfg (dict, optional): mmpretrain's training options (batch
            ``augments``). Defaults to None.
        data_preprocessor (dict, optional): Defaults to None
            (``ClsDataPreprocessor``).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
        channels_last (bool): Channels-last weights and backbone passes:
            same results up to rounding, faster on the CPU and under AMP
            (``docs/benchmark.md``). Defaults to True.
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict = dict(),  # noqa: B006
        head: dict = dict(),  # noqa: B006
        fpl_head: Optional[dict] = dict(),  # noqa: B006
        num_classes: Optional[int] = None,
        pretrained: Optional[str] = None,
        train_cfg: Optional[dict] = None,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
        channels_last: bool = True,
    ) -> None:
        if not isinstance(backbone, nn.Module):
            backbone = MODELS.build(backbone)
        if data_preprocessor is None:
            data_preprocessor = {}
        if isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor)
        neck = dict(neck, type=neck.get('type', 'CPLNeck'))
        head = dict(head, type=head.get('type', 'SCRIMHead'))
        if fpl_head is not None:
            fpl_head = dict(fpl_head, type=fpl_head.get('type', 'FPLHead'))
        wiring.wire(
            backbone,
            num_classes,
            neck=neck,
            head=head,
            fpl_head=fpl_head,
            data_preprocessor=data_preprocessor
            if isinstance(data_preprocessor, dict)
            else None,
        )
        # This build order keeps the initial weights of a seed.
        neck = wiring.build_part(neck, 'model.neck')
        head = wiring.build_part(head, 'model.head')
        fpl_head = wiring.build_part(fpl_head, 'model.fpl_head')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            train_cfg=train_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        self.fpl_head = fpl_head
        self.crop_norm_stats = (
            CropNormStats(self.backbone) if self.with_fpl else None
        )
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    @property
    def with_fpl(self) -> bool:
        """Whether the model has the fine-part branch."""
        return self.fpl_head is not None

    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Encode crops with the backbone: no autograd, crop BN statistics.

        Args:
            crops (Tensor): (N, 3, h, w) normalised crops.

        Returns:
            Tensor: (N, C) pooled last backbone stage map of each crop.
        """
        crops = self._memory_format(crops)
        with torch.no_grad(), self.crop_norm_stats.swap(self.backbone):
            last = self.backbone(crops)[-1]
        return last.mean(dim=(2, 3))

    def _memory_format(self, images: torch.Tensor) -> torch.Tensor:
        """The images in the memory format of the model."""
        if self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def forward_all(self, inputs: torch.Tensor) -> SCRIMOutput:
        """Run the whole model once.

        Args:
            inputs (Tensor): The normalised input batch (B, 3, H, W).

        Returns:
            SCRIMOutput: Everything the model computes.
        """
        feats = self.backbone(self._memory_format(inputs))
        cpl = self.neck(feats)
        # The last backbone output, which the neck may skip (in_indices).
        image_feats = feats[-1].mean(dim=(2, 3))
        if not self.with_fpl:
            logits = self.head.forward_all(cpl)
            return SCRIMOutput(cpl, image_feats, None, None, None, logits)
        fpl = self.fpl_head(cpl.enhanced, inputs, self.encode_crops)
        logits = self.head.forward_all(cpl, fpl.fusion_feats)
        h, w = inputs.shape[-2:]
        limit = fpl.boxes.new_tensor([w, h, w, h])
        boxes = fpl.boxes.clamp(min=0).minimum(limit)
        b, s, n = fpl.scores.shape
        stages = torch.arange(s, device=boxes.device)
        stages = stages.view(1, s, 1).expand(b, s, n)
        return SCRIMOutput(cpl, image_feats, fpl, boxes, stages, logits)

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck'):
        """Extract features.

        Args:
            inputs (Tensor): The input batch (B, 3, H, W).
            stage (str): ``'backbone'`` (stage maps), ``'neck'``
                (:class:`CPLOutput`) or ``'pre_logits'`` (fused feature).
                Defaults to ``'neck'``.

        Returns:
            tuple | CPLOutput | Tensor: The feature of that stage.
        """
        if stage not in ('backbone', 'neck', 'pre_logits'):
            raise ValueError(
                f'Invalid stage {stage!r}: expected "backbone", "neck" or '
                '"pre_logits".'
            )
        if stage == 'backbone':
            return self.backbone(self._memory_format(inputs))
        if stage == 'neck':
            return self.neck(self.backbone(self._memory_format(inputs)))
        out = self.forward_all(inputs)
        fpl_feats = None if out.fpl is None else out.fpl.fusion_feats
        return self.head.pre_logits(out.cpl, fpl_feats=fpl_feats)

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None,
        mode: str = 'tensor',
    ):
        """mmpretrain's entry; the ``'tensor'`` mode gives fused logits.

        Args:
            inputs (Tensor): The input batch (B, 3, H, W).
            data_samples (List[DataSample], optional): Annotations, needed
                by ``'loss'``. Defaults to None.
            mode (str): ``'tensor'``, ``'loss'`` or ``'predict'``.
                Defaults to ``'tensor'``.
        """
        if mode == 'tensor':
            return self.forward_all(inputs).logits['fused']
        return super().forward(inputs, data_samples, mode)

    def loss(
        self, inputs: torch.Tensor, data_samples: List[DataSample]
    ) -> Dict[str, torch.Tensor]:
        """Compute every loss term of SCRIM.

        Args:
            inputs (Tensor): The input batch (B, 3, H, W).
            data_samples (List[DataSample]): With ``gt_label`` or ``gt_score``.

        Returns:
            dict[str, Tensor]: :meth:`SCRIMHead.loss` and :meth:`FPLHead.loss`.
        """
        out = self.forward_all(inputs)
        losses = self.head.loss(out.cpl, data_samples, logits=out.logits)
        if out.fpl is not None:
            losses.update(
                self.fpl_head.loss(
                    out.fpl.part_feats,
                    out.fpl.scores,
                    unpack_targets(data_samples)[1],
                    out.image_feats,
                )
            )
        return losses

    def predict(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None,
        **kwargs,
    ) -> List[DataSample]:
        """Predict classes and the mined regions.

        Besides ``pred_score`` / ``pred_label``, samples get ``pred_boxes``
        (S*K, 4), ``pred_box_scores`` and ``pred_box_stages`` (S*K,).

        Args:
            inputs (Tensor): The input batch (B, 3, H, W).
            data_samples (List[DataSample], optional): Filled in place when
                given. Defaults to None.

        Returns:
            List[DataSample]: One per image.
        """
        out = self.forward_all(inputs)
        samples = self.head.predict(out.cpl, data_samples, logits=out.logits)
        if out.fpl is None:
            return samples
        fields = (
            ('pred_boxes', out.boxes.detach()),
            ('pred_box_scores', out.fpl.scores.detach()),
            ('pred_box_stages', out.box_stages),
        )
        for name, value in fields:
            value = value.flatten(1, 2)
            for sample, item in zip(samples, value):
                sample.set_field(item, name, dtype=torch.Tensor)
        return samples
