# Copyright (c) scrim-mm contributors. All rights reserved.
"""The navigators' learning rate: ``paramwise_cfg.navigator_lr_mult``.

``SCRIMOptimWrapperConstructor`` turns it (default 0.3) into the custom key
``'fpl_head.navigators'``, which wins over the R50 schedule's
``'fpl_head'`` (mmengine applies the longest matching key).
"""

import copy

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

from ..test_configs._shared import CONFIG_DIR

SCHEDULE = CONFIG_DIR / '_base_' / 'schedules' / 'scrim_sgd_100e.py'
R18 = dict(type='ResNet', depth=18, out_indices=(2, 3))


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    init_default_scope('mmpretrain')


@pytest.fixture(scope='module')
def scrim() -> nn.Module:
    init_default_scope('mmpretrain')
    return MODELS.build(
        dict(
            type='SCRIMClassifier',
            num_classes=4,
            backbone=R18,
            fpl_head=dict(crop_size=32, num_train_parts=2, num_test_parts=1),
        )
    )


@pytest.fixture(scope='module')
def recipe_optim() -> dict:
    """The R50 recipe's optimizer wrapper (SGD lr 0.01, x10 custom keys)."""
    return Config.fromfile(str(SCHEDULE)).optim_wrapper.to_dict()


def _lrs(model: nn.Module, optim_cfg: dict) -> dict:
    """Parameter name -> its learning rate in the built optimizer."""
    wrapper = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    lr_of = {
        id(p): group['lr']
        for group in wrapper.optimizer.param_groups
        for p in group['params']
    }
    return {n: lr_of[id(p)] for n, p in model.named_parameters()}


def _expected_mult(name: str, navigator_mult: float) -> float:
    if name.startswith('fpl_head.navigators.'):
        return navigator_mult
    if name.startswith('backbone.'):
        return 1.0
    assert name.startswith(('neck.', 'head.', 'fpl_head.teacher')), name
    return 10.0


@pytest.mark.parametrize('navigator_mult', [None, 1.0])
def test_recipe_rates_per_group(scrim, recipe_optim, navigator_mult):
    cfg = copy.deepcopy(recipe_optim)
    assert cfg['constructor'] == 'SCRIMOptimWrapperConstructor'
    assert 'navigator_lr_mult' not in cfg['paramwise_cfg']  # the default
    if navigator_mult is not None:
        cfg['paramwise_cfg']['navigator_lr_mult'] = navigator_mult
    base_lr = cfg['optimizer']['lr']
    assert base_lr == pytest.approx(0.01)
    lrs = _lrs(scrim, cfg)
    expected_nav = 0.3 if navigator_mult is None else navigator_mult
    kinds = set()
    for name, lr in lrs.items():
        mult = _expected_mult(name, expected_nav)
        assert lr == pytest.approx(mult * base_lr), name
        kinds.add(
            name.split('.')[0] + ('.nav' if 'navigators' in name else '')
        )
    # Every kind of parameter was seen: teachers are in fpl_head.
    assert kinds == {'backbone', 'neck', 'head', 'fpl_head', 'fpl_head.nav'}


def test_navigators_without_paramwise_cfg(scrim):
    # No custom key at all: the navigators alone learn at 0.3x.
    cfg = dict(
        constructor='SCRIMOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.1),
    )
    for name, lr in _lrs(scrim, cfg).items():
        nav = name.startswith('fpl_head.navigators.')
        assert lr == pytest.approx(0.03 if nav else 0.1), name


def test_plain_backbone_is_unaffected():
    model = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=18),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=4, in_channels=512),
        )
    )
    optimizer = dict(type='SGD', lr=0.1, momentum=0.9)
    ours = build_optim_wrapper(
        model,
        dict(constructor='SCRIMOptimWrapperConstructor', optimizer=optimizer),
    )
    theirs = build_optim_wrapper(model, dict(optimizer=optimizer))
    # mmengine's own result: one group of every parameter at the base lr.
    assert len(ours.optimizer.param_groups) == 1
    assert len(theirs.optimizer.param_groups) == 1
    group = ours.optimizer.param_groups[0]
    assert group['lr'] == 0.1
    assert [id(p) for p in group['params']] == [
        id(p) for p in model.parameters()
    ]


@pytest.mark.parametrize(
    'key',
    [
        'fpl_head.navigators',
        'fpl_head.navigators.0',
        'navigators.0.score_convs.0',
        # As long as 'fpl_head.navigators' and first in alphabetical order,
        # which mmengine tries first among keys of one length.
        'avigators.0.score_c',
    ],
)
def test_custom_key_on_the_navigators_is_refused(scrim, key):
    cfg = dict(
        constructor='SCRIMOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.1),
        paramwise_cfg=dict(custom_keys={key: dict(lr_mult=0.5)}),
    )
    with pytest.raises(ValueError) as info:
        build_optim_wrapper(scrim, cfg)
    assert str(info.value) == (
        f"paramwise_cfg.custom_keys[{key!r}]: would set the navigators' "
        'learning rate, which navigator_lr_mult sets; remove the key and '
        'set paramwise_cfg.navigator_lr_mult (now 0.3) instead'
    )


def test_shorter_or_unrelated_custom_keys_are_kept(scrim):
    # 'navigators' is shorter than 'fpl_head.navigators' (which wins);
    # the longer 'backbone.layer1.0.conv1' matches no navigator.
    cfg = dict(
        constructor='SCRIMOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.1),
        paramwise_cfg=dict(
            custom_keys={
                'navigators': dict(lr_mult=5.0),
                'backbone.layer1.0.conv1': dict(lr_mult=2.0),
            }
        ),
    )
    lrs = _lrs(scrim, cfg)
    assert lrs['backbone.layer1.0.conv1.weight'] == pytest.approx(0.2)
    navs = [lr for n, lr in lrs.items() if 'navigators' in n]
    assert navs and all(lr == pytest.approx(0.03) for lr in navs)


@pytest.mark.parametrize('bad', [-0.1, '0.3', True])
def test_bad_navigator_lr_mult(scrim, bad):
    cfg = dict(
        constructor='SCRIMOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.1),
        paramwise_cfg=dict(navigator_lr_mult=bad),
    )
    with pytest.raises(
        ValueError, match=r'^paramwise_cfg.navigator_lr_mult=.*non-negative'
    ):
        build_optim_wrapper(scrim, cfg)
