# Copyright (c) scrim-mm contributors. All rights reserved.
"""Mixed precision and the memory options of ``SCRIMClassifier``."""

import copy

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import scrim_mm.models.heads.fpl_head as fpl_head_module
import scrim_mm.models.ops.nms as nms_module
from scrim_mm.engine.optim_wrappers.cpu_amp_optim_wrapper import (
    SCRIMCPUAmpOptimWrapper,
)
from scrim_mm.utils import apply_amp

LOSS_KEYS = {f'loss_{kind}' for kind in ('fused', 'raw')} | {
    f'loss_{kind}_{stage}'
    for kind in ('cpl', 'contrast', 'diversity', 'teacher', 'rank')
    for stage in ('s3', 's4')
}
NUM_CLASSES = 4
SIZE = 64


def model_cfg(**kwargs) -> dict:
    """A small SCRIM (ResNet-18, 64 px inputs, 32 px crops)."""
    channels = (256, 512)
    cfg = dict(
        type='SCRIMClassifier',
        data_preprocessor=dict(
            num_classes=NUM_CLASSES,
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
        ),
        backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
        neck=dict(type='CPLNeck', in_channels=channels, embed_dims=32),
        fpl_head=dict(
            type='FPLHead',
            num_classes=NUM_CLASSES,
            in_channels=channels,
            feat_channels=512,
            num_train_parts=3,
            num_test_parts=2,
            crop_size=32,
        ),
        head=dict(
            type='SCRIMHead',
            num_classes=NUM_CLASSES,
            in_channels=512,
            part_channels=channels,
            fpl_channels=512,
            num_fpl_parts=4,
        ),
    )
    cfg.update(kwargs)
    return cfg


def build(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(**kwargs))
    model.init_weights()
    return model


def batch(num_imgs: int = 4, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 256, (num_imgs, 3, SIZE, SIZE), generator=gen)
    labels = torch.arange(num_imgs) // 2
    samples = [DataSample().set_gt_label(int(i)) for i in labels]
    return dict(inputs=inputs.float(), data_samples=samples)


def test_cpu_amp_train_step_finite_and_fp32_selection(monkeypatch):
    """One bf16 step as ``tools/train.py --amp`` runs it on the CPU."""
    init_default_scope('mmpretrain')
    model = build()
    cfg = Config(
        dict(
            optim_wrapper=dict(
                optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
                clip_grad=dict(max_norm=5.0),
            )
        )
    )
    apply_amp(cfg, cuda=False)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrapper, SCRIMCPUAmpOptimWrapper)
    assert wrapper.cast_dtype == torch.bfloat16

    seen = dict(nms=[], iou=[], rank_in=[], rank_out=[], conv=[])
    nms = fpl_head_module.batched_hard_nms
    iou = nms_module._iou_one_to_many

    def spy_nms(boxes, scores, *args):
        seen['nms'].append(boxes.dtype)
        return nms(boxes, scores, *args)

    def spy_iou(box, boxes):
        out = iou(box, boxes)
        seen['iou'].append(out.dtype)
        return out

    monkeypatch.setattr(fpl_head_module, 'batched_hard_nms', spy_nms)
    monkeypatch.setattr(nms_module, '_iou_one_to_many', spy_iou)

    def rank_hook(module, args, out):
        seen['rank_in'].extend(a.dtype for a in args)
        seen['rank_out'].append(out.dtype)

    def conv_hook(module, args, out):
        seen['conv'].append(out.dtype)

    model.fpl_head.loss_rank.register_forward_hook(rank_hook)
    model.backbone.conv1.register_forward_hook(conv_hook)
    # What train_step logs is the detached loss dict; capture the raw one.
    losses = {}
    loss_fn = model.loss

    def spy_loss(*args, **kwargs):
        out = loss_fn(*args, **kwargs)
        losses.update(out)
        return out

    monkeypatch.setattr(model, 'loss', spy_loss)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    log_vars = model.train_step(batch(), wrapper)

    assert set(losses) == LOSS_KEYS
    for key, value in losses.items():
        assert torch.isfinite(value).all(), key
    assert torch.isfinite(log_vars['loss'])
    # Autocast was on: the backbone convolutions (full image and crops)
    # ran in bf16 ...
    assert seen['conv'] == [torch.bfloat16] * 2
    # ... but NMS (both stages) and the ranking loss computed in fp32.
    assert seen['nms'] == [torch.float32] * 2
    assert seen['iou'] and all(d == torch.float32 for d in seen['iou'])
    assert seen['rank_in'] == [torch.float32] * 4
    assert seen['rank_out'] == [torch.float32] * 2
    for key in ('loss_rank_s3', 'loss_rank_s4'):
        assert losses[key].dtype == torch.float32
    # The step updated the weights and kept them finite.
    changed = [
        not torch.equal(p0, p.detach())
        for p0, p in zip(before, model.parameters())
    ]
    assert any(changed)
    for p in model.parameters():
        assert torch.isfinite(p).all()


def _clone_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    dst.load_state_dict(copy.deepcopy(src.state_dict()))


def test_channels_last_matches_contiguous():
    """The default (channels-last) gives the outputs of the switch-off."""
    plain = build(channels_last=False)
    fast = build()
    _clone_weights(plain, fast)
    conv = fast.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not plain.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )
    data = batch()
    plain.eval()
    fast.eval()
    with torch.no_grad():
        ref = plain.test_step(copy.deepcopy(data))
        out = fast.test_step(copy.deepcopy(data))
    for a, b in zip(ref, out):
        torch.testing.assert_close(
            a.pred_score, b.pred_score, rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(a.pred_boxes, b.pred_boxes)
    feats = fast.extract_feat(
        fast.data_preprocessor(copy.deepcopy(data))['inputs'],
        stage='backbone',
    )
    assert feats[-1].is_contiguous(memory_format=torch.channels_last)
    # Training: same losses and gradients. The FPL selection explores
    # with random noise (explore=0.5 by default): the same seed for both
    # models draws the same noise.
    grads = []
    for model in (plain, fast):
        model.train()
        torch.manual_seed(1)
        inputs = model.data_preprocessor(copy.deepcopy(data), True)
        losses = model.loss(inputs['inputs'], inputs['data_samples'])
        sum(losses.values()).backward()
        grads.append(
            (losses, {n: p.grad for n, p in model.named_parameters()})
        )
    (loss_a, grad_a), (loss_b, grad_b) = grads
    assert set(loss_a) == LOSS_KEYS
    for key in loss_a:
        torch.testing.assert_close(
            loss_a[key], loss_b[key], rtol=1e-4, atol=1e-5
        )
    for name, grad in grad_a.items():
        if grad is None:
            assert grad_b[name] is None, name
        else:
            torch.testing.assert_close(
                grad, grad_b[name], rtol=1e-3, atol=1e-5
            )


def test_channels_last_on_by_default_and_switched_off():
    model = build()
    assert model.channels_last is True
    assert model.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )
    model = build(channels_last=False)
    assert model.channels_last is False
    assert not model.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )
