# Copyright (c) scrim-mm contributors. All rights reserved.
import torch
from mmpretrain.structures import DataSample

from scrim_mm.models.ops import unpack_targets


def test_hard_labels_are_both_target_and_labels():
    samples = [DataSample().set_gt_label(i) for i in (2, 0, 1)]
    target, labels = unpack_targets(samples)
    assert target.tolist() == [2, 0, 1]
    assert labels.tolist() == [2, 0, 1]


def test_soft_scores_give_argmax_labels():
    scores = torch.tensor([[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]])
    samples = [DataSample().set_gt_score(s) for s in scores]
    target, labels = unpack_targets(samples)
    assert torch.equal(target, scores)
    assert labels.tolist() == [1, 0]
