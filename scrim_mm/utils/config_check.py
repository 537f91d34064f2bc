# Copyright (c) scrim-mm contributors. All rights reserved.
"""Start-up checks of a config, run by the tools before anything is built.

They turn the errors that would otherwise surface minutes later, deep in a
dataloader worker or a shape mismatch, into one clear message that names the
config key, the file or the number at fault.
"""

import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

__all__ = ['check_config', 'check_dataset_layout', 'DATASET_LAYOUTS']

_CUB_LAYOUT = """\
CUB_200_2011/
├── images/<class folder>/<image>.jpg
├── images.txt
├── image_class_labels.txt
├── train_test_split.txt
└── classes.txt"""

_CARS_LAYOUT = """\
stanfordcars/                    stanfordcars/
├── car_ims/<image>.jpg          ├── cars_train/<image>.jpg
└── cars_annos.mat       or      ├── cars_test/<image>.jpg
                                 └── devkit/
                                     ├── cars_train_annos.mat
                                     └── cars_test_annos_withlabels.mat"""

_AIRCRAFT_LAYOUT = """\
fgvc-aircraft-2013b/
└── data/
    ├── images/<image>.jpg
    ├── images_variant_trainval.txt
    ├── images_variant_test.txt
    └── variants.txt"""

#: Expected layout (as text) of each dataset class whose folder is checked.
DATASET_LAYOUTS: Dict[str, str] = {
    'CUB': _CUB_LAYOUT,
    'StanfordCars': _CARS_LAYOUT,
    'FGVCAircraft': _AIRCRAFT_LAYOUT,
}

# How many classes each dataset class has when the config does not override
# ``metainfo.classes`` (mmpretrain's METAINFO).
_NUM_CLASSES = {'CUB': 200, 'StanfordCars': 196, 'FGVCAircraft': 100}


def _required_files(kind: str, root: str, split: str) -> List[str]:
    """Files (relative to ``root``) that ``kind`` reads for ``split``."""
    if kind == 'CUB':
        return [
            'images.txt',
            'image_class_labels.txt',
            'train_test_split.txt',
            'images',
        ]
    if kind == 'StanfordCars':
        if osp.exists(osp.join(root, 'cars_annos.mat')):
            return ['cars_annos.mat', 'car_ims']
        if split == 'test':
            return [
                osp.join('devkit', 'cars_test_annos_withlabels.mat'),
                'cars_test',
            ]
        return [osp.join('devkit', 'cars_train_annos.mat'), 'cars_train']
    if kind == 'FGVCAircraft':
        return [
            osp.join('data', f'images_variant_{split}.txt'),
            osp.join('data', 'images'),
        ]
    return []


def _dataset_kind(dataset_cfg: dict) -> Optional[str]:
    type_name = str(dataset_cfg.get('type', '')).split('.')[-1]
    return type_name if type_name in DATASET_LAYOUTS else None


def check_dataset_layout(dataset_cfg: dict, key: str = 'dataset') -> None:
    """Check that a CUB / StanfordCars / FGVCAircraft folder is complete.

    Other dataset types are left to mmpretrain.

    Args:
        dataset_cfg (dict): The ``dataset`` field of a dataloader config.
        key (str): The config key, for the message.

    Raises:
        FileNotFoundError: Naming the missing file or folder and showing the
            layout the dataset class expects.
    """
    kind = _dataset_kind(dataset_cfg)
    if kind is None:
        return
    root = dataset_cfg.get('data_root')
    default_split = 'trainval' if kind == 'FGVCAircraft' else 'train'
    split = dataset_cfg.get('split', default_split)
    hint = (
        f'Expected layout of {kind}:\n{DATASET_LAYOUTS[kind]}\n'
        f'Point the config elsewhere with --cfg-options '
        f'{key}.data_root=PATH (see README, "Datasets").'
    )
    if not root or not osp.isdir(root):
        raise FileNotFoundError(
            f'{key}.data_root={root!r}: the {kind} dataset folder does not '
            f'exist.\n{hint}'
        )
    for rel in _required_files(kind, root, split):
        if not osp.exists(osp.join(root, rel)):
            raise FileNotFoundError(
                f'{key}.data_root={root!r} is incomplete: '
                f'{osp.join(root, rel)} is missing.\n{hint}'
            )


def _dataset_num_classes(dataset_cfg: dict) -> Optional[int]:
    metainfo = dataset_cfg.get('metainfo') or {}
    classes = dataset_cfg.get('classes', metainfo.get('classes'))
    if isinstance(classes, str):
        # mmpretrain reads a file of class names, one per line.
        if not osp.isfile(classes):
            raise FileNotFoundError(
                f'dataset.classes={classes!r}: the class-name file does not '
                'exist; expected a list of names or a file with one per line.'
            )
        with open(classes, encoding='utf-8') as f:
            return sum(1 for line in f if line.strip())
    if classes is not None:
        return len(classes)
    kind = _dataset_kind(dataset_cfg)
    return _NUM_CLASSES.get(kind) if kind else None


def _head_num_classes(model_cfg: dict) -> Dict[str, int]:
    found = {}
    for field in ('head', 'fpl_head'):
        sub = model_cfg.get(field) or {}
        if 'num_classes' in sub:
            found[f'model.{field}.num_classes'] = sub['num_classes']
    return found


def _unwrap(dataset_cfg: dict) -> dict:
    # RepeatDataset / ClassBalancedDataset keep the real one in `dataset`.
    while isinstance(dataset_cfg.get('dataset'), dict):
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def check_config(
    cfg: Config,
    config_path: str = '<config>',
    train: bool = True,
    loaders: Optional[Sequence[str]] = None,
) -> None:
    """Run every start-up check on a config.

    Args:
        cfg (Config): The merged config.
        config_path (str): The config file, for messages.
        train (bool): Check the training and validation loaders (True) or
            the test loader only (False).
        loaders (Sequence[str], optional): Override which dataloader keys are
            checked.

    Raises:
        FileNotFoundError: A dataset folder is missing or incomplete.
        ValueError: The head's ``num_classes`` differs from the dataset's.
    """
    if loaders is None:
        loaders = (
            ('train_dataloader', 'val_dataloader')
            if train
            else ('test_dataloader',)
        )
    heads = _head_num_classes(cfg.get('model') or {})
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or not loader_cfg.get('dataset'):
            continue
        dataset_cfg = _unwrap(loader_cfg['dataset'])
        check_dataset_layout(dataset_cfg, key=f'{loader}.dataset')
        n_data = _dataset_num_classes(dataset_cfg)
        if n_data is None:
            continue
        for key, n_head in heads.items():
            if n_head != n_data:
                raise ValueError(
                    f'{config_path}: {key}={n_head} but the dataset of '
                    f'{loader} ({dataset_cfg.get("type")}) has {n_data} '
                    f'classes; set {key}={n_data} (or the dataset\'s '
                    'metainfo.classes) so that they agree.'
                )
