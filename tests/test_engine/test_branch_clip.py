# Copyright (c) scrim-mm contributors. All rights reserved.
"""Per-branch gradient clipping (``SCRIMOptimWrapperConstructor``)."""

import copy

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from scrim_mm.engine import BranchGradClipper


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    init_default_scope('mmpretrain')


R18 = dict(type='ResNet', depth=18, out_indices=(2, 3))


def _scrim(rank_weight: float = 1.0) -> nn.Module:
    channels = (256, 512)
    cfg = dict(
        type='SCRIMClassifier',
        backbone=R18,
        neck=dict(type='CPLNeck', in_channels=channels, embed_dims=32),
        fpl_head=dict(
            type='FPLHead',
            num_classes=4,
            in_channels=channels,
            feat_channels=512,
            num_train_parts=3,
            num_test_parts=2,
            crop_size=32,
            rank_loss=dict(type='RegionRankingLoss', loss_weight=rank_weight),
        ),
        head=dict(
            type='SCRIMHead',
            num_classes=4,
            in_channels=512,
            part_channels=channels,
            fpl_channels=512,
            num_fpl_parts=4,
        ),
    )
    return MODELS.build(cfg)


def _optim_cfg(**kwargs) -> dict:
    cfg = dict(
        constructor='SCRIMOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
        clip_grad=dict(max_norm=1.0),
    )
    cfg.update(kwargs)
    return cfg


def _batch() -> dict:
    g = torch.Generator().manual_seed(0)
    imgs = [torch.rand(3, 64, 64, generator=g) * 255 for _ in range(4)]
    labels = [0, 0, 1, 1]
    return dict(
        inputs=imgs,
        data_samples=[DataSample().set_gt_label(i) for i in labels],
    )


def _step(model: nn.Module, optim_cfg: dict) -> dict:
    MessageHub.get_instance('test_branch_clip')
    wrapper = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    model.train()
    model.train_step(_batch(), wrapper)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_ranking_weight_does_not_change_backbone_update():
    """x100 on the ranking loss gives the same backbone step."""
    torch.manual_seed(0)
    base = _scrim(1.0)
    start = copy.deepcopy(base.state_dict())
    heavy = _scrim(100.0)
    heavy.load_state_dict(start)

    # The same exploration noise in both steps (FPLHead(explore)).
    torch.manual_seed(1)
    after_base = _step(base, _optim_cfg())
    torch.manual_seed(1)
    after_heavy = _step(heavy, _optim_cfg())
    moved = 0
    for name, value in after_base.items():
        if name.startswith('fpl_head.navigators'):
            continue
        torch.testing.assert_close(
            after_heavy[name], value, rtol=1e-5, atol=1e-6, msg=name
        )
        moved += int(not torch.equal(value, start[name]))
    assert moved > 50  # the backbone and heads did learn in this step
    # The navigators learned too (clipped on their own).
    nav = [n for n in after_base if n.startswith('fpl_head.navigators')]
    assert nav and any(not torch.equal(after_heavy[n], start[n]) for n in nav)


def test_global_clip_couples_branches():
    """Without branches (mmengine's global clip) the weight leaks through."""
    torch.manual_seed(0)
    base = _scrim(1.0)
    heavy = _scrim(100.0)
    heavy.load_state_dict(base.state_dict())
    cfg = _optim_cfg(paramwise_cfg=dict(clip_branches=dict()))
    after_base = _step(base, cfg)
    after_heavy = _step(heavy, cfg)
    name = 'backbone.conv1.weight'
    assert not torch.allclose(after_base[name], after_heavy[name])


def test_constructor_installs_clipper_and_logs_norms():
    torch.manual_seed(0)
    MessageHub.get_instance('test_branch_clip_log')
    model = _scrim(1.0)
    wrapper = build_optim_wrapper(model, _optim_cfg())
    assert isinstance(wrapper.clip_func, BranchGradClipper)
    nav_ids = {id(p) for p in model.fpl_head.navigators.parameters()}
    for p in model.parameters():
        expected = 'navigator' if id(p) in nav_ids else 'main'
        assert wrapper.clip_func.branch_of(p) == expected
    model.train_step(_batch(), wrapper)
    hub = wrapper.message_hub
    assert hub.get_scalar('train/grad_norm_navigator').current() > 0
    assert hub.get_scalar('train/grad_norm').current() > 0


def test_each_branch_is_clipped_to_max_norm():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    for p in (*a.parameters(), *b.parameters()):
        p.grad = torch.full_like(p, 10.0)
    clipper = BranchGradClipper(
        torch.nn.utils.clip_grad_norm_, dict(nav=list(b.parameters()))
    )
    MessageHub.get_instance('test_branch_clip_unit')
    norm = clipper([*a.parameters(), *b.parameters()], max_norm=1.0)
    assert norm == pytest.approx(10.0 * (12**0.5))  # a's own norm
    for module in (a, b):
        total = torch.cat([p.grad.flatten() for p in module.parameters()])
        assert total.norm().item() == pytest.approx(1.0, rel=1e-5)


def test_bad_branches_named_in_error():
    with pytest.raises(ValueError, match='clip_branches.nav'):
        build_optim_wrapper(
            _scrim(),
            _optim_cfg(paramwise_cfg=dict(clip_branches=dict(nav=''))),
        )
    with pytest.raises(ValueError, match='default_branch'):
        BranchGradClipper(lambda p: None, dict(main=[]))


def test_paramwise_cfg_still_applies():
    model = _scrim()
    cfg = _optim_cfg(
        paramwise_cfg=dict(custom_keys={'fpl_head': dict(lr_mult=10.0)})
    )
    wrapper = build_optim_wrapper(model, cfg)
    lrs = {id(g['params'][0]): g['lr'] for g in wrapper.optimizer.param_groups}
    nav = next(model.fpl_head.navigators.parameters())
    teacher = next(model.fpl_head.teacher_fcs.parameters())
    assert lrs[id(teacher)] == pytest.approx(1.0)
    # navigator_lr_mult (0.3) wins over the shorter key 'fpl_head'.
    assert lrs[id(nav)] == pytest.approx(0.03)
    assert lrs[id(model.backbone.conv1.weight)] == pytest.approx(0.1)
    assert isinstance(wrapper.clip_func, BranchGradClipper)


def test_delete_key_left_in_clip_grad_is_dropped():
    # configs/_base_/scrim_runtime.py sets clip_grad=dict(_delete_=True,
    # ...); mmengine's merge keeps the key where the config had no
    # clip_grad. The clip function must not receive it.
    model = _scrim()
    cfg = _optim_cfg(clip_grad=dict(_delete_=True, max_norm=1.0))
    wrapper = build_optim_wrapper(model, cfg)
    assert wrapper.clip_grad_kwargs == dict(max_norm=1.0)
    assert isinstance(wrapper.clip_func, BranchGradClipper)
    model.train_step(_batch(), wrapper)
