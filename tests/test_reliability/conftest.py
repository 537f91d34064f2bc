# Copyright (c) scrim-mm contributors. All rights reserved.
"""Fixtures shared by the reliability tests."""

import os.path as osp

import pytest

from scrim_mm.datasets.demo import make_dataset

#: The demo config (ResNet-18 SCRIM, 4 CUB classes).
DEMO_CONFIG = osp.join('configs', 'scrim', 'scrim_r18_demo.py')


def data_options(root: str) -> list:
    """``--cfg-options`` pointing every loader of the demo at ``root``."""
    return [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]


@pytest.fixture(scope='session')
def demo_config(repo_root) -> str:
    """Absolute path of the demo config."""
    return osp.join(repo_root, DEMO_CONFIG)


@pytest.fixture(scope='session')
def tiny_cub(tmp_path_factory) -> str:
    """A 4-class demo CUB set, 4 train and 1 test image per class, 64 px."""
    return make_dataset(
        'cub',
        str(tmp_path_factory.mktemp('tiny_cub') / 'cub'),
        num_classes=4,
        train_per_class=4,
        test_per_class=1,
        img_size=64,
    )
