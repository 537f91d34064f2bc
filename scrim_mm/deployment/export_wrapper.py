# Copyright (c) scrim-mm contributors. All rights reserved.
"""The test-mode SCRIM model as a function of tensors only."""

from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ['OUTPUT_NAMES', 'SCRIMExportWrapper', 'check_exportable']

#: Names of the exported graph's outputs, in order.
OUTPUT_NAMES = ('scores', 'boxes', 'box_scores', 'box_stages')


def check_exportable(model: nn.Module) -> None:
    """Refuse, with a message naming the cause, a model the export can't do.

    Args:
        model (nn.Module): The model to export.

    Raises:
        TypeError: ``model`` is not a :class:`SCRIMClassifier` (e.g. the
            CPL-only mmpretrain ``ImageClassifier`` of the ``cpl_*``
            configs).
        ValueError: A :class:`SCRIMClassifier` without ``fpl_head``, or
            whose head is not a :class:`SCRIMHead` with a known
            ``pred_mode``.
    """
    from ..models import SCRIMClassifier, SCRIMHead

    if not isinstance(model, SCRIMClassifier):
        raise TypeError(
            'SCRIM ONNX export needs a SCRIMClassifier (backbone, CPLNeck, '
            f'FPLHead and SCRIMHead); got {type(model).__name__}. A CPL-only '
            'mmpretrain ImageClassifier (the cpl_* configs) has no regions: '
            'export it with mmdeploy or torch.onnx.export directly.'
        )
    if not model.with_fpl:
        raise ValueError(
            'SCRIM ONNX export: model.fpl_head is None (the CPL-only '
            'SCRIMClassifier) - the exported graph gives the FPL regions '
            '(boxes, box_scores, box_stages), so it needs an FPLHead.'
        )
    if not isinstance(model.head, SCRIMHead):
        raise ValueError(
            'SCRIM ONNX export: model.head must be a SCRIMHead, got '
            f'{type(model.head).__name__}.'
        )
    if model.head.pred_mode not in ('fused', 'sum'):
        raise ValueError(
            f'SCRIM ONNX export: model.head.pred_mode='
            f'{model.head.pred_mode!r} is not supported (fused, sum).'
        )


class SCRIMExportWrapper(nn.Module):
    """SCRIM's ``predict`` as tensors in, tensors out, for tracing.

    :meth:`SCRIMClassifier.predict` of "Spatial-aware collaborative region
    mining for fine-grained recognition" (Multimedia Tools and
    Applications, 2024) returns ``DataSample`` objects, which an exporter
    cannot trace. This wrapper runs the same steps (backbone, CPL necks,
    navigators, the anchors of the input size, hard NMS, crops, the
    re-encoding of the crops, fusion) and returns the values ``predict``
    puts into every sample, batched:

    * ``scores`` (B, num_classes): softmax of the logits chosen by
      ``head.pred_mode`` (``pred_score``);
    * ``boxes`` (B, S*K, 4): x1, y1, x2, y2 in input pixels, clipped to
      the input (``pred_boxes``);
    * ``box_scores`` (B, S*K): navigator scores (``pred_box_scores``);
    * ``box_stages`` (B, S*K): int64 stage index (``pred_box_stages``).

    Args:
        model (SCRIMClassifier): The model; put in eval mode here (``K``
            regions per stage).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        check_exportable(model)
        self.model = model.eval()

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Predict a normalised batch.

        Args:
            inputs (Tensor): (B, 3, H, W) float32, as the model's data
                preprocessor gives it.

        Returns:
            tuple[Tensor]: ``scores``, ``boxes``, ``box_scores`` and
            ``box_stages`` (see the class docstring).
        """
        model, head = self.model, self.model.head
        _, cpl_out = model._backbone_and_neck(inputs)
        boxes, scores, _, fusion_feats = model._forward_fpl(inputs, cpl_out)
        # As SCRIMHead.predict: the logits of pred_mode, then ClsHead's
        # softmax.
        if head.pred_mode == 'fused':
            logits = head(cpl_out, fpl_feats=fusion_feats)
        else:
            logits = sum(head.forward_all(cpl_out, fusion_feats).values())
        probs = F.softmax(logits, dim=1)
        # As SCRIMClassifier.predict: boxes clipped to the input.
        b, s, n = scores.shape
        h, w = inputs.shape[-2:]
        limit = torch.tensor(
            [w, h, w, h], dtype=boxes.dtype, device=boxes.device
        )
        boxes = boxes.flatten(1, 2).clamp(min=0).minimum(limit)
        stages = (
            torch.arange(s, device=scores.device)
            .view(1, s, 1)
            .expand(b, s, n)
            .flatten(1, 2)
        )
        return probs, boxes, scores.flatten(1, 2).float(), stages
