# Copyright (c) scrim-mm contributors. All rights reserved.
"""mmpretrain's own packaged ``tools/train.py`` and ``tools/test.py``.

Users often run the scripts shipped inside the installed mmpretrain package
(``mmpretrain/.mim/tools``, also what ``mim train mmpretrain`` runs)
instead of this repository's tools. Those scripts know nothing of SCRIM:
they set ``persistent_workers=True`` on every dataloader and load
checkpoints with plain mmengine. The demo config must run through them as
it is, with ``custom_imports`` bringing in the plugin (and its checkpoint
loader for torch's ``weights_only`` loading).
"""

import glob
import os
import os.path as osp
import subprocess
import sys

import mmpretrain
import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIM_TOOLS = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')
DEMO = osp.join(REPO, 'configs', 'scrim', 'scrim_r18_demo.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

pytestmark = pytest.mark.skipif(
    not osp.isfile(osp.join(MIM_TOOLS, 'train.py')),
    reason='this mmpretrain installation ships no tools/ (.mim)',
)


def _run(args, cwd):
    """Run a Python script as a user would, this repository importable."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f'{args[0]} failed ({proc.returncode}):\n'
        f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    )
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(
    'path', sorted(glob.glob(osp.join(REPO, 'configs', 'scrim', '*.py')))
)
def test_no_persistent_workers_without_workers(path):
    """What mmpretrain's train.py would refuse, for every SCRIM config."""
    cfg = Config.fromfile(path)
    for field in LOADERS:
        loader = cfg.get(field, None)
        if loader and loader.get('num_workers', 0) == 0:
            # mmpretrain's train.py: persistent_workers=True unless set.
            assert loader.get('persistent_workers', True) is False, (
                f'{osp.basename(path)}: {field}.num_workers=0 needs '
                'persistent_workers=False'
            )


def test_mmpretrain_train_and_test_run_the_demo(tmp_path):
    data = tmp_path / 'demo_cub'
    _run(
        [
            osp.join(REPO, 'tools', 'misc', 'make_demo_dataset.py'),
            '--layout',
            'cub',
            '--out',
            str(data),
            '--train-per-class',
            '4',
            '--test-per-class',
            '2',
            '--img-size',
            '64',
        ],
        tmp_path,
    )
    options = ['--cfg-options', f'data_root={data}'] + [
        f'{field}.dataset.data_root={data}' for field in LOADERS
    ]
    work = tmp_path / 'work'
    _run(
        [
            osp.join(MIM_TOOLS, 'train.py'),
            DEMO,
            '--work-dir',
            str(work),
            *options,
            'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1',
            'default_hooks.checkpoint.interval=1',
        ],
        tmp_path,
    )
    checkpoint = work / 'epoch_1.pth'
    assert checkpoint.is_file()
    # torch >= 2.6 loads with weights_only=True: the checkpoint holds
    # mmengine's HistoryBuffer and numpy objects, which the plugin's
    # checkpoint loader allows (the config imports scrim_mm).
    out = _run(
        [
            osp.join(MIM_TOOLS, 'test.py'),
            DEMO,
            str(checkpoint),
            '--work-dir',
            str(tmp_path / 'test_work'),
            *options,
        ],
        tmp_path,
    )
    assert 'accuracy/top1:' in out, out[-3000:]
