# Copyright (c) scrim-mm contributors. All rights reserved.
"""The dataset base configs, the sampler and SCRIM train together.

One training iteration and one validation pass through mmengine's Runner
for each benchmark layout, on demo data in that layout: the real dataset
base config (dataset class, pipelines, class-balanced sampler) with only
the data root, the class list and the image sizes made small, and the
ResNet-18 SCRIM model of the demo config.
"""

import math
import uuid
from collections import Counter

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from scrim_mm.datasets import SCRIMClassBalancedBatchSampler

from ._shared import (
    CONFIG_DIR,
    DEMO,
    LAYOUTS,
    SCRIM_CONFIG_DIR,
    SCRIM_LOSSES,
    shrink_pipeline,
)


def _config(layout: str, tmp_path, data_root: str, classes: list) -> Config:
    dataset_type, base = LAYOUTS[layout]
    base_path = (CONFIG_DIR / '_base_' / 'datasets' / base).as_posix()
    path = tmp_path / f'{layout}_runner.py'
    path.write_text(
        f'_base_ = [{base_path!r}, '
        "'mmpretrain::_base_/default_runtime.py']\n"
    )
    cfg = Config.fromfile(str(path))
    assert cfg.train_dataloader.dataset.type == dataset_type

    demo = Config.fromfile(str(SCRIM_CONFIG_DIR / 'scrim_r18_demo.py'))
    # The demo model as configured: its crops are half the 64 px input.
    cfg.model = demo.model
    for key in ('train_dataloader', 'val_dataloader'):
        loader = cfg[key]
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.data_root = data_root
        loader.dataset.classes = classes
        loader.dataset.pipeline = shrink_pipeline(loader.dataset.pipeline)
    cfg.test_dataloader = None
    cfg.test_cfg = None
    cfg.test_evaluator = None
    cfg.optim_wrapper = dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
        clip_grad=dict(max_norm=5.0),
    )
    cfg.param_scheduler = None
    cfg.train_cfg = dict(by_epoch=False, max_iters=1, val_interval=100)
    cfg.val_cfg = dict()
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=100, by_epoch=False, save_last=False
    )
    cfg.custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'{layout}_{uuid.uuid4().hex}'
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_dataset_config_trains(layout, tmp_path, demo_data, demo_classes):
    cfg = _config(layout, tmp_path, demo_data[layout], demo_classes(layout))
    runner = Runner.from_cfg(cfg)
    runner.train()

    for key in SCRIM_LOSSES:
        value = runner.message_hub.get_scalar(f'train/{key}').current()
        assert math.isfinite(value), key

    loader = runner.train_dataloader
    assert isinstance(loader.batch_sampler, SCRIMClassBalancedBatchSampler)
    assert (
        len(loader.dataset) == DEMO['num_classes'] * (DEMO['train_per_class'])
    )
    batch = next(iter(loader))
    assert [tuple(img.shape) for img in batch['inputs']] == [(3, 64, 64)] * 8
    labels = [int(s.gt_label) for s in batch['data_samples']]
    assert sorted(Counter(labels).values()) == [2, 2, 2, 2]

    metrics = runner.val()
    assert (
        len(runner.val_dataloader.dataset)
        == DEMO['num_classes'] * (DEMO['test_per_class'])
    )
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
