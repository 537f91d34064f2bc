# Copyright (c) scrim-mm contributors. All rights reserved.
"""Any batch size that ``num_samples_per_class`` divides trains.

The class-balanced batch sampler takes its classes per batch from the
dataloader's ``batch_size`` (``P = batch_size // K``), so ``--cfg-options
train_dataloader.batch_size=4`` trains the demo config (2 classes x 2
images per batch) and a batch size that ``K = 2`` does not divide stops at
start-up with one line naming both numbers. ``tools/train.py`` runs
in-process on a 4-class demo set of 4 training images per class, 64 px.
"""

import json
import math
import os.path as osp
import uuid

import pytest

import tools.train as train_tool
from scrim_mm.datasets.demo import make_dataset

CONFIG = osp.join('configs', 'scrim', 'scrim_r18_demo.py')


@pytest.fixture(scope='module')
def demo_cub(tmp_path_factory) -> str:
    return make_dataset(
        'cub',
        str(tmp_path_factory.mktemp('batch_size') / 'cub'),
        num_classes=4,
        train_per_class=4,
        test_per_class=1,
        img_size=64,
    )


def _train(repo_root: str, work_dir, data_root: str, *options) -> None:
    train_tool.main(
        [
            osp.join(repo_root, CONFIG),
            '--work-dir',
            str(work_dir),
            '--no-validate',
            '--cfg-options',
            f'train_dataloader.dataset.data_root={data_root}',
            'train_cfg.max_epochs=1',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=2',
            f'experiment_name=batch_size_{uuid.uuid4().hex}',
            *options,
        ]
    )


def test_batch_size_four_trains(repo_root, demo_cub, tmp_path):
    work = tmp_path / 'work'
    _train(repo_root, work, demo_cub, 'train_dataloader.batch_size=4')
    (path,) = work.glob('*/vis_data/scalars.json')
    with open(path, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    train = [r for r in records if 'loss' in r]
    # 16 images in chunks of K = 2: 8 chunks, 2 of each class, P = 2
    # classes per batch: 4 iterations (the demo's batch of 8 gives 2).
    assert [r['iter'] for r in train] == [1, 2, 3, 4]
    for record in train:
        assert math.isfinite(record['loss'])
        assert record['loss_contrast_s3'] >= 0.0


@pytest.mark.parametrize(
    'batch_size, examples', [(5, '4 or 6'), (1, '2 or 4')]
)
def test_batch_size_not_a_multiple_of_k_stops_in_one_line(
    repo_root, demo_cub, tmp_path, batch_size, examples
):
    with pytest.raises(ValueError) as info:
        _train(
            repo_root,
            tmp_path / 'work',
            demo_cub,
            f'train_dataloader.batch_size={batch_size}',
        )
    assert str(info.value) == (
        f'train_dataloader.batch_size={batch_size}: not a multiple of '
        'batch_sampler.num_samples_per_class=2; use a batch size that 2 '
        f'divides (e.g. {examples})'
    )
    # Stopped by the start-up check: no training step ran.
    assert not list((tmp_path / 'work').glob('*/vis_data/scalars.json'))


def test_num_classes_per_batch_is_refused(repo_root, demo_cub, tmp_path):
    with pytest.raises(ValueError) as info:
        _train(
            repo_root,
            tmp_path / 'work',
            demo_cub,
            'train_dataloader.batch_sampler.num_classes_per_batch=4',
        )
    assert str(info.value).startswith(
        'train_dataloader.batch_sampler.num_classes_per_batch=4: no longer '
        'an argument'
    )
