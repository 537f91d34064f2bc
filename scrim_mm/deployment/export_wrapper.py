# Copyright (c) scrim-mm contributors. All rights reserved.
"""The test-mode SCRIM model as a function of tensors only."""

from typing import Tuple

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
        out = self.model.forward_all(inputs)
        probs = F.softmax(self.model.head.pred_logits(out.logits), dim=1)
        return (
            probs,
            out.boxes.flatten(1, 2),
            out.fpl.scores.flatten(1, 2),
            out.box_stages.flatten(1, 2),
        )
