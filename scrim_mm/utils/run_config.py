# Copyright (c) scrim-mm contributors. All rights reserved.
"""Helpers shared by ``tools/train.py`` and ``tools/test.py``."""

import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config

from .config_check import dataset_levels

__all__ = [
    'set_work_dir',
    'apply_amp',
    'set_dataloader_defaults',
    'use_scrim_image_loader',
    'add_rng_state_hook',
]


def set_work_dir(
    cfg: Config, config_path: str, work_dir: Optional[str]
) -> None:
    """Choose the work directory: command line, then config, then name.

    Args:
        cfg (Config): The config, changed in place.
        config_path (str): The config file (its stem names the default).
        work_dir (str, optional): The ``--work-dir`` option.
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        stem = osp.splitext(osp.basename(config_path))[0]
        cfg.work_dir = osp.join('./work_dirs', stem)


def apply_amp(cfg: Config, cuda: Optional[bool] = None) -> None:
    """Turn on mixed precision in ``cfg.optim_wrapper``.

    fp16 with dynamic loss scaling (mmengine's ``AmpOptimWrapper``) on CUDA;
    bf16 autocast (:class:`SCRIMCPUAmpOptimWrapper`) on the CPU, where
    mmengine's wrapper refuses to run.

    Args:
        cfg (Config): The config, changed in place.
        cuda (bool, optional): Force the choice; by default whether CUDA is
            available.
    """
    if cuda is None:
        cuda = torch.cuda.is_available()
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') not in (
        'OptimWrapper',
        'AmpOptimWrapper',
        'SCRIMCPUAmpOptimWrapper',
    ):
        raise ValueError(
            f'--amp: optim_wrapper.type={wrapper.type!r} is not a plain '
            'OptimWrapper; set mixed precision in the config instead.'
        )
    if cuda:
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'SCRIMCPUAmpOptimWrapper'
        wrapper.pop('loss_scale', None)
        wrapper.setdefault('dtype', 'bfloat16')


def set_dataloader_defaults(
    cfg: Config,
    field: str,
    pin_memory: bool = True,
    persistent_workers: bool = True,
) -> None:
    """Fill in the dataloader options that mmpretrain's tools set.

    ``persistent_workers`` is only valid with worker processes, so it is
    switched off when ``num_workers`` is 0 (PyTorch raises otherwise).

    Args:
        cfg (Config): The config, changed in place.
        field (str): ``'train_dataloader'``, ``'val_dataloader'`` or
            ``'test_dataloader'``.
        pin_memory (bool): Default for ``pin_memory``. Defaults to True.
        persistent_workers (bool): Default for ``persistent_workers``.
            Defaults to True.
    """
    loader = cfg.get(field, None)
    if loader is None:
        return
    loader.setdefault('collate_fn', dict(type='default_collate'))
    loader.setdefault('pin_memory', pin_memory and torch.cuda.is_available())
    if not pin_memory:
        loader.pin_memory = False
    workers = loader.get('num_workers', 0)
    loader.setdefault('persistent_workers', persistent_workers)
    if not persistent_workers or workers == 0:
        loader.persistent_workers = False


def use_scrim_image_loader(cfg: Config) -> int:
    """Load images with :class:`SCRIMLoadImageFromFile` in every loader.

    mmcv's ``LoadImageFromFile`` fails on a truncated or non-image file with
    a bare ``AssertionError`` that does not name the file; the SCRIM loader
    takes the same arguments and names the file. Only the transform type
    changes, so any mmpretrain config run through the tools benefits.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        int: How many transforms were switched.
    """
    switched = 0
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field, None)
        if not loader:
            continue
        for level in dataset_levels(loader.get('dataset')):
            pipeline = level.get('pipeline')
            if not isinstance(pipeline, list):
                continue
            for transform in pipeline:
                name = str(transform.get('type', '')).split('.')[-1]
                if name == 'LoadImageFromFile':
                    transform['type'] = 'SCRIMLoadImageFromFile'
                    switched += 1
    return switched


def add_rng_state_hook(cfg: Config) -> None:
    """Add :class:`SCRIMRNGStateHook` unless the config already has it.

    mmengine's resume restores the epoch, optimizer and schedulers but not
    the random generators; the hook saves them in every checkpoint so that
    ``--resume`` continues exactly as an uninterrupted run would.

    A config opts out with the top-level key ``restore_rng_states = False``
    (e.g. ``--cfg-options restore_rng_states=False``).

    Args:
        cfg (Config): The config, changed in place.
    """
    if cfg.get('restore_rng_states', True) is False:
        return
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(
        str(h.get('type', '')).endswith('SCRIMRNGStateHook') for h in hooks
    ):
        hooks.append(dict(type='SCRIMRNGStateHook'))
    cfg.custom_hooks = hooks
