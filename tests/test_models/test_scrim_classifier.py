# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tests of the assembled SCRIM model (``SCRIMClassifier``)."""

import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ._backbones import BACKBONE_IDS, TWO_STAGE_BACKBONES

STAGES = ('s3', 's4')
LOSS_KEYS = {
    'loss_fused',
    'loss_raw',
    'loss_cpl_s3',
    'loss_cpl_s4',
    'loss_contrast_s3',
    'loss_contrast_s4',
    'loss_diversity_s3',
    'loss_diversity_s4',
    'loss_teacher_s3',
    'loss_teacher_s4',
    'loss_rank_s3',
    'loss_rank_s4',
}


def scrim_cfg(
    backbone: dict,
    channels=(256, 512),
    num_classes: int = 4,
    train_parts: int = 6,
    test_parts: int = 4,
    crop_size: int = 64,
) -> dict:
    """A SCRIM config for a backbone giving ``channels`` at stride 16/32."""
    return dict(
        type='SCRIMClassifier',
        backbone=backbone,
        neck=dict(type='CPLNeck', in_channels=channels, embed_dims=32),
        fpl_head=dict(
            type='FPLHead',
            num_classes=num_classes,
            in_channels=channels,
            feat_channels=channels[-1],
            num_train_parts=train_parts,
            num_test_parts=test_parts,
            crop_size=crop_size,
        ),
        head=dict(
            type='SCRIMHead',
            num_classes=num_classes,
            in_channels=channels[-1],
            part_channels=channels,
            fpl_channels=channels[-1],
            num_fpl_parts=2 * test_parts,
        ),
    )


R18 = dict(type='ResNet', depth=18, out_indices=(2, 3))


def build(cfg: dict) -> torch.nn.Module:
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def samples(labels) -> list:
    return [DataSample().set_gt_label(int(i)) for i in labels]


@pytest.mark.parametrize(
    'backbone, channels, size', TWO_STAGE_BACKBONES, ids=BACKBONE_IDS
)
def test_backbones_shapes(backbone, channels, size):
    model = build(scrim_cfg(backbone, channels, crop_size=32))
    x = torch.randn(2, 3, size, size)
    model.train()
    losses = model(x, samples([0, 1]), mode='loss')
    assert set(losses) == LOSS_KEYS
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        logits = model(x)
        fused = model.extract_feat(x, stage='pre_logits')
        neck = model.extract_feat(x, stage='neck')
        feats = model.extract_feat(x, stage='backbone')
    assert logits.shape == (2, 4)
    # global + P * (C3 + C4) + S * K * C4
    assert fused.shape == (
        2,
        channels[1] + 2 * sum(channels) + 8 * channels[1],
    )
    assert [f.shape[1] for f in feats] == list(channels)
    assert [v.shape for v in neck.part_vecs] == [(2, 2, c) for c in channels]


def test_predict_batch_one_regions_inside_image():
    model = build(scrim_cfg(R18)).eval()
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 128, 96))
    assert len(out) == 1
    sample = out[0]
    assert sample.pred_score.shape == (4,)
    assert torch.allclose(sample.pred_score.sum(), torch.tensor(1.0))
    assert sample.pred_boxes.shape == (8, 4)
    boxes = sample.pred_boxes
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= 96).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= 128).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert sample.pred_box_stages.tolist() == [0] * 4 + [1] * 4
    # Scores are sorted within each stage (greedy NMS order).
    for s in range(2):
        sc = sample.pred_box_scores[4 * s : 4 * s + 4]
        assert (sc[:-1] >= sc[1:]).all()


def test_predict_fills_given_samples_and_matches_tensor_mode():
    model = build(scrim_cfg(R18)).eval()
    x = torch.randn(3, 3, 64, 64)
    given = samples([0, 1, 2])
    with torch.no_grad():
        out = model.predict(x, given)
        logits = model(x)
    assert all(a is b for a, b in zip(out, given))
    assert torch.allclose(
        torch.stack([s.pred_score for s in out]), logits.softmax(1), atol=1e-5
    )


def test_gradient_routing():
    """Navigators learn from the ranking loss only; the rest from CE."""
    model = build(scrim_cfg(R18))
    model.train()
    x = torch.randn(4, 3, 64, 64)
    losses = model(x, samples([0, 0, 1, 1]), mode='loss')
    nav = [p for n, p in model.named_parameters() if 'navigator' in n]
    teacher = [
        p
        for n, p in model.named_parameters()
        if n.startswith('fpl_head') and 'navigator' not in n
    ]
    backbone = list(model.backbone.parameters())
    assert nav and teacher

    def grads(loss, params):
        g = torch.autograd.grad(
            loss, params, retain_graph=True, allow_unused=True
        )
        return [0.0 if t is None else t.abs().sum().item() for t in g]

    rank = losses['loss_rank_s3'] + losses['loss_rank_s4']
    ce = sum(v for k, v in losses.items() if not k.startswith('loss_rank'))
    assert sum(grads(rank, nav)) > 0
    assert sum(grads(rank, backbone)) == 0
    assert sum(grads(rank, teacher)) == 0
    assert sum(grads(ce, nav)) == 0
    assert sum(grads(ce, backbone)) > 0
    assert sum(grads(losses['loss_teacher_s4'], teacher)) > 0
    # The crops are re-encoded by the shared backbone: the teacher loss
    # reaches it.
    assert sum(grads(losses['loss_teacher_s4'], backbone)) > 0


def test_mixup_soft_labels():
    cfg = scrim_cfg(R18)
    cfg['train_cfg'] = dict(augments=dict(type='Mixup', alpha=1.0))
    cfg['data_preprocessor'] = dict(num_classes=4)
    model = build(cfg)
    data = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 4,
        data_samples=samples([0, 1, 2, 3]),
    )
    data = model.data_preprocessor(data, True)
    assert 'gt_score' in data['data_samples'][0]
    losses = model(**data, mode='loss')
    assert set(losses) == LOSS_KEYS
    assert all(torch.isfinite(v) for v in losses.values())


def test_fusion_size_mismatch_is_refused():
    cfg = scrim_cfg(R18)
    cfg['head']['num_fpl_parts'] = 6
    with pytest.raises(ValueError, match=r'num_fpl_parts=6.*gives 8'):
        MODELS.build(cfg)


def test_cpl_only_classifier():
    cfg = scrim_cfg(R18)
    cfg.pop('fpl_head')
    cfg['head']['num_fpl_parts'] = 0
    model = build(cfg)
    losses = model(torch.randn(2, 3, 64, 64), samples([0, 1]), mode='loss')
    assert set(losses) == {
        'loss_fused',
        'loss_raw',
        'loss_cpl_s3',
        'loss_cpl_s4',
        'loss_contrast_s3',
        'loss_contrast_s4',
        'loss_diversity_s3',
        'loss_diversity_s4',
    }
    # The same modules in a plain mmpretrain ImageClassifier.
    plain = cfg.copy()
    plain['type'] = 'ImageClassifier'
    model = build(plain)
    assert type(model) is ImageClassifier
    out = model.predict(torch.randn(1, 3, 64, 64))
    assert out[0].pred_score.shape == (4,)


def test_overfit_tiny_batch():
    """30 steps on 8 images of 2 classes at 128 px halve the total loss."""
    torch.manual_seed(0)
    model = build(scrim_cfg(R18, num_classes=2))
    imgs = [torch.rand(3, 128, 128) * 255 for _ in range(8)]
    data = dict(inputs=imgs, data_samples=samples([0, 1] * 4))
    optim = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        clip_grad=dict(max_norm=5.0),
    )
    first = model.train_step(data, optim)['loss'].item()
    for _ in range(28):
        model.train_step(data, optim)
    last = model.train_step(data, optim)
    assert all(torch.isfinite(v) for v in last.values())
    assert last['loss'].item() < 0.5 * first
    assert last['loss_fused'].item() < 0.1
