# Copyright (c) scrim-mm contributors. All rights reserved.
"""Start-up checks of a config, run by the tools before anything is built.

They turn the errors that would otherwise surface minutes later, deep in a
dataloader worker or a shape mismatch, into one clear message that names the
config key, the file or the number at fault, and what was expected.

What is checked (:func:`check_config`):

* the dataset folders of ``CUB``, ``StanfordCars`` and ``FGVCAircraft``
  (the first missing file is named and the expected layout shown);
* every ``num_classes`` of the model (``model.num_classes``, heads, data
  preprocessor) against the number of classes of every checked dataset;
* the batch size of every loader with SCRIM's class-balanced batch sampler
  against its ``num_samples_per_class`` (``K`` must divide it: a batch is
  ``batch_size // K`` classes of ``K`` images);
* the network input size against the FPL stage strides (the anchors need
  an input divisible by every stage stride) and the FPL ``crop_size``
  against the input size (see :data:`MAX_CROP_TO_INPUT`). Stage strides
  that the config leaves unset are derived from a dry run of the backbone
  on the ``meta`` device, as :class:`SCRIMClassifier` derives them.

The wiring of the model itself (channels, strides, fusion sizes, class
counts that must agree) is checked when the model is built, by
:mod:`scrim_mm.models.wiring`.
"""

import math
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

__all__ = [
    'check_config',
    'check_dataset_layout',
    'infer_input_size',
    'DATASET_LAYOUTS',
    'MAX_CROP_TO_INPUT',
]

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

#: Largest sensible ratio of an FPL crop side to the network input side. A
#: crop is a region of the input resized to ``crop_size``; NTS-Net crops
#: 224 px out of 448 px inputs (ratio 0.5). Beyond twice the input side
#: every crop only upsamples pixels that are not there, at more than four
#: times the backbone cost of the input itself.
MAX_CROP_TO_INPUT = 2.0

# How many classes each dataset class has when the config does not override
# ``metainfo.classes`` (mmpretrain's METAINFO).
_NUM_CLASSES = {'CUB': 200, 'StanfordCars': 196, 'FGVCAircraft': 100}

# Transforms that keep the image size (the input-size inference walks
# through them); any other unknown transform makes the size unknown.
_SIZE_KEEPING = {
    'LoadImageFromFile',
    'SCRIMLoadImageFromFile',
    'PackInputs',
    'PackClsInputs',
    'RandomFlip',
    'ColorJitter',
    'Lighting',
    'GaussianBlur',
    'RandomErasing',
    'RandAugment',
    'AutoAugment',
    'RandomGrayscale',
    'Normalize',
    'ToTensor',
    'ImageToTensor',
    'Collect',
}


def _type_name(cfg: Any) -> str:
    if not isinstance(cfg, dict):
        return ''
    return str(cfg.get('type', '')).split('.')[-1]


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
    type_name = _type_name(dataset_cfg)
    return type_name if type_name in DATASET_LAYOUTS else None


def check_dataset_layout(dataset_cfg: dict, key: str = 'dataset') -> None:
    """Check that a CUB / StanfordCars / FGVCAircraft folder is complete.

    Other dataset types are left to mmpretrain.

    Args:
        dataset_cfg (dict): The ``dataset`` field of a dataloader config.
        key (str): The config key, for the message. Defaults to
            ``'dataset'``.

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


def _dataset_num_classes(dataset_cfg: dict, key: str) -> Optional[int]:
    metainfo = dataset_cfg.get('metainfo') or {}
    classes = dataset_cfg.get('classes', metainfo.get('classes'))
    if isinstance(classes, str):
        # mmpretrain reads a file of class names, one per line.
        if not osp.isfile(classes):
            raise FileNotFoundError(
                f'{key}.classes={classes!r}: the class-name file does not '
                'exist; expected a list of names or a file with one per line.'
            )
        with open(classes, encoding='utf-8') as f:
            return sum(1 for line in f if line.strip())
    if classes is not None:
        return len(classes)
    kind = _dataset_kind(dataset_cfg)
    return _NUM_CLASSES.get(kind) if kind else None


def _model_num_classes(model_cfg: dict) -> Dict[str, int]:
    """Every ``num_classes`` the model config sets, by config key."""
    found = {}
    if model_cfg.get('num_classes') is not None:
        found['model.num_classes'] = model_cfg['num_classes']
    for field in ('head', 'fpl_head', 'data_preprocessor'):
        sub = model_cfg.get(field) or {}
        if isinstance(sub, dict) and sub.get('num_classes') is not None:
            found[f'model.{field}.num_classes'] = sub['num_classes']
    return found


def dataset_levels(dataset_cfg: Optional[dict]) -> Iterator[dict]:
    """Yield a dataset config and every dataset it wraps, outermost first.

    RepeatDataset, ClassBalancedDataset and the like keep the dataset they
    wrap in their ``dataset`` key.

    Args:
        dataset_cfg (dict, optional): The ``dataset`` of a dataloader.

    Yields:
        dict: Each level, ending with the real dataset.
    """
    while isinstance(dataset_cfg, dict):
        yield dataset_cfg
        dataset_cfg = dataset_cfg.get('dataset')


def _unwrap(dataset_cfg: dict) -> dict:
    *_, innermost = dataset_levels(dataset_cfg)
    return innermost


def _check_batch_sampler(loader_cfg: dict, loader: str) -> None:
    """The batch size of a loader against its P x K batch sampler.

    Args:
        loader_cfg (dict): A dataloader config.
        loader (str): Its config key, for the message.
    """
    batch_sampler = loader_cfg.get('batch_sampler')
    if _type_name(batch_sampler) != 'SCRIMClassBalancedBatchSampler':
        return
    if 'num_classes_per_batch' in batch_sampler:
        raise ValueError(
            f'{loader}.batch_sampler.num_classes_per_batch='
            f'{batch_sampler["num_classes_per_batch"]!r}: no longer an '
            f'argument, the classes per batch are {loader}.batch_size // '
            'num_samples_per_class; delete it and set the batch size'
        )
    if batch_sampler.get('num_samples_per_class') is None:
        return  # the sampler names the missing argument when built
    from scrim_mm.datasets.samplers import SCRIMClassBalancedBatchSampler

    SCRIMClassBalancedBatchSampler.classes_per_batch(
        loader_cfg.get('batch_size'),
        batch_sampler['num_samples_per_class'],
        key=f'{loader}.batch_size',
    )


# --------------------------------------------------------------------------
# Network input size
# --------------------------------------------------------------------------


def _hw(value: Any, order: str) -> Optional[Tuple[int, int]]:
    """``(h, w)`` from an int or a pair given as ``order`` 'hw' or 'wh'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        a, b = int(value[0]), int(value[1])
        return (a, b) if order == 'hw' else (b, a)
    return None


def infer_input_size(
    pipeline: Sequence[dict],
) -> Tuple[Optional[Tuple[int, int]], str]:
    """Infer the image size ``(h, w)`` a data pipeline produces.

    Knows mmcv's ``Resize`` (``scale`` as ``(w, h)``, without
    ``keep_ratio``), ``CenterCrop`` (``(w, h)``), mmpretrain's
    ``RandomResizedCrop`` (``(h, w)``), ``RandomCrop`` (``(h, w)``),
    ``EfficientNetRandomCrop`` and ``EfficientNetCenterCrop``, and the
    transforms that keep the size (flips, colour, ``PackInputs``, ...).

    Args:
        pipeline (Sequence[dict]): The transform configs.

    Returns:
        tuple: ``((h, w), description)`` where the description names the
        transform that fixed the size, or ``(None, reason)`` when the size
        cannot be told from the config.
    """
    size: Optional[Tuple[int, int]] = None
    source = 'no transform sets the size'
    for i, t in enumerate(pipeline or []):
        name = _type_name(t)
        desc = f'pipeline[{i}] {name}'
        if name == 'Resize':
            new = None
            if not t.get('keep_ratio', False):
                new = _hw(t.get('scale'), 'wh')
        elif name == 'CenterCrop':
            new = _hw(t.get('crop_size'), 'wh')
        elif name in ('RandomResizedCrop', 'EfficientNetRandomCrop'):
            new = _hw(t.get('scale'), 'hw')
        elif name in ('RandomCrop', 'EfficientNetCenterCrop'):
            new = _hw(t.get('crop_size'), 'hw')
        elif name in _SIZE_KEEPING:
            continue
        else:
            size, source = None, f'{desc} has no known output size'
            continue
        if new is None:
            size, source = None, f'{desc} has no fixed output size'
        else:
            size, source = new, desc
    return size, source


# --------------------------------------------------------------------------
# Model checks
# --------------------------------------------------------------------------


def _fpl_cfg(model_cfg: dict) -> Optional[dict]:
    """The FPL head config of a SCRIMClassifier, None without FPL."""
    if _type_name(model_cfg) != 'SCRIMClassifier':
        return None
    fpl = model_cfg.get('fpl_head', {})
    return None if fpl is None else dict(fpl, type=fpl.get('type', 'FPLHead'))


def _derived_strides(
    model_cfg: dict, scope: str
) -> Optional[Tuple[Optional[int], ...]]:
    """The FPL stage strides the SCRIMClassifier derives from its backbone.

    The backbone alone is built (without pretrained weights) and probed on
    the ``meta`` device, as the classifier does. None when it cannot be
    built or run that way: building the model then reports the problem.
    """
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from scrim_mm.models.wiring import neck_stages, probe_backbone

    backbone_cfg = dict(model_cfg.get('backbone') or {})
    # Never fetch pretrained weights for a dry run.
    backbone_cfg.pop('init_cfg', None)
    if not backbone_cfg or backbone_cfg.get('pretrained') is True:
        return None
    try:
        with DefaultScope.overwrite_default_scope(scope):
            backbone = MODELS.build(backbone_cfg)
        picked = neck_stages(
            model_cfg.get('neck') or {}, probe_backbone(backbone)
        )
        return tuple(stage.stride for stage in picked)
    except Exception:
        return None


def _check_fpl_sizes(
    model_cfg: dict,
    config_path: str,
    sizes: Dict[str, Tuple[Tuple[int, int], str]],
    scope: Optional[str],
) -> None:
    """The network input sizes against the FPL stage strides and crops.

    Args:
        model_cfg (dict): The model config.
        config_path (str): The config file, for messages.
        sizes (dict): Loader key to ``((h, w), description)``.
        scope (str, optional): The registry scope of a dry run of the
            backbone, which derives unset stage strides; None skips it.
    """
    fpl = _fpl_cfg(model_cfg)
    if fpl is None or not sizes:
        return
    strides = fpl.get('stage_strides')
    if strides is None and scope is not None:
        strides = _derived_strides(model_cfg, scope)
    if strides is not None and None in strides:
        strides = None
    crop = fpl.get('crop_size')  # None (the default) derives half
    crop = (crop, crop) if isinstance(crop, int) else tuple(crop or (0, 0))
    for loader, ((h, w), source) in sizes.items():
        from scrim_mm.models.ops import input_size_problem

        problem = strides and input_size_problem(h, w, strides)
        if problem:
            raise ValueError(
                f'{loader}.dataset.pipeline: gives {h}x{w} network inputs '
                f'(set by {source}), but {problem} in {config_path}'
            )
        if crop[0] > MAX_CROP_TO_INPUT * h or crop[1] > MAX_CROP_TO_INPUT * w:
            raise ValueError(
                f'model.fpl_head.crop_size={crop}: larger than '
                f'{MAX_CROP_TO_INPUT:g} x the {h}x{w} network input of '
                f'{loader} (set by {source}), and a crop is a region of the '
                f'input, resized; set at most ({int(MAX_CROP_TO_INPUT * h)}'
                f', {int(MAX_CROP_TO_INPUT * w)}) in {config_path}, '
                'typically half the input'
            )


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def _padded(size: Tuple[int, int], model_cfg: dict) -> Tuple[int, int]:
    """The size after the data preprocessor's padding."""
    div = int(
        (model_cfg.get('data_preprocessor') or {}).get('pad_size_divisor', 1)
        or 1
    )
    return tuple(int(math.ceil(s / div) * div) for s in size)


def check_config(
    cfg: Config,
    config_path: str = '<config>',
    train: bool = True,
    loaders: Optional[Sequence[str]] = None,
    dry_run: bool = True,
) -> None:
    """Run every start-up check on a config.

    Args:
        cfg (Config): The merged config.
        config_path (str): The config file, for messages. Defaults to
            ``'<config>'``.
        train (bool): Check the training and validation loaders (True) or
            the test loader only (False). Defaults to True.
        loaders (Sequence[str], optional): Override which dataloader keys are
            checked. Defaults to None.
        dry_run (bool): Derive the FPL stage strides that the config
            leaves unset from a dry run of the backbone on the ``meta``
            device, as :class:`SCRIMClassifier` does. Defaults to True.

    Raises:
        FileNotFoundError: A dataset folder is missing or incomplete.
        ValueError: A batch size that the ``num_samples_per_class`` of the
            class-balanced batch sampler does not divide, a ``num_classes``
            of the model differs from the dataset's, an input size the FPL
            anchors cannot use, or a crop size larger than twice the input.
    """
    if loaders is None:
        loaders = (
            ('train_dataloader', 'val_dataloader')
            if train
            else ('test_dataloader',)
        )
    model_cfg = cfg.get('model') or {}
    counts = _model_num_classes(model_cfg)
    # The Runner gives a model without its own preprocessor the top-level
    # one (mmpretrain's dataset configs set it).
    top = cfg.get('data_preprocessor') or {}
    if not model_cfg.get('data_preprocessor') and top.get('num_classes'):
        counts['data_preprocessor.num_classes'] = top['num_classes']
    sizes: Dict[str, Tuple[Tuple[int, int], str]] = {}
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or not loader_cfg.get('dataset'):
            continue
        _check_batch_sampler(loader_cfg, loader)
        key = f'{loader}.dataset'
        dataset_cfg = _unwrap(loader_cfg['dataset'])
        check_dataset_layout(dataset_cfg, key=key)
        size, source = infer_input_size(dataset_cfg.get('pipeline') or [])
        if size is not None:
            sizes[loader] = (_padded(size, model_cfg), source)
        n_data = _dataset_num_classes(dataset_cfg, key)
        if n_data is None:
            continue
        for model_key, n_model in counts.items():
            if n_model != n_data:
                raise ValueError(
                    f'{model_key}={n_model}: the dataset of {loader} '
                    f'({dataset_cfg.get("type")}) has {n_data} classes; set '
                    f'{model_key}={n_data} in {config_path} (or the '
                    "dataset's classes / metainfo.classes)"
                )
    scope = (cfg.get('default_scope') or 'mmpretrain') if dry_run else None
    _check_fpl_sizes(model_cfg, config_path, sizes, scope)
