# Copyright (c) scrim-mm contributors. All rights reserved.
"""The configs that mix SCRIM into mmpretrain's configs train.

Each runs through ``tools/train.py`` (its ``main``) on demo CUB data for one
epoch (two iterations) and a validation, with ``--cfg-options`` only:

- cpl_resnet50_8xb8_cub: its real model type (ImageClassifier + CPLNeck +
  CPL-only SCRIMHead) with a ResNet-18 instead of the ResNet-50;
- cpl_swin-large_8xb8_cub-384px: the same Swin model, AdamW schedule and
  parameter-wise settings with the Swin-T size instead of Swin-L;
- scrim_convnext-tiny_cub: the full SCRIMClassifier on the real ConvNeXt-T
  with fewer and smaller crops.
"""

import json
import math
import uuid

import pytest
from mmengine.config import Config

from ._shared import (
    CPL_ONLY_LOSSES,
    SCRIM_CONFIG_DIR,
    SCRIM_LOSSES,
    load_script,
)

train_tool = load_script('tools/train.py', 'scrim_test_train_tool_mixing')

# config stem -> (model overrides, expected loss keys, checkpoint saved)
CASES = {
    'cpl_resnet50_8xb8_cub': (
        [
            'model.backbone.depth=18',
            'model.neck.in_channels=[256,512]',
            'model.neck.embed_dims=64',
            'model.head.in_channels=512',
            'model.head.part_channels=[256,512]',
        ],
        CPL_ONLY_LOSSES,
        True,
    ),
    'cpl_swin-large_8xb8_cub-384px': (
        [
            'model.backbone.arch=tiny',
            'model.backbone.pad_small_map=True',
            'model.neck.in_channels=[384,768]',
            'model.neck.embed_dims=64',
            'model.head.in_channels=768',
            'model.head.part_channels=[384,768]',
        ],
        CPL_ONLY_LOSSES,
        False,
    ),
    'scrim_convnext-tiny_cub': (
        [
            'model.fpl_head.crop_size=32',
            'model.fpl_head.num_train_parts=2',
            'model.fpl_head.num_test_parts=1',
            'model.head.num_fpl_parts=2',
        ],
        SCRIM_LOSSES,
        False,
    ),
}


def _data_options(cfg: Config, data_root: str, classes: list) -> list:
    """Options that point the CUB loaders at small demo data."""
    names = '[' + ','.join(classes) + ']'
    options = []
    for loader in ('train_dataloader', 'val_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        # The option indices below address these two steps.
        assert pipeline[1].type == 'Resize'
        assert pipeline[2].type in ('RandomCrop', 'CenterCrop')
        options += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.classes={names}',
            f'{loader}.dataset.pipeline.1.scale=80',
            f'{loader}.dataset.pipeline.2.crop_size=64',
            f'{loader}.num_workers=0',
        ]
    return options


def _read_scalars(work_dir) -> list:
    (path,) = work_dir.glob('*/vis_data/scalars.json')
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize('stem', sorted(CASES))
def test_mixing_config_trains(stem, tmp_path, demo_data, demo_classes):
    overrides, loss_keys, keep_checkpoint = CASES[stem]
    config = str(SCRIM_CONFIG_DIR / f'{stem}.py')
    cfg = Config.fromfile(config)
    num_classes = len(demo_classes('cub'))
    work_dir = tmp_path / 'work'
    options = _data_options(cfg, demo_data['cub'], demo_classes('cub'))
    options += overrides + [
        'model.backbone.init_cfg=None',
        f'model.head.num_classes={num_classes}',
        f'data_preprocessor.num_classes={num_classes}',
        'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1',
        f'experiment_name={stem}_{uuid.uuid4().hex}',
        'randomness.seed=0',
    ]
    if cfg.model.get('fpl_head'):
        options.append(f'model.fpl_head.num_classes={num_classes}')
    if not keep_checkpoint:
        options += [
            'default_hooks.checkpoint.interval=2',
            'default_hooks.checkpoint.save_last=False',
        ]
    train_tool.main(
        [config, '--work-dir', str(work_dir), '--cfg-options', *options]
    )

    records = _read_scalars(work_dir)
    train = [r for r in records if 'loss' in r]
    # 16 training images, batches of 8: two iterations, each logged.
    assert [r['iter'] for r in train] == [1, 2]
    for record in train:
        assert loss_keys <= set(record)
        for key in loss_keys:
            assert math.isfinite(record[key]), key
    (val,) = [r for r in records if 'accuracy/top1' in r]
    assert 0.0 <= val['accuracy/top1'] <= 100.0
    assert (work_dir / 'epoch_1.pth').exists() == keep_checkpoint

    dumped = Config.fromfile(str(work_dir / f'{stem}.py'))
    assert dumped.model.type == cfg.model.type
    assert dumped.model.neck.type == 'CPLNeck'
    assert dumped.model.head.type == 'SCRIMHead'
