# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tests of the assembled SCRIM model (``SCRIMClassifier``)."""

import copy
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from scrim_mm.models.wiring import BackboneStage, probe_backbone

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
RECIPE = (
    Path(__file__).resolve().parents[2]
    / 'configs'
    / '_base_'
    / 'models'
    / 'scrim_r50.py'
)


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
    # The teachers are probes of the backbone's features: neither the crops
    # nor the image feature pass the loss back.
    assert sum(grads(losses['loss_teacher_s4'], backbone)) == 0
    # The metric loss is cut from the backbone (it trains OSME) ...
    assert sum(grads(losses['loss_contrast_s4'], backbone)) == 0
    # ... while the fused classification trains it.
    assert sum(grads(losses['loss_fused'], backbone)) > 0


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
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    msg = str(err.value)
    assert msg.startswith('model.head.num_fpl_parts=6: expected 8')
    assert 'model.fpl_head=None' in msg


def test_cpl_only_classifier():
    cfg = scrim_cfg(R18)
    cfg['fpl_head'] = None
    cfg['head']['num_fpl_parts'] = 0
    model = build(cfg)
    assert not model.with_fpl
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
    plain.pop('fpl_head')
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


# ---------------------------------------------------------------- wiring


def minimal_cfg(depth: int = 50, num_classes: int = 200, **kwargs) -> dict:
    """The minimal full SCRIM model of the README and the docstring."""
    cfg = dict(
        type='SCRIMClassifier',
        num_classes=num_classes,
        backbone=dict(type='ResNet', depth=depth, out_indices=(2, 3)),
    )
    cfg.update(kwargs)
    return cfg


def test_minimal_config_trains_and_predicts():
    """ResNet-18 in the minimal form: one training step, one prediction.

    Everything is at its default (crops of half the input, M = 4, K = 2);
    one 64 px image keeps the step at about 3 s on a CPU core.
    """
    torch.manual_seed(0)
    model = build(minimal_cfg(depth=18, num_classes=4))
    data = dict(
        inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)],
        data_samples=samples([3]),
    )
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(data, optim)
    assert LOSS_KEYS <= set(log_vars)
    for value in log_vars.values():
        assert math.isfinite(float(torch.as_tensor(value).detach()))
    model.eval()
    (pred,) = model.val_step(data)
    assert pred.pred_score.shape == (4,)
    # K = 2 regions for each of the 2 stages
    assert pred.pred_boxes.shape == (4, 4)
    assert pred.pred_box_stages.tolist() == [0] * 2 + [1] * 2


def test_minimal_resnet50_wiring_and_predict_on_meta():
    """The minimal ResNet-50 model: the derived numbers are the method's.

    The model is built for real (0.5 s), then moved to PyTorch's meta
    device, where a prediction at the recipes' 448 px computes shapes only.
    """
    model = MODELS.build(minimal_cfg())
    neck, fpl, head = model.neck, model.fpl_head, model.head
    assert (neck.in_channels, neck.stage_names) == ((1024, 2048), STAGES)
    assert fpl.in_channels == (1024, 2048)
    assert (fpl.feat_channels, fpl.stage_strides) == (2048, (16, 32))
    assert (fpl.num_classes, head.num_classes) == (200, 200)
    assert head.part_channels == (1024, 2048)
    assert (head.in_channels, head.fpl_channels) == (2048, 2048)
    assert (head.num_parts, head.num_fpl_parts) == (2, 4)
    assert head.contrastive_weights == (0.25, 0.5)
    assert head.diversity_weights == pytest.approx((0.3, 0.2))
    assert (fpl.num_train_parts, fpl.num_test_parts) == (4, 2)
    # global 2048 + 2 parts x (1024 + 2048) + 2 stages x 2 regions x 2048
    assert head.fused_channels == 2048 + 2 * 3072 + 4 * 2048 == 16384
    # mmpretrain's batch augments need the count in the data preprocessor.
    assert model.data_preprocessor.num_classes == 200
    # The model base of the ResNet-50 recipes spells out the same model.
    recipe = Config.fromfile(str(RECIPE))
    recipe.model.num_classes = 200
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        built = MODELS.build(recipe.model)
    assert {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }

    model = model.to('meta').eval()
    preds = model.predict(torch.zeros(2, 3, 448, 448, device='meta'))
    assert [p.pred_score.shape for p in preds] == [(200,)] * 2
    assert [p.pred_boxes.shape for p in preds] == [(4, 4)] * 2


@pytest.mark.parametrize(
    'override, message',
    [
        (
            dict(neck=dict(in_channels=(1024, 2048))),
            'model.neck.in_channels=(1024, 2048): expected (256, 512), from '
            'the channels of the stage maps of the backbone (ResNet, '
            'out_indices=(2, 3))',
        ),
        (
            dict(neck=dict(in_indices=(0, 5))),
            'model.neck.in_indices=(0, 5): the backbone gives 2 stage maps',
        ),
        (
            dict(fpl_head=dict(in_channels=(256, 256))),
            'model.fpl_head.in_channels=(256, 256): expected (256, 512)',
        ),
        (
            dict(fpl_head=dict(feat_channels=2048)),
            'model.fpl_head.feat_channels=2048: expected 512, from the last '
            'output of the backbone',
        ),
        (
            dict(fpl_head=dict(stage_strides=(8, 16))),
            'model.fpl_head.stage_strides=(8, 16): expected (16, 32)',
        ),
        (
            dict(head=dict(part_channels=(512, 512))),
            'model.head.part_channels=(512, 512): expected (256, 512)',
        ),
        (
            dict(head=dict(num_parts=3)),
            'model.head.num_parts=3: expected 2, from model.neck',
        ),
        (
            dict(head=dict(fpl_channels=256)),
            'model.head.fpl_channels=256: expected 512',
        ),
        (
            dict(head=dict(num_classes=5)),
            'model.head.num_classes=5: differs from model.num_classes=4',
        ),
        (
            dict(num_classes=None),
            'model.num_classes=None: the number of classes is not set',
        ),
        (
            dict(
                backbone=dict(type='ConvNeXt', arch='tiny', out_indices=(3,))
            ),
            'model.backbone=ConvNeXt: gives an output of shape (1, 768), '
            'not a (B, C, H, W) stage map',
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else '',
)
def test_wiring_errors_name_key_and_value(override, message):
    cfg = minimal_cfg(depth=18, num_classes=4)
    cfg.update(override)
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    assert message in str(err.value)
    assert '; ' in str(err.value).split(message)[-1]  # what to do


def test_given_values_are_honoured():
    """An explicit, consistent config builds the same model."""
    derived = build(
        minimal_cfg(depth=18, num_classes=4, neck=dict(embed_dims=32))
    )
    given = build(scrim_cfg(R18, train_parts=4, test_parts=2, crop_size=None))
    shapes = {k: v.shape for k, v in derived.state_dict().items()}
    assert shapes == {k: v.shape for k, v in given.state_dict().items()}
    # global 512 + 2 parts x (256 + 512) + 2 stages x 2 regions x 512
    assert shapes['head.fc.weight'] == (4, 512 + 2 * 768 + 4 * 512)
    # a teacher per stage
    assert shapes['fpl_head.teacher_fcs.1.weight'] == (4, 512)


def test_num_classes_from_any_one_part():
    for cfg in (
        minimal_cfg(depth=18, num_classes=None, head=dict(num_classes=3)),
        minimal_cfg(
            depth=18, num_classes=None, data_preprocessor=dict(num_classes=3)
        ),
    ):
        model = MODELS.build(cfg)
        assert model.head.num_classes == model.fpl_head.num_classes == 3
        assert model.data_preprocessor.num_classes == 3


def test_stages_follow_out_indices():
    """Three stages: names, loss keys and contrastive weights follow."""
    cfg = minimal_cfg(
        depth=18,
        num_classes=4,
        fpl_head=None,
        backbone=dict(type='ResNet', depth=18, out_indices=(1, 2, 3)),
    )
    model = build(cfg)
    assert model.neck.stage_names == ('s2', 's3', 's4')
    assert model.neck.in_channels == (128, 256, 512)
    assert model.head.contrastive_weights == (0.125, 0.25, 0.5)
    losses = model(torch.randn(2, 3, 64, 64), samples([0, 1]), mode='loss')
    assert {'loss_cpl_s2', 'loss_contrast_s2', 'loss_diversity_s2'} <= set(
        losses
    )
    # in_indices picks stages; the FPL follows the neck.
    cfg['neck'] = dict(in_indices=(0, 2))
    cfg['fpl_head'] = dict(crop_size=32)
    model = MODELS.build(cfg)
    assert model.neck.stage_names == ('s2', 's4')
    assert model.fpl_head.stage_strides == (8, 32)
    assert model.fpl_head.in_channels == (128, 512)


def test_backbone_without_whole_strides_needs_stage_strides(monkeypatch):
    """A backbone whose maps do not tile the dry-run input gives no stride
    to derive: the FPL head's strides must then be set, and the message
    says so."""
    from scrim_mm.models import wiring

    def probe(backbone):
        return [
            BackboneStage(s.name, s.channels, None)
            for s in probe_backbone(backbone)
        ]

    monkeypatch.setattr(wiring, 'probe_backbone', probe)
    cfg = scrim_cfg(R18)
    with pytest.raises(ValueError) as err:
        build(cfg)
    assert str(err.value).startswith(
        'model.fpl_head.stage_strides=None: the stage maps of the backbone '
        '(ResNet, out_indices=(2, 3)) have no whole stride on a 512x512 '
        'input; set model.fpl_head.stage_strides'
    )
    cfg['fpl_head']['stage_strides'] = (16, 32)
    assert build(cfg).fpl_head.stage_strides == (16, 32)


def test_teacher_image_feature_is_the_backbone_last_output(monkeypatch):
    """neck.in_indices leaving out the backbone's last output: the teachers
    learn on the whole image from the pooled last output, the
    feature the crops give, not from the neck's last stage (256 channels
    against teachers of 512 inputs: a crash)."""
    torch.manual_seed(0)
    cfg = minimal_cfg(
        depth=18,
        num_classes=3,
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
        neck=dict(in_indices=(1, 2), embed_dims=32),
    )
    model = build(cfg)
    assert model.neck.in_channels == (128, 256)
    assert model.fpl_head.feat_channels == 512
    seen = {}
    fpl_loss = model.fpl_head.loss

    def spy(part_feats, scores, labels, image_feats):
        seen['part'], seen['image'] = part_feats, image_feats
        return fpl_loss(part_feats, scores, labels, image_feats)

    monkeypatch.setattr(model.fpl_head, 'loss', spy)
    model.train()
    x = torch.randn(2, 3, 64, 64)
    losses = model(x, samples([0, 2]), mode='loss')
    teacher = {k: v for k, v in losses.items() if k.startswith('loss_teacher')}
    assert len(teacher) == 2
    assert all(torch.isfinite(v) for v in teacher.values())
    assert all(torch.isfinite(v) for v in losses.values())
    # The image feature: the pooled 512-channel last output of the backbone
    with torch.no_grad():
        last = model.backbone(x)[-1].mean(dim=(2, 3))
    assert seen['part'].shape == (2, 2, 4, 512)
    assert seen['image'].shape == (2, 512)
    torch.testing.assert_close(seen['image'], last, rtol=1e-4, atol=1e-5)


class _DataDependent(torch.nn.Module):
    """Two stage maps, with a data-dependent step meta tensors cannot take."""

    def __init__(self):
        super().__init__()
        self.conv3 = torch.nn.Conv2d(3, 8, 3, stride=16, padding=1)
        self.conv4 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)

    def forward(self, x):
        s3 = self.conv3(x) * (1 + 0 * float(x.sum()))
        return s3, self.conv4(s3)


def test_probe_backbone_leaves_the_backbone_as_it_was():
    backbone = MODELS.build(R18)
    backbone.train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    stages = probe_backbone(backbone)
    assert stages == [
        BackboneStage('s3', 256, 16),
        BackboneStage('s4', 512, 32),
    ]
    assert backbone.training
    for key, value in backbone.state_dict().items():
        assert value.device.type == 'cpu'
        torch.testing.assert_close(value, before[key])
    # A backbone that cannot run on meta runs for real on a small image;
    # without out_indices the stages are named as the last of four.
    stages = probe_backbone(_DataDependent())
    assert stages == [BackboneStage('s3', 8, 16), BackboneStage('s4', 16, 32)]
