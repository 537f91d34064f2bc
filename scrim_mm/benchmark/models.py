# Copyright (c) scrim-mm contributors. All rights reserved.
"""Build the two models of a benchmark and their optimizer wrappers."""

import copy
import os.path as osp
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper, build_optim_wrapper
from torch.profiler import record_function

from ..utils import apply_amp
from .parts import OPTIM_RANGE

__all__ = [
    'strip_init',
    'load_model_cfg',
    'default_baseline_cfg',
    'build_model',
    'make_optim_wrapper',
]

# The optimizer wrapper of a config that has none.
_DEFAULT_OPTIM = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=5.0),
)


def strip_init(cfg: object) -> None:
    """Drop every ``init_cfg`` / ``pretrained`` (no network access).

    Args:
        cfg (object): A model config (dict, list or tuple), changed in
            place, nested levels too; other values are left alone.
    """
    if isinstance(cfg, dict):
        cfg.pop('init_cfg', None)
        cfg.pop('pretrained', None)
        for value in cfg.values():
            strip_init(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            strip_init(value)


def load_model_cfg(
    path: str, cfg_options: Optional[dict] = None
) -> Tuple[Config, ConfigDict]:
    """Read a config and return it with its model config, init removed.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Overrides to merge. Defaults to None.

    Returns:
        Tuple[Config, ConfigDict]: The config and a copy of its ``model``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        KeyError: The config has no ``model``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config={path!r}: no such file; pass an existing config file.'
        )
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'config={path!r}: the config has no `model`.')
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor', None) is not None:
        # As mmengine's Runner: a top-level preprocessor is the default.
        model_cfg.setdefault(
            'data_preprocessor', copy.deepcopy(cfg.data_preprocessor)
        )
    strip_init(model_cfg)
    return cfg, model_cfg


def default_baseline_cfg(scrim_cfg: ConfigDict, scrim: nn.Module) -> dict:
    """The plain classifier on the SCRIM backbone.

    Args:
        scrim_cfg (ConfigDict): The SCRIM model config (init removed).
        scrim (nn.Module): The built SCRIM model; its head gives the number
            of classes and the channels of the last stage map.

    Returns:
        dict: An ``ImageClassifier`` config.

    Raises:
        ValueError: The SCRIM head has no integer ``num_classes`` or
            ``in_channels``.
    """
    head = scrim.head
    for name in ('num_classes', 'in_channels'):
        if not isinstance(getattr(head, name, None), int):
            raise ValueError(
                f'head.{name}={getattr(head, name, None)!r}: the SCRIM head '
                f'({type(head).__name__}) has no integer `{name}`; pass '
                '--baseline CONFIG.'
            )
    cfg = dict(
        type='ImageClassifier',
        backbone=copy.deepcopy(scrim_cfg.backbone),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=head.num_classes,
            in_channels=head.in_channels,
        ),
    )
    if 'data_preprocessor' in scrim_cfg:
        cfg['data_preprocessor'] = copy.deepcopy(scrim_cfg.data_preprocessor)
    return cfg


def build_model(
    model_cfg: dict, device: str, channels_last: bool = False
) -> nn.Module:
    """Build, initialise (randomly) and move a model.

    Args:
        model_cfg (dict): Model config without pretrained weights.
        device (str): ``'cpu'`` or ``'cuda'``.
        channels_last (bool): Store the 4-d weights channels-last (for a
            model without an option of its own, e.g. the baseline).
            Defaults to False.

    Returns:
        nn.Module: The model.
    """
    from mmpretrain.registry import MODELS

    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def make_optim_wrapper(
    cfg: Config, model: nn.Module, amp: bool, device: str
) -> OptimWrapper:
    """The config's optimizer wrapper (or SGD), AMP as tools/train.py.

    Args:
        cfg (Config): The SCRIM config (its ``optim_wrapper`` is used when
            it has one).
        model (nn.Module): The model to optimise.
        amp (bool): Apply ``--amp`` as ``tools/train.py`` does.
        device (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        OptimWrapper: The wrapper, its ``step`` inside a profiler range.
    """
    wrapper_cfg = copy.deepcopy(cfg.get('optim_wrapper', None))
    if wrapper_cfg is None:
        wrapper_cfg = copy.deepcopy(_DEFAULT_OPTIM)
    holder = Config(dict(optim_wrapper=wrapper_cfg))
    if amp:
        apply_amp(holder, cuda=device == 'cuda')
    wrapper = build_optim_wrapper(model, holder.optim_wrapper)
    step = wrapper.step

    def ranged_step(*args, **kwargs):
        with record_function(OPTIM_RANGE):
            return step(*args, **kwargs)

    wrapper.step = ranged_step
    return wrapper
