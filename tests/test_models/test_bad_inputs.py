# Copyright (c) scrim-mm contributors. All rights reserved.
"""Bad input to the model's parts gets an error that names it.

The error paths that the other model tests do not reach: each test gives
one wrong value and checks that the message names the key (or argument)
and the value at fault.
"""

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from scrim_mm.models import wiring
from scrim_mm.models.ops import (
    Navigator,
    batched_hard_nms,
    crop_regions,
    per_level,
)

from .test_fpl import r18_head
from .test_scrim_classifier import minimal_cfg


def _minimal(**kwargs):
    return minimal_cfg(**{'depth': 18, 'num_classes': 3, **kwargs})


def test_extract_feat_names_the_unknown_stage():
    model = MODELS.build(_minimal())
    with pytest.raises(ValueError, match="^Invalid stage 'head': expected"):
        model.extract_feat(torch.zeros(1, 3, 64, 64), stage='head')


def test_class_count_is_checked_once_by_the_head():
    """SCRIMHead is built before FPLHead and checks the shared count."""
    with pytest.raises(
        ValueError, match=r'^model.head.num_classes=0: must be positive'
    ):
        MODELS.build(_minimal(num_classes=0))


def test_cpl_only_predict_gives_scores_and_no_regions():
    torch.manual_seed(0)
    model = MODELS.build(_minimal(fpl_head=None)).eval()
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        samples = model.predict(inputs, [DataSample(), DataSample()])
        logits = model(inputs)
    assert [s.pred_score.shape for s in samples] == [(3,), (3,)]
    assert 'pred_boxes' not in samples[0]
    torch.testing.assert_close(
        torch.stack([s.pred_score for s in samples]), logits.softmax(1)
    )


def test_fpl_head_stage_names_and_part_counts():
    with pytest.raises(ValueError, match=r"^stage_names=\('s4', 's4'\): "):
        r18_head(stage_names=('s4', 's4'))
    with pytest.raises(
        ValueError, match=r'^num_train_parts=0, num_test_parts=0: must be'
    ):
        r18_head(num_train_parts=0, num_test_parts=0)


def test_scrim_head_negative_fpl_parts():
    with pytest.raises(ValueError, match=r'^num_fpl_parts=-1: must be >= 0'):
        MODELS.build(
            dict(
                type='SCRIMHead',
                num_classes=3,
                part_channels=(8,),
                fpl_channels=4,
                num_fpl_parts=-1,
            )
        )


def test_loss_inputs_of_the_wrong_shape():
    contrast = MODELS.build(dict(type='PartContrastiveLoss'))
    with pytest.raises(ValueError, match=r'\(B, P, D\), got \(4, 8\)'):
        contrast(torch.randn(4, 8), torch.arange(4))
    ranking = MODELS.build(dict(type='RegionRankingLoss'))
    with pytest.raises(ValueError, match=r'got \(2, 4\) and \(2, 3\)'):
        ranking(torch.randn(2, 4), torch.randn(2, 3))


def test_cpl_neck_needs_a_stage_and_takes_one_int():
    with pytest.raises(ValueError, match=r'^in_channels=\(\): no stage'):
        MODELS.build(dict(type='CPLNeck', in_channels=()))
    neck = MODELS.build(dict(type='CPLNeck', in_channels=16))
    assert neck.in_channels == (16,)
    out = neck(torch.rand(2, 16, 4, 4))  # one map, not a tuple
    assert out.part_vecs[0].shape == (2, 2, 16)


def test_osme_refuses_a_3d_input():
    osme = MODELS.build(dict(type='OSME', in_channels=16))
    with pytest.raises(ValueError, match=r'^x.shape=\(2, 16, 4\): neither'):
        osme(torch.rand(2, 16, 4))


def test_anchor_settings_per_level():
    assert per_level((1.0, 2.0), 2, 'scales') == [[1.0, 2.0], [1.0, 2.0]]
    with pytest.raises(ValueError, match=r'^ratios=\(\): empty'):
        per_level((), 2, 'ratios')
    with pytest.raises(ValueError, match=r'^scales=\(\(1.0,\),\): 1 entries'):
        per_level(((1.0,),), 2, 'scales')
    with pytest.raises(ValueError, match=r'^scales=.*: a level is empty'):
        per_level(((1.0,), ()), 2, 'scales')


def test_crops_boxes_nms_and_navigator_shapes():
    images = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r'got \(3, 8, 8\)'):
        crop_regions(images[0], torch.zeros(2, 1, 4), 4)
    with pytest.raises(ValueError, match=r'B = 2, got \(1, 1, 4\)'):
        crop_regions(images, torch.zeros(1, 1, 4), 4)
    with pytest.raises(ValueError, match=r'`scores` must be \(B, A\), got'):
        batched_hard_nms(torch.zeros(3, 4), torch.zeros(3), 0.25, 1)
    with pytest.raises(ValueError, match=r'\(B, A\) = \(1, 3\), got \(2, 4\)'):
        batched_hard_nms(torch.zeros(2, 4), torch.zeros(1, 3), 0.25, 1)
    with pytest.raises(ValueError, match='num_anchors_per_level'):
        Navigator(8, num_anchors_per_level=())


def test_build_part_prefixes_only_keys_of_the_config():
    """An error about a key of the config gets the config path in front;
    any other is raised as it is."""
    with pytest.raises(ValueError, match=r'^model.neck.reduction=0: '):
        wiring.build_part(
            dict(type='CPLNeck', in_channels=(16,), reduction=0),
            'model.neck',
        )
    with pytest.raises(ValueError, match=r'^PartContrastiveLoss mode must'):
        wiring.build_part(
            dict(type='PartContrastiveLoss', mode='x'), 'model.head.loss'
        )
