# Copyright (c) scrim-mm contributors. All rights reserved.
"""The ResNet-50 recipes: schedule, weights, batch, and the dataset check.

``python tools/train.py configs/scrim/scrim_r50_<set>.py`` must start
training as soon as the data set lies where the config says: without it,
the tool stops at once with a message naming the folder; with a data set
there (a demo one, in the real layout), the Runner builds and its training
loader gives 448 px class-balanced batches.
"""

import re
import uuid
from collections import Counter

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

from ._shared import (
    CONFIG_DIR,
    DEMO,
    LAYOUTS,
    RECIPES,
    SCRIM_CONFIG_DIR,
    load_script,
    mmpretrain_weights,
)

train_tool = load_script('tools/train.py', 'scrim_test_train_tool')

BATCH_CONFIGS = sorted(
    p for p in SCRIM_CONFIG_DIR.glob('*.py') if 'demo' not in p.stem
)


def _recipe(stem: str) -> Config:
    return Config.fromfile(str(SCRIM_CONFIG_DIR / f'{stem}.py'))


@pytest.mark.parametrize('path', BATCH_CONFIGS, ids=lambda p: p.stem)
def test_batch_scaling_matches_the_loader(path):
    """The learning-rate scaling assumes a whole number of GPUs of the
    loader's batch; a name in mmpretrain's ``<G>xb<N>`` form is that."""
    cfg = Config.fromfile(str(path))
    per_gpu = cfg.train_dataloader.batch_size
    total = cfg.auto_scale_lr.base_batch_size
    assert total % per_gpu == 0
    named = re.search(r'_(\d+)xb(\d+)_', path.stem)
    if named:
        assert (int(named[1]), int(named[2])) == (total // per_gpu, per_gpu)
    batch_sampler = cfg.train_dataloader.get('batch_sampler')
    if batch_sampler is not None:
        assert batch_sampler.type == 'SCRIMClassBalancedBatchSampler'
        # P = per_gpu // K classes of K images each.
        assert 'num_classes_per_batch' not in batch_sampler
        assert per_gpu % batch_sampler.num_samples_per_class == 0


@pytest.mark.parametrize('stem', sorted(RECIPES))
def test_recipe_states_only_what_differs(stem):
    """Each recipe is the shared base, a dataset base and num_classes."""
    layout, _, num_classes = RECIPES[stem]
    path = SCRIM_CONFIG_DIR / f'{stem}.py'
    assert len(path.read_text(encoding='utf-8').splitlines()) <= 15
    namespace = {}
    exec(path.read_text(encoding='utf-8'), namespace)
    names = {k for k in namespace if not k.startswith('__')}
    assert names == {'_base_', 'model'}
    assert namespace['_base_'] == [
        '../_base_/scrim_r50_recipe.py',
        f'../_base_/datasets/{LAYOUTS[layout][1]}',
    ]
    assert namespace['model'] == dict(num_classes=num_classes)


@pytest.mark.parametrize('stem', sorted(RECIPES))
def test_recipe_settings(stem):
    layout, data_root, num_classes = RECIPES[stem]
    cfg = _recipe(stem)
    model = cfg.model
    assert model.type == 'SCRIMClassifier'
    assert model.backbone.depth == 50
    assert tuple(model.backbone.out_indices) == (2, 3)
    # ImageNet-1k ResNet-50 of mmpretrain's own metafile.
    assert model.backbone.init_cfg == dict(
        type='Pretrained',
        checkpoint=mmpretrain_weights(
            'resnet/metafile.yml', 'resnet50_8xb32_in1k'
        ),
        prefix='backbone',
    )
    assert model.num_classes == num_classes
    assert cfg.data_preprocessor.num_classes == num_classes
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == data_root
    batch_sampler = cfg.train_dataloader.batch_sampler
    assert batch_sampler.type == 'SCRIMClassBalancedBatchSampler'

    # Pipelines: resize 600, random crop 448 + flip / centre crop 448.
    train_steps = [
        (s.type, s.get('scale'), s.get('crop_size'))
        for s in cfg.train_dataloader.dataset.pipeline
    ]
    assert ('Resize', 600, None) in train_steps
    assert ('RandomCrop', None, 448) in train_steps
    assert 'RandomFlip' in [s[0] for s in train_steps]
    test_steps = [
        (s.type, s.get('scale'), s.get('crop_size'))
        for s in cfg.test_dataloader.dataset.pipeline
    ]
    assert ('Resize', 600, None) in test_steps
    assert ('CenterCrop', None, 448) in test_steps

    # Schedule of the method document.
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.nesterov) == (
        'SGD',
        0.01,
        0.9,
        True,
    )
    assert opt.weight_decay == 5e-4
    assert cfg.optim_wrapper.clip_grad.max_norm > 0
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 5
    assert cosine.type == 'CosineAnnealingLR'
    assert cosine.end == cfg.train_cfg.max_epochs == 100


@pytest.mark.parametrize('stem', sorted(RECIPES))
def test_recipe_trains_as_the_runtime_base_says(stem):
    """The R50 recipes set the batch sampler (dataset base) and the
    clipping (schedule) themselves: both bases are siblings of a recipe,
    and mmengine refuses a key that two bases set. They equal the runtime
    base's, which the mixing configs take."""
    cfg = _recipe(stem)
    runtime = Config.fromfile(str(CONFIG_DIR / '_base_' / 'scrim_runtime.py'))
    assert cfg.train_dataloader.batch_sampler == runtime.scrim_batch_sampler
    expected = runtime.scrim_optim_wrapper.to_dict()
    expected['clip_grad'].pop('_delete_')
    optim = cfg.optim_wrapper
    assert optim.constructor == expected['constructor']
    assert optim.clip_grad == expected['clip_grad']


def test_new_layers_learn_ten_times_faster():
    """paramwise_cfg gives every SCRIM layer 10x the backbone's lr, but the
    navigators 0.3x (navigator_lr_mult)."""
    cfg = _recipe('scrim_r50_cub')
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            name = names[id(param)]
            if name.startswith('fpl_head.navigators.'):
                name = 'navigators'
            lrs.setdefault(name.split('.')[0], set()).add(group['lr'])
    rates = {module: sorted(found) for module, found in lrs.items()}
    assert rates['backbone'] == pytest.approx([0.01])
    assert rates['navigators'] == pytest.approx([0.003])
    for module in ('neck', 'fpl_head', 'head'):
        assert rates[module] == pytest.approx([0.1]), module


@pytest.mark.parametrize('stem', sorted(RECIPES))
def test_recipe_starts_once_data_is_in_place(
    stem, tmp_path, monkeypatch, make_demo
):
    layout, data_root, _ = RECIPES[stem]
    config = str(SCRIM_CONFIG_DIR / f'{stem}.py')
    monkeypatch.chdir(tmp_path)
    # No data set: tools/train.py stops before building anything.
    expected = re.escape(f'train_dataloader.dataset.data_root={data_root!r}')
    with pytest.raises(FileNotFoundError, match=expected):
        train_tool.main([config, '--work-dir', str(tmp_path / 'work')])

    # A (demo) data set in the real layout at the config's path: the
    # config as it is (without the download of the ImageNet weights)
    # passes the checks and builds a Runner whose loader gives 448 px
    # batches of 4 classes x 2 images.
    make_demo(layout, data_root, **DEMO)
    cfg = train_tool.merge_args(
        Config.fromfile(config),
        train_tool.parse_args(
            [
                config,
                '--work-dir',
                str(tmp_path / 'work'),
                '--cfg-options',
                'model.backbone.init_cfg=None',
                'train_dataloader.num_workers=0',
                f'experiment_name={stem}_{uuid.uuid4().hex}',
            ]
        ),
    )
    train_tool.check_config(cfg, config)
    runner = Runner.from_cfg(cfg)
    assert type(runner.model).__name__ == 'SCRIMClassifier'
    loader = runner.build_dataloader(cfg.train_dataloader)
    data = next(iter(loader))
    assert [tuple(img.shape) for img in data['inputs']] == [(3, 448, 448)] * 8
    labels = [int(s.gt_label) for s in data['data_samples']]
    assert sorted(Counter(labels).values()) == [2, 2, 2, 2]
