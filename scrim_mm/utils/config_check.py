# Copyright (c) scrim-mm contributors. All rights reserved.
"""Start-up checks of a config, run by the tools before anything is built.

They turn the errors that would otherwise surface minutes later, deep in a
dataloader worker or a shape mismatch, into one clear message that names the
config key, the file or the number at fault, and what was expected.

What is checked (:func:`check_config`):

* the dataset folders of ``CUB``, ``StanfordCars`` and ``FGVCAircraft``
  (the first missing file is named and the expected layout shown);
* every ``num_classes`` of the model (heads, data preprocessor) against the
  number of classes of every checked dataset, and against each other;
* the FPL settings: ``num_test_parts`` (K) <= ``num_train_parts`` (M), the
  network input size against the FPL stage strides (the anchors need an
  input divisible by every stage stride) and ``crop_size`` against the
  input size (see :data:`MAX_CROP_TO_INPUT`);
* a dry forward pass of the backbone alone on one blank image of the
  network input size: the channels and strides of the stage maps the
  :class:`CPLNeck` selects against the channel and stride settings of the
  neck and the heads.
"""

import inspect
import math
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

__all__ = [
    'check_config',
    'check_dataset_layout',
    'check_model',
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


def _setting(model_cfg: dict, field: str, key: str) -> Any:
    """A module setting: the config value, else the class default."""
    sub = model_cfg.get(field) or {}
    if key in sub:
        return sub[key]
    from mmpretrain.registry import MODELS

    cls = MODELS.get(str(sub.get('type', '')))
    if cls is None:
        return None
    param = inspect.signature(cls.__init__).parameters.get(key)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def _as_tuple(value: Any) -> Optional[tuple]:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _check_fpl_settings(
    model_cfg: dict,
    config_path: str,
    sizes: Dict[str, Tuple[Tuple[int, int], str]],
) -> None:
    """K <= M, input sizes against stage strides and crop sizes."""
    if _type_name(model_cfg.get('fpl_head')) != 'FPLHead':
        return
    m = _setting(model_cfg, 'fpl_head', 'num_train_parts')
    k = _setting(model_cfg, 'fpl_head', 'num_test_parts')
    if m is not None and k is not None and k > m:
        raise ValueError(
            f'{config_path}: model.fpl_head.num_test_parts={k} (K, regions '
            f'per stage at inference) is larger than '
            f'model.fpl_head.num_train_parts={m} (M, regions in training); '
            f'expected K <= M, e.g. num_test_parts={m}.'
        )
    strides = _as_tuple(_setting(model_cfg, 'fpl_head', 'stage_strides'))
    crop = _as_tuple(_setting(model_cfg, 'fpl_head', 'crop_size'))
    if crop is not None and len(crop) == 1:
        crop = crop * 2
    if crop is not None and min(crop) <= 0:
        raise ValueError(
            f'{config_path}: model.fpl_head.crop_size={crop} must be '
            'positive; expected an int or (h, w) with 0 < size <= '
            f'{MAX_CROP_TO_INPUT:g} x the network input size.'
        )
    for loader, ((h, w), source) in sizes.items():
        if strides:
            step = math.lcm(*(int(s) for s in strides))
            if h % step or w % step or h < step or w < step:
                near = sorted(
                    {max(step, v // step * step) for v in (h, w)}
                    | {(v // step + 1) * step for v in (h, w)}
                )
                ok = ' or '.join(str(v) for v in near)
                raise ValueError(
                    f'{config_path}: the network input of {loader} is '
                    f'{h}x{w} (set by {source}), but the FPL anchors need '
                    f'an input whose height and width are multiples of '
                    f'every stage stride, model.fpl_head.stage_strides='
                    f'{strides}: expected a multiple of {step} (e.g. {ok}).'
                )
        if crop is not None and (
            crop[0] > MAX_CROP_TO_INPUT * h or crop[1] > MAX_CROP_TO_INPUT * w
        ):
            raise ValueError(
                f'{config_path}: model.fpl_head.crop_size={crop} is larger '
                f'than {MAX_CROP_TO_INPUT:g} x the network input {h}x{w} of '
                f'{loader} (set by {source}); a crop is a region of the '
                'input, resized: expected at most '
                f'({int(MAX_CROP_TO_INPUT * h)}, '
                f'{int(MAX_CROP_TO_INPUT * w)}), typically half the input.'
            )


def _dry_backbone(
    backbone_cfg: dict, size: Tuple[int, int], scope: str
) -> Optional[List[Tuple[int, int, int]]]:
    """Run the backbone once on a blank image, shapes only.

    The backbone is built on the CPU without pretrained weights, moved to
    PyTorch's ``meta`` device (tensors without data) and run there: only
    shapes are computed, so even a large backbone at 448 px takes a
    fraction of a second.

    Returns:
        list | None: ``(channels, height, width)`` of every NCHW output, or
        None when the backbone cannot be built or run this way (the Runner
        then reports its own error).
    """
    import torch
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    backbone_cfg = dict(backbone_cfg)
    # Never fetch pretrained weights for a dry run.
    backbone_cfg.pop('init_cfg', None)
    if backbone_cfg.get('pretrained') is True:
        return None
    try:
        with DefaultScope.overwrite_default_scope(scope):
            backbone = MODELS.build(backbone_cfg)
        backbone = backbone.to('meta')
        backbone.eval()
        with torch.no_grad():
            outs = backbone(torch.zeros(1, 3, *size, device='meta'))
    except Exception:
        return None
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    shapes = []
    for out in outs:
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            return None
        shapes.append(tuple(int(v) for v in out.shape[1:]))
    return shapes


def _stride(size: Tuple[int, int], shape: Tuple[int, int]) -> Optional[int]:
    """The stride of a map of ``shape`` on an input of ``size``, if exact."""
    (h, w), (mh, mw) = size, shape
    if mh and mw and h % mh == 0 and w % mw == 0 and h // mh == w // mw:
        return h // mh
    return None


def _fail_channels(config_path: str, key: str, value, expected, why: str):
    raise ValueError(
        f'{config_path}: {key}={value} but {why} {expected}; set '
        f'{key}={expected} (or change model.backbone.out_indices).'
    )


def check_model(
    cfg: Config,
    config_path: str = '<config>',
    input_size: Optional[Tuple[int, int]] = None,
) -> None:
    """Check the neck / head channel and stride settings against the backbone.

    The backbone alone is built (without pretrained weights) and run once on
    a blank ``(1, 3, H, W)`` image. The stage maps the :class:`CPLNeck`
    selects (``in_indices``, else the last ``len(in_channels)`` outputs)
    must have ``neck.in_channels`` channels; the FPL head's ``in_channels``,
    ``feat_channels`` (the last backbone output) and ``stage_strides``, and
    the fusion head's ``in_channels``, ``part_channels``, ``fpl_channels``
    and ``num_parts`` must agree with them. Models without a ``CPLNeck``
    are not checked.

    Args:
        cfg (Config): The merged config.
        config_path (str): The config file, for messages. Defaults to
            ``'<config>'``.
        input_size (Tuple[int, int], optional): The network input ``(H, W)``
            of the dry run. Defaults to None, meaning 224 x 224.

    Raises:
        ValueError: Naming the config key, its value and the value the
            backbone implies.
    """
    model_cfg = cfg.get('model') or {}
    neck = model_cfg.get('neck')
    if _type_name(neck) != 'CPLNeck' or not model_cfg.get('backbone'):
        return
    h, w = input_size or (224, 224)
    scope = cfg.get('default_scope') or 'mmpretrain'
    shapes = _dry_backbone(model_cfg['backbone'], (h, w), scope)
    if not shapes:
        return
    backbone = (
        f'the backbone ({_type_name(model_cfg["backbone"])}, out_indices='
        f'{model_cfg["backbone"].get("out_indices")}) gives'
    )
    in_channels = _as_tuple(_setting(model_cfg, 'neck', 'in_channels'))
    in_indices = _as_tuple(neck.get('in_indices'))
    num = len(in_channels)
    if in_indices is None:
        if len(shapes) < num:
            raise ValueError(
                f'{config_path}: model.neck.in_channels={in_channels} '
                f'expects {num} stage maps but {backbone} {len(shapes)} '
                f'(channels {tuple(s[0] for s in shapes)}); set '
                f'model.backbone.out_indices to {num} stages, e.g. (2, 3).'
            )
        picked = shapes[len(shapes) - num :]
    else:
        if any(not -len(shapes) <= i < len(shapes) for i in in_indices):
            raise ValueError(
                f'{config_path}: model.neck.in_indices={in_indices} but '
                f'{backbone} only {len(shapes)} stage maps.'
            )
        picked = [shapes[i] for i in in_indices]
    channels = tuple(s[0] for s in picked)
    if in_channels != channels:
        _fail_channels(
            config_path,
            'model.neck.in_channels',
            in_channels,
            channels,
            f'{backbone} stage maps with channels',
        )
    last = shapes[-1][0]
    if _type_name(model_cfg.get('fpl_head')) == 'FPLHead':
        fpl_in = _as_tuple(_setting(model_cfg, 'fpl_head', 'in_channels'))
        if fpl_in != channels:
            _fail_channels(
                config_path,
                'model.fpl_head.in_channels',
                fpl_in,
                channels,
                f'{backbone} stage maps (CPL-enhanced) with channels',
            )
        feat = _setting(model_cfg, 'fpl_head', 'feat_channels')
        if feat != last:
            _fail_channels(
                config_path,
                'model.fpl_head.feat_channels',
                feat,
                last,
                f'the crops are encoded by the last backbone output: '
                f'{backbone} channels',
            )
        strides = _as_tuple(_setting(model_cfg, 'fpl_head', 'stage_strides'))
        real = tuple(_stride((h, w), s[1:]) for s in picked)
        if strides is not None and None not in real and strides != real:
            raise ValueError(
                f'{config_path}: model.fpl_head.stage_strides={strides} but '
                f'on a {h}x{w} input {backbone} maps of '
                f'{[f"{s[1]}x{s[2]}" for s in picked]}, i.e. strides {real}; '
                f'set model.fpl_head.stage_strides={real}.'
            )
    if _type_name(model_cfg.get('head')) == 'SCRIMHead':
        head_in = _setting(model_cfg, 'head', 'in_channels')
        if head_in != channels[-1]:
            _fail_channels(
                config_path,
                'model.head.in_channels',
                head_in,
                channels[-1],
                f'the global feature is the last CPL stage map: {backbone} '
                'channels',
            )
        part = _as_tuple(_setting(model_cfg, 'head', 'part_channels'))
        if part != channels:
            _fail_channels(
                config_path,
                'model.head.part_channels',
                part,
                channels,
                f'{backbone} CPL stage maps with channels',
            )
        head_parts = _setting(model_cfg, 'head', 'num_parts')
        neck_parts = _setting(model_cfg, 'neck', 'num_parts')
        if head_parts != neck_parts:
            raise ValueError(
                f'{config_path}: model.head.num_parts={head_parts} but '
                f'model.neck.num_parts={neck_parts}; set them to agree.'
            )
        num_fpl = _setting(model_cfg, 'head', 'num_fpl_parts')
        fpl_channels = _setting(model_cfg, 'head', 'fpl_channels')
        if num_fpl and fpl_channels != last:
            _fail_channels(
                config_path,
                'model.head.fpl_channels',
                fpl_channels,
                last,
                f'the FPL part features are the last backbone output: '
                f'{backbone} channels',
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
        dry_run (bool): Also run the backbone once on a blank image to check
            the channel and stride settings (:func:`check_model`). Defaults
            to True.

    Raises:
        FileNotFoundError: A dataset folder is missing or incomplete.
        ValueError: A ``num_classes`` differs from the dataset's or from
            another one of the model, K > M, an input size the FPL anchors
            cannot use, a crop size out of range, or channel / stride
            settings that do not match the backbone.
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
    if len(set(counts.values())) > 1:
        listed = ', '.join(f'{k}={v}' for k, v in counts.items())
        raise ValueError(
            f'{config_path}: the model disagrees on the number of classes '
            f'({listed}); set them all to the number of classes of the '
            'dataset.'
        )
    sizes: Dict[str, Tuple[Tuple[int, int], str]] = {}
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or not loader_cfg.get('dataset'):
            continue
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
                    f'{config_path}: {model_key}={n_model} but the dataset '
                    f'of {loader} ({dataset_cfg.get("type")}) has {n_data} '
                    f'classes; set {model_key}={n_data} (or the dataset\'s '
                    'classes / metainfo.classes) so that they agree.'
                )
    _check_fpl_settings(model_cfg, config_path, sizes)
    if dry_run:
        size = next(iter(sizes.values()))[0] if sizes else None
        check_model(cfg, config_path, size)
