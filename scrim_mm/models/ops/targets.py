# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import List, Tuple

import torch
from mmpretrain.structures import DataSample

__all__ = ['unpack_targets']


def unpack_targets(
    data_samples: List[DataSample],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack the targets of a batch as ``ClsHead`` does, plus index labels.

    Mixup / CutMix replace ``gt_label`` by a soft ``gt_score``: the
    cross-entropy terms take it as it is, the terms that need one class
    (part-contrastive loss, FPL teacher and ranking) its arg-max.

    Args:
        data_samples (List[DataSample]): The annotations of the batch.

    Returns:
        tuple[Tensor, Tensor]: ``target``, (B,) class indices or
        (B, num_classes) scores, and ``labels``, always (B,) indices.
    """
    if 'gt_score' in data_samples[0]:
        target = torch.stack([s.gt_score for s in data_samples])
        return target, target.argmax(dim=1)
    target = torch.cat([s.gt_label for s in data_samples])
    return target, target
