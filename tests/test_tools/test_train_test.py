# Copyright (c) scrim-mm contributors. All rights reserved.
"""End to end: tools/train.py, tools/test.py and --resume as a user runs them.

The tools run as subprocesses from a folder outside the repository, as a
user would call them from a clone (``python path/to/tools/train.py``).
"""

import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from scrim_mm.datasets.demo import make_dataset

CONFIG = osp.join('configs', 'scrim', 'scrim_r18_demo.py')


def run_tool(repo_root, cwd, *args, check=True):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    # The tools must find scrim_mm by themselves (no PYTHONPATH help).
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{args} failed ({proc.returncode}):\n'
            f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        )
    return proc


def data_options(root: str):
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts.append(f'{loader}.dataset.data_root={root}')
    return opts


@pytest.fixture(scope='module')
def trained(tmp_path_factory, repo_root):
    """Train the demo config for one short epoch; return paths."""
    tmp = tmp_path_factory.mktemp('e2e')
    data = make_dataset(
        'cub',
        str(tmp / 'demo_cub'),
        num_classes=4,
        train_per_class=4,
        test_per_class=2,
        img_size=64,
    )
    work = str(tmp / 'work')
    config = osp.join(repo_root, CONFIG)
    run_tool(
        repo_root,
        str(tmp),
        osp.join(repo_root, 'tools', 'train.py'),
        config,
        '--work-dir',
        work,
        '--cfg-options',
        'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        *data_options(data),
    )
    return dict(tmp=tmp, data=data, work=work, config=config)


def test_train_writes_checkpoint_and_logs_every_loss(trained):
    ckpt = osp.join(trained['work'], 'epoch_1.pth')
    assert osp.isfile(ckpt)
    with open(osp.join(trained['work'], 'last_checkpoint')) as f:
        assert f.read().strip() == ckpt
    logs = [
        json.loads(line)
        for root, _, files in os.walk(trained['work'])
        for name in files
        if name == 'scalars.json'
        for line in open(osp.join(root, name))
    ]
    train_logs = [entry for entry in logs if 'loss' in entry]
    assert train_logs, 'no training log entries'
    for key in (
        'loss_fused',
        'loss_raw',
        'loss_cpl_s3',
        'loss_contrast_s4',
        'loss_teacher_s3',
        'loss_rank_s4',
    ):
        assert key in train_logs[-1]
    assert any('accuracy/top1' in entry for entry in logs)


def test_test_tool_reports_accuracy_and_dumps(trained, repo_root):
    ckpt = osp.join(trained['work'], 'epoch_1.pth')
    out = str(trained['tmp'] / 'preds.pkl')
    proc = run_tool(
        repo_root,
        str(trained['tmp']),
        osp.join(repo_root, 'tools', 'test.py'),
        trained['config'],
        ckpt,
        '--work-dir',
        str(trained['tmp'] / 'test_work'),
        '--out',
        out,
        '--cfg-options',
        *data_options(trained['data']),
    )
    match = re.search(
        r'Test metrics of .*epoch_1.pth: accuracy/top1: ' r'([0-9.]+)',
        proc.stdout,
    )
    assert match, proc.stdout[-2000:]
    assert 0.0 <= float(match.group(1)) <= 100.0
    import mmengine

    preds = mmengine.load(out)
    assert len(preds) == 8  # 4 classes x 2 test images
    assert preds[0]['pred_score'].shape == (4,)


def test_resume_continues_from_checkpoint(trained, repo_root, tmp_path):
    # Copy the first run's work dir so the module fixture stays intact.
    import shutil

    work = str(tmp_path / 'work')
    shutil.copytree(trained['work'], work)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'epoch_1.pth'))
    proc = run_tool(
        repo_root,
        str(tmp_path),
        osp.join(repo_root, 'tools', 'train.py'),
        trained['config'],
        '--work-dir',
        work,
        '--resume',
        '--cfg-options',
        'train_cfg.max_epochs=2',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=1',
        *data_options(trained['data']),
    )
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [1]' not in log  # epoch 1 is not trained again
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    ckpt = torch.load(
        osp.join(work, 'epoch_2.pth'), map_location='cpu', weights_only=False
    )
    assert ckpt['meta']['epoch'] == 2


def test_test_tool_refuses_missing_dataset(trained, repo_root, tmp_path):
    ckpt = osp.join(trained['work'], 'epoch_1.pth')
    missing = str(tmp_path / 'no_such_dataset')
    proc = run_tool(
        repo_root,
        str(tmp_path),
        osp.join(repo_root, 'tools', 'test.py'),
        trained['config'],
        ckpt,
        '--cfg-options',
        f'test_dataloader.dataset.data_root={missing}',
        check=False,
    )
    assert proc.returncode != 0
    assert 'no_such_dataset' in proc.stderr
    assert 'image_class_labels.txt' in proc.stderr  # the expected layout


def test_mmengine_loads_runner_checkpoint_but_plain_torch_load_refuses(
    trained,
):
    """The allow-list applies to mmengine's loaders only."""
    from mmengine.runner.checkpoint import _load_checkpoint

    import scrim_mm  # noqa: F401

    ckpt = osp.join(trained['work'], 'epoch_1.pth')
    loaded = _load_checkpoint(ckpt, map_location='cpu')
    assert {'state_dict', 'message_hub', 'meta'} <= set(loaded)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(ckpt, map_location='cpu')
