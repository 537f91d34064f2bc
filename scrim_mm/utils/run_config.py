# Copyright (c) scrim-mm contributors. All rights reserved.
"""Helpers shared by ``tools/train.py`` and ``tools/test.py``."""

import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config

__all__ = ['set_work_dir', 'apply_amp', 'set_dataloader_defaults']


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
