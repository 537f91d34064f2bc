# Copyright (c) scrim-mm contributors. All rights reserved.
"""Bad input is refused at start-up with a message naming what is wrong.

The tools run in-process (``tools/train.py`` and ``tools/test.py`` have
``main(argv)``); every error here is raised before a training step runs.
"""

import os
import os.path as osp
import re
import shutil

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import tools.test as test_tool
import tools.train as train_tool
from scrim_mm.datasets.demo import make_dataset
from scrim_mm.utils import check_checkpoint_keys, check_config
from scrim_mm.utils.config_check import infer_input_size

from .conftest import data_options


def train(demo_config, tmp_path, *options):
    return train_tool.main(
        [
            demo_config,
            '--work-dir',
            str(tmp_path / 'work'),
            '--cfg-options',
            *options,
        ]
    )


def run_test(demo_config, tmp_path, checkpoint, *options):
    return test_tool.main(
        [
            demo_config,
            str(checkpoint),
            '--work-dir',
            str(tmp_path / 'work'),
            '--cfg-options',
            *options,
        ]
    )


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------


def test_train_refuses_missing_dataset_folder(demo_config, tmp_path):
    missing = str(tmp_path / 'no_such_cub')
    with pytest.raises(FileNotFoundError) as info:
        train(demo_config, tmp_path, *data_options(missing))
    msg = str(info.value)
    assert f'train_dataloader.dataset.data_root={missing!r}' in msg
    assert 'does not exist' in msg
    # The expected layout is shown.
    assert 'Expected layout of CUB' in msg
    assert 'image_class_labels.txt' in msg
    assert not (tmp_path / 'work').exists() or not any(
        name.endswith('.pth') for name in os.listdir(tmp_path / 'work')
    )


@pytest.mark.parametrize(
    'layout, dataset_type, removed, layout_line',
    [
        ('cub', 'CUB', 'image_class_labels.txt', 'train_test_split.txt'),
        ('cars', 'StanfordCars', 'car_ims', 'cars_annos.mat'),
        (
            'aircraft',
            'FGVCAircraft',
            osp.join('data', 'images_variant_train.txt'),
            'variants.txt',
        ),
    ],
)
def test_train_names_the_missing_file(
    demo_config, tmp_path, layout, dataset_type, removed, layout_line
):
    root = make_dataset(
        layout,
        str(tmp_path / layout),
        num_classes=2,
        train_per_class=1,
        test_per_class=1,
        img_size=32,
    )
    path = osp.join(root, removed)
    if osp.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
    with pytest.raises(FileNotFoundError) as info:
        train(
            demo_config,
            tmp_path,
            f'train_dataloader.dataset.type={dataset_type}',
            *data_options(root),
        )
    msg = str(info.value)
    assert f'{path} is missing' in msg
    assert f'Expected layout of {dataset_type}' in msg
    assert layout_line in msg


def test_test_tool_names_the_missing_file(demo_config, tmp_path):
    root = make_dataset(
        'cub',
        str(tmp_path / 'cub'),
        num_classes=2,
        train_per_class=1,
        test_per_class=1,
        img_size=32,
    )
    os.remove(osp.join(root, 'train_test_split.txt'))
    # The dataset is checked before the checkpoint is even opened.
    with pytest.raises(FileNotFoundError) as info:
        run_test(
            demo_config,
            tmp_path,
            tmp_path / 'never_read.pth',
            f'test_dataloader.dataset.data_root={root}',
        )
    msg = str(info.value)
    assert 'test_dataloader.dataset.data_root' in msg
    assert osp.join(root, 'train_test_split.txt') + ' is missing' in msg
    assert 'Expected layout of CUB' in msg


# --------------------------------------------------------------------------
# Classes, channels, sizes, parts
# --------------------------------------------------------------------------


def test_num_classes_must_match_dataset(demo_config, tmp_path, tiny_cub):
    with pytest.raises(ValueError) as info:
        train(
            demo_config,
            tmp_path,
            'model.num_classes=5',
            *data_options(tiny_cub),
        )
    msg = str(info.value)
    assert msg.startswith('model.num_classes=5: ')
    assert 'has 4 classes' in msg
    assert 'train_dataloader' in msg
    assert f'set model.num_classes=4 in {demo_config}' in msg


def test_model_num_classes_must_agree(demo_config):
    """The class count is given once; another one in a part is refused."""
    cfg = Config.fromfile(demo_config).model
    cfg.fpl_head.num_classes = 7
    with pytest.raises(ValueError) as info:
        MODELS.build(cfg)
    msg = str(info.value)
    assert msg.startswith(
        'model.fpl_head.num_classes=7: differs from model.num_classes=4; '
    )


@pytest.mark.parametrize(
    'option, expected',
    [
        (
            'model.neck.in_channels=[1024,2048]',
            r'^model\.neck\.in_channels=\(1024, 2048\): expected \(256, 512\)'
            r', from the channels of the stage maps of the backbone '
            r'\(ResNet, out_indices=\(2, 3\)\); ',
        ),
        (
            'model.neck.in_indices=[0,5]',
            r'^model\.neck\.in_indices=\(0, 5\): the backbone gives 2 stage '
            r'maps; ',
        ),
        (
            'model.fpl_head.in_channels=[256,1024]',
            r'^model\.fpl_head\.in_channels=\(256, 1024\): expected '
            r'\(256, 512\)',
        ),
        (
            'model.fpl_head.feat_channels=2048',
            r'^model\.fpl_head\.feat_channels=2048: expected 512',
        ),
        (
            'model.head.part_channels=[512,512]',
            r'^model\.head\.part_channels=\(512, 512\): expected \(256, 512\)',
        ),
        (
            'model.fpl_head.stage_strides=[8,16]',
            r'^model\.fpl_head\.stage_strides=\(8, 16\): expected \(16, 32\)',
        ),
        (
            'model.head.num_fpl_parts=0',
            r'^model\.head\.num_fpl_parts=0: expected 4, from 2 FPL stages x '
            r'model\.fpl_head\.num_test_parts=2 \(model\.fpl_head=None is the '
            r'CPL-only model\)',
        ),
    ],
)
def test_backbone_channels_must_match_settings(
    demo_config, tmp_path, tiny_cub, option, expected
):
    """A wiring value given in the config is checked against the backbone.

    The start-up checks pass; building the model stops the run.
    """
    with pytest.raises(ValueError, match=expected):
        train(demo_config, tmp_path, option, *data_options(tiny_cub))


def test_input_size_must_suit_the_fpl_anchors(demo_config, tmp_path, tiny_cub):
    # The demo pipeline's Resize (pipeline[1]) gives 100x100, which the
    # stride-16 and stride-32 FPL stages cannot tile; the strides are the
    # backbone's, from a dry run (the config does not write them).
    with pytest.raises(ValueError) as info:
        train(
            demo_config,
            tmp_path,
            'train_dataloader.dataset.pipeline.1.scale=[100,100]',
            *data_options(tiny_cub),
        )
    msg = str(info.value)
    assert msg.startswith(
        'train_dataloader.dataset.pipeline: gives 100x100 network inputs '
        '(set by pipeline[1] Resize), but the FPL stage strides (16, 32) '
        'need multiples of 32; '
    )
    assert 'multiple of 32 (e.g. 96 or 128)' in msg


@pytest.mark.parametrize(
    'crop, expected',
    [
        (
            256,
            r'^model\.fpl_head\.crop_size=\(256, 256\): larger than 2 x the '
            r'96x96 network input',
        ),
        (0, r'^model\.fpl_head\.crop_size=\(0, 0\): not a size; '),
    ],
)
def test_crop_size_must_be_sensible(
    demo_config, tmp_path, tiny_cub, crop, expected
):
    with pytest.raises(ValueError, match=expected):
        train(
            demo_config,
            tmp_path,
            f'model.fpl_head.crop_size={crop}',
            *data_options(tiny_cub),
        )
    # Twice the 96 px input is still accepted by the start-up checks.
    cfg = Config.fromfile(demo_config)
    cfg.model.fpl_head.crop_size = 192
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = tiny_cub
    check_config(cfg, demo_config, dry_run=False)


def test_test_parts_must_not_exceed_train_parts(
    demo_config, tmp_path, tiny_cub
):
    with pytest.raises(ValueError) as info:
        train(
            demo_config,
            tmp_path,
            'model.fpl_head.num_test_parts=5',
            *data_options(tiny_cub),
        )
    msg = str(info.value)
    assert msg.startswith(
        'model.fpl_head.num_test_parts=5: more than num_train_parts=4'
    )
    assert 'set num_test_parts <= 4' in msg
    # FPLHead refuses it on its own as well (tests/test_models/test_fpl.py).


def test_infer_input_size_reads_the_usual_transforms():
    pipe = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(600, 500)),  # (w, h)
        dict(type='RandomCrop', crop_size=(448, 416)),  # (h, w)
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackInputs'),
    ]
    assert infer_input_size(pipe) == ((448, 416), 'pipeline[2] RandomCrop')
    assert infer_input_size(pipe[:2])[0] == (500, 600)
    rrc = [dict(type='RandomResizedCrop', scale=224)]
    assert infer_input_size(rrc)[0] == (224, 224)
    edge = [dict(type='ResizeEdge', scale=256)]
    assert infer_input_size(edge)[0] is None


# --------------------------------------------------------------------------
# Checkpoints given to tools/test.py
# --------------------------------------------------------------------------


def _save_state(model: torch.nn.Module, path) -> str:
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return str(path)


def test_test_tool_refuses_checkpoint_of_another_architecture(
    demo_config, tmp_path, tiny_cub
):
    other = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=18),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=4, in_channels=512),
        )
    )
    ckpt = _save_state(other, tmp_path / 'resnet18_cls.pth')
    with pytest.raises(ValueError) as info:
        run_test(demo_config, tmp_path, ckpt, *data_options(tiny_cub))
    msg = str(info.value)
    assert f'Checkpoint {ckpt} does not match' in msg
    missing = re.search(r'missing keys (\d+)', msg)
    assert missing and int(missing.group(1)) > 0
    # SCRIM's own modules are among the missing keys.
    assert re.search(r'\b(crop_norm_stats|fpl_head|neck)\.', msg)
    assert re.search(r'unexpected keys \d+', msg)


def test_test_tool_refuses_checkpoint_with_other_shapes(
    demo_config, tmp_path, tiny_cub
):
    cfg = Config.fromfile(demo_config).model
    cfg.num_classes = 3
    ckpt = _save_state(MODELS.build(cfg), tmp_path / 'three_classes.pth')
    with pytest.raises(ValueError) as info:
        run_test(demo_config, tmp_path, ckpt, *data_options(tiny_cub))
    msg = str(info.value)
    assert 'tensors of another shape' in msg
    # e.g. 'head.cpl_fcs.1.bias (3,) vs (4,)': checkpoint vs model.
    assert re.search(r'head\.\S+ \(3,[^)]*\) vs \(4,', msg)


def test_checkpoint_check_accepts_matching_and_names_missing_file(
    demo_config, tmp_path
):
    model = MODELS.build(Config.fromfile(demo_config).model)
    ckpt = _save_state(model, tmp_path / 'same.pth')
    check_checkpoint_keys(model, ckpt)  # no error
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        check_checkpoint_keys(model, str(tmp_path / 'nope.pth'))
