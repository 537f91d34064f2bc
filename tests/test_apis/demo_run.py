# Copyright (c) scrim-mm contributors. All rights reserved.
"""One short real training run on tiny demo data, shared by the tests.

Inference, region pictures and log plots are checked on a checkpoint and a
log that ``tools/train.py`` really wrote (ResNet-18 SCRIM of
``configs/scrim/scrim_r18_demo.py``, one epoch of 2 iterations, one
validation). The run is made once per test session: every test module that
needs it calls :func:`demo_run` from a session-scoped fixture.
"""

import importlib.util
import os.path as osp
from pathlib import Path
from typing import Dict, Optional

from scrim_mm.datasets.demo import class_names, make_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / 'configs' / 'scrim' / 'scrim_r18_demo.py')
NUM_CLASSES = 4
TRAIN_PER_CLASS = 4
TEST_PER_CLASS = 1

_RUN: Optional[Dict] = None


def load_script(rel_path: str, name: str):
    """Import a script of ``tools/`` as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / rel_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_run(tmp_path_factory) -> Dict:
    """Train once per session; return where everything is.

    Args:
        tmp_path_factory: pytest's session-scoped factory.

    Returns:
        dict: ``config``, ``data_root``, ``classes``, ``work_dir``,
        ``checkpoint``, ``test_images`` (paths) and ``num_test``.
    """
    global _RUN
    if _RUN is not None:
        return _RUN
    train = load_script('tools/train.py', 'h6_train_tool')
    root = tmp_path_factory.mktemp('h6_demo')
    data_root = make_dataset(
        'cub',
        str(root / 'data'),
        num_classes=NUM_CLASSES,
        train_per_class=TRAIN_PER_CLASS,
        test_per_class=TEST_PER_CLASS,
        img_size=64,
        seed=1,
    )
    work_dir = str(root / 'work')
    train.main(
        [
            CONFIG,
            '--work-dir',
            work_dir,
            '--cfg-options',
            'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1',
            'default_hooks.logger.interval=1',
            f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
        ]
    )
    with open(osp.join(work_dir, 'last_checkpoint'), encoding='utf-8') as f:
        checkpoint = f.read().strip()
    from mmpretrain.datasets import CUB

    classes = class_names('cub', NUM_CLASSES)
    test_set = CUB(data_root=data_root, split='test', classes=classes)
    images = [
        test_set.get_data_info(i)['img_path'] for i in range(len(test_set))
    ]
    _RUN = dict(
        config=CONFIG,
        data_root=data_root,
        classes=classes,
        work_dir=work_dir,
        checkpoint=checkpoint,
        test_images=images,
        num_test=len(images),
    )
    return _RUN
