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

    ``N`` regions per stage: ``M`` in training, ``K`` at inference.

    Attributes:
        cpl (CPLOutput): The coarse parts of every stage.
        image_feats (torch.Tensor): (B, C) the pooled last backbone output,
            the feature a crop gets for its whole image.
        fpl (FPLOutput | None): Regions and part features; None in the
            CPL-only model.
        boxes (torch.Tensor | None): (B, S, N, 4) ``(x1, y1, x2, y2)`` in
            input pixels, clipped to the input.
        box_stages (torch.Tensor | None): (B, S, N) int64 stage index of
            every box in ``fpl_head.stage_names``.
        logits (dict[str, torch.Tensor]): :meth:`SCRIMHead.forward_all`:
            ``'fused'``, ``'raw'``, ``'cpl_<stage>'``.
    """

    cpl: CPLOutput
    image_feats: torch.Tensor
    fpl: Optional[FPLOutput]
    boxes: Optional[torch.Tensor]
    box_stages: Optional[torch.Tensor]
    logits: Dict[str, torch.Tensor]


@MODELS.register_module()
class SCRIMClassifier(ImageClassifier):
    """SCRIM: Spatial-aware Collaborative Region Mining.

    Implements "Spatial-aware collaborative region mining for fine-grained
    recognition" (Multimedia Tools and Applications, 2024) as an mmpretrain
    classifier. The backbone's stage maps feed the coarse-part necks
    (:class:`CPLNeck`, OSME part excitation and a part metric loss after
    Cross-X / MAMC); the fine-part head (:class:`FPLHead`, NTS-Net's
    navigator, teacher and ranking loss) selects regions on each stage, whose
    crops are re-encoded by the *shared* backbone in one batched call; the
    fusion head (:class:`SCRIMHead`) classifies the concatenation of the
    global feature, the CPL part vectors and the FPL part features.

    :meth:`forward_all` runs the whole model once and returns a
    :class:`SCRIMOutput`; ``loss``, ``predict``, the ``'tensor'`` mode,
    :meth:`extract_feat` and the ONNX export are thin adapters on it.

    The wiring follows the backbone. The classifier runs its backbone once
    on PyTorch's ``meta`` device (shapes only, no data) and fills in every
    channel, stride and fusion size of the neck and the heads that the
    config leaves unset (:mod:`scrim_mm.models.wiring`); a value that
    is set is kept and checked against the backbone. The stages are the
    backbone outputs, named ``'s<i+1>'`` after its ``out_indices``
    (``('s3', 's4')`` for ResNet's ``out_indices=(2, 3)``). The minimal
    model is::

        model = dict(
            type='SCRIMClassifier',
            num_classes=200,
            backbone=dict(type='ResNet', depth=50, out_indices=(2, 3)))

    Args:
        backbone (dict): Any mmpretrain backbone returning NCHW stage maps
            (e.g. ``ResNet`` with ``out_indices=(2, 3)``).
        neck (dict): The :class:`CPLNeck` config; the type and every unset
            wiring argument are filled in. Defaults to ``dict()``.
        head (dict): The :class:`SCRIMHead` config, likewise.
            Defaults to ``dict()``.
        fpl_head (dict, optional): The :class:`FPLHead` config, likewise;
            None gives the CPL-only model (no regions, no crops).
            Defaults to ``dict()``.
        num_classes (int, optional): The number of classes, given to the
            heads and, when it has none, to the data preprocessor (for
            Mixup / CutMix). None takes it from ``head``, ``fpl_head`` or
            ``data_preprocessor``, whichever sets it. Defaults to None.
        pretrained (str, optional): A checkpoint to initialise from.
            Defaults to None.
        train_cfg (dict, optional): mmpretrain's training options (batch
            ``augments`` such as Mixup / CutMix). Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``ClsDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
        channels_last (bool): Store the 4-d weights and run both backbone
            passes (full images and crops) in the channels-last memory
            format: the same results up to float rounding, faster with
            oneDNN on the CPU (docs/benchmark.md) and with cuDNN's tensor
            cores under AMP. False (``--cfg-options
            model.channels_last=False``) keeps PyTorch's default layout.
            Defaults to True.

    With an FPL head, the crop pass of the backbone keeps its own
    batch-norm running statistics
    (:class:`~scrim_mm.models.ops.CropNormStats`), so that the zoomed
    crops do not shift the statistics the full images are normalised with
    at test time.
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
        # Built in this order so that a seed gives the same initial weights
        # as every earlier version.
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
        """Re-encode crops with the shared backbone, the FPL's encoder.

        The crops do not train the backbone (see :class:`FPLHead`), so the
        pass runs without autograd, with the crops' own batch-norm
        statistics (:class:`~scrim_mm.models.ops.CropNormStats`).

        Args:
            crops (Tensor): (N, 3, h, w) normalised crops.

        Returns:
            Tensor: (N, C) the global average of the backbone's last
            stage map on each crop.
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
            SCRIMOutput: The coarse parts, the regions with their features
            and clipped boxes, and every logits.
        """
        feats = self.backbone(self._memory_format(inputs))
        cpl = self.neck(feats)
        # The feature the crops get: the backbone's last output, which the
        # neck may not use (neck.in_indices).
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
            stage (str): ``'backbone'`` (tuple of stage maps), ``'neck'``
                (the :class:`CPLOutput`) or ``'pre_logits'`` (the fused
                feature, fine parts included). Defaults to ``'neck'``.

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
        """The unified entry: ``'tensor'``, ``'loss'`` or ``'predict'``.

        Args:
            inputs (Tensor): The input batch (B, 3, H, W).
            data_samples (List[DataSample], optional): Annotations; required
                by ``'loss'``.
            mode (str): What to return. Defaults to ``'tensor'`` (the fused
                logits).

        Returns:
            Tensor | dict | List[DataSample]: Fused logits, the loss dict or
            the predictions.
        """
        if mode == 'tensor':
            return self.forward_all(inputs).logits['fused']
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(
        self, inputs: torch.Tensor, data_samples: List[DataSample]
    ) -> Dict[str, torch.Tensor]:
        """Compute every loss term of SCRIM.

        Args:
            inputs (Tensor): The input batch (B, 3, H, W).
            data_samples (List[DataSample]): With ``gt_label`` or
                ``gt_score``.

        Returns:
            dict[str, Tensor]: ``loss_fused``, ``loss_raw``,
            ``loss_cpl_<stage>``, ``loss_contrast_<stage>``,
            ``loss_teacher_<stage>``, ``loss_rank_<stage>`` and, with a
            diversity loss, ``loss_diversity_<stage>``.
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

        Besides ``pred_score`` / ``pred_label``, every sample gets
        ``pred_boxes`` (S*K, 4) in network-input pixels (x1, y1, x2, y2),
        clipped to the input (the crops themselves keep NTS-Net's zero
        padding outside the image),
        ``pred_box_scores`` (S*K,) and ``pred_box_stages`` (S*K,), the index
        of the stage in ``fpl_head.stage_names``.

        Args:
            inputs (Tensor): The input batch (B, 3, H, W).
            data_samples (List[DataSample], optional): Filled in place when
                given.

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
