# Copyright (c) scrim-mm contributors. All rights reserved.
"""``tools/train.py`` trains the minimal SCRIM config on demo data.

The minimal full model is the class count and a backbone with two stage
outputs; everything else follows from the backbone::

    model = dict(type='SCRIMClassifier', num_classes=200,
                 backbone=dict(type='ResNet', depth=50, out_indices=(2, 3)))

Here it is a ResNet-18 with the 4 classes of a demo set written by
``tools/misc/make_demo_dataset.py`` (2 training and 1 test image per
class), on the demo config's data, schedule and runtime; the tools run as
subprocesses from a folder outside the repository. The demo's 96 px
inputs take 48 px crops (``--cfg-options``): the default 224 px ones are
for 448 px inputs, and the start-up check refuses crops over twice the
input.
"""

import json
import os
import os.path as osp

from mmengine.config import Config

from .test_train_test import run_tool

MINIMAL_MODEL = dict(
    type='SCRIMClassifier',
    num_classes=4,
    backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
)
LOSSES = {
    f'loss_{kind}_{stage}'
    for kind in ('cpl', 'contrast', 'diversity', 'teacher', 'rank')
    for stage in ('s3', 's4')
} | {'loss_fused', 'loss_raw'}


def test_train_tool_runs_the_minimal_config(tmp_path, repo_root):
    data = str(tmp_path / 'demo_cub')
    run_tool(
        repo_root,
        str(tmp_path),
        osp.join(repo_root, 'tools', 'misc', 'make_demo_dataset.py'),
        '--layout',
        'cub',
        '--train-per-class',
        '2',
        '--test-per-class',
        '1',
        '--out',
        data,
    )
    demo = osp.join(repo_root, 'configs', 'scrim', 'scrim_r18_demo.py')
    config = tmp_path / 'scrim_minimal.py'
    config.write_text(
        f'_base_ = [{demo!r}]\n'
        f'model = dict(_delete_=True, **{MINIMAL_MODEL!r})\n',
        encoding='utf-8',
    )
    work = tmp_path / 'work'
    run_tool(
        repo_root,
        str(tmp_path),
        osp.join(repo_root, 'tools', 'train.py'),
        str(config),
        '--work-dir',
        str(work),
        '--cfg-options',
        'model.fpl_head.crop_size=48',
        'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1',
        *(
            f'{loader}.dataset.data_root={data}'
            for loader in ('train_dataloader', 'val_dataloader')
        ),
    )

    dumped = Config.fromfile(str(work / 'scrim_minimal.py'))
    assert dumped.model == dict(MINIMAL_MODEL, fpl_head=dict(crop_size=48))
    assert (work / 'epoch_1.pth').is_file()
    (scalars,) = [
        osp.join(root, name)
        for root, _, files in os.walk(work)
        for name in files
        if name == 'scalars.json'
    ]
    with open(scalars, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    # 4 classes x 2 images: one P x K batch of 4 x 2.
    (step,) = [r for r in records if 'loss' in r]
    assert LOSSES <= set(step)
    (val,) = [r for r in records if 'accuracy/top1' in r]
    assert 0.0 <= val['accuracy/top1'] <= 100.0
