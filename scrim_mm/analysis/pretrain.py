# Copyright (c) scrim-mm contributors. All rights reserved.
"""Pretrained backbone weights for the part benchmark's fine-tuning protocol.

Users fine-tune SCRIM from an ImageNet-pretrained backbone; the part
benchmark's fine-tuning protocol needs weights that play that role on its
small synthetic data. :func:`make_pretrained_backbone` trains the plain
twin of a SCRIM config (the same backbone, ``GlobalAveragePooling`` and a
``LinearClsHead``) on the demo generator's pretraining set (gratings on
discs, :mod:`scrim_mm.datasets.demo.pretrain`), a task that shares neither
classes nor marks with the hard demo set, and caches the checkpoint.
"""

import json
import os
import os.path as osp
import shutil
from typing import Optional

import torch
from mmengine.config import Config

#: Settings of the pretraining run (the cache key with the config's
#: backbone and input size).
PRETRAIN_DEFAULTS = dict(
    epochs=12, train_per_class=100, test_per_class=20, seed=0
)
CHECKPOINT_NAME = 'pretrained.pth'
_RECORD = 'pretrained.json'


def pretrain_config(
    cfg: Config, data_root: str, epochs: int, seed: int
) -> Config:
    """The plain twin of a SCRIM config, trained on the pretraining set.

    Args:
        cfg (Config): The SCRIM config of the benchmark.
        data_root (str): The pretraining set.
        epochs (int): Training epochs.
        seed (int): The seed.

    Returns:
        Config: A new config: the plain backbone classifier with every
        split on ``data_root`` and its classes, the schedule stretched to
        ``epochs``, top-1 as the only metric.
    """
    from .part_benchmark import plain_config, set_epochs

    plain = plain_config(cfg)
    with open(osp.join(data_root, 'demo_manifest.json')) as f:
        classes = json.load(f)['classes']
    plain.model.head.num_classes = len(classes)
    plain.model.backbone.pop('init_cfg', None)
    for split in ('train', 'val', 'test'):
        dataset = plain[f'{split}_dataloader'].dataset
        dataset.data_root = data_root
        dataset.classes = list(classes)
    plain.train_dataloader.dataset.pipeline = _train_pipeline(cfg)
    set_epochs(plain, epochs)
    plain.randomness = dict(plain.get('randomness', {}), seed=seed)
    plain.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=epochs, max_keep_ckpts=1
    )
    return plain


def make_pretrained_backbone(
    cfg: Config,
    work_dir: str,
    data_root: str = 'data/demo_pretrain',
    epochs: int = PRETRAIN_DEFAULTS['epochs'],
    train_per_class: int = PRETRAIN_DEFAULTS['train_per_class'],
    test_per_class: int = PRETRAIN_DEFAULTS['test_per_class'],
    seed: int = PRETRAIN_DEFAULTS['seed'],
) -> str:
    """Train the plain backbone on the pretraining set, once.

    The checkpoint is cached in ``work_dir`` with a record of the settings
    (backbone, input size, pipeline, optimizer and schedule, torch's thread
    count, epochs, set size, seed) and of the pretraining top-1; a later
    call with the same settings returns it untouched.

    Args:
        cfg (Config): The SCRIM config of the benchmark; its backbone and
            test input size are pretrained.
        work_dir (str): Folder of the run and the cached checkpoint.
        data_root (str): The pretraining set, written when missing.
            Defaults to ``'data/demo_pretrain'``.
        epochs (int): Training epochs. Defaults to 12.
        train_per_class (int): Training images per class. Defaults to 100.
        test_per_class (int): Test images per class. Defaults to 20.
        seed (int): Seed of the data and the run. Defaults to 0.

    Returns:
        str: The checkpoint, a full mmengine checkpoint whose
        ``backbone.*`` weights a ``Pretrained`` init with
        ``prefix='backbone'`` loads.
    """
    from mmengine.runner import Runner

    from ..datasets.demo import make_dataset
    from ..utils import add_rng_state_hook, use_scrim_image_loader

    img_size = _input_size(cfg)
    # Everything the checkpoint depends on: the optimizer and schedule it
    # trains with, and the thread count (CPU runs are deterministic for one
    # thread count only).
    settings = dict(
        backbone=cfg.model.backbone.to_dict(),
        img_size=img_size,
        train_pipeline=_train_pipeline(cfg),
        optim_wrapper=cfg.optim_wrapper.to_dict(),
        param_scheduler=list(cfg.get('param_scheduler') or []),
        threads=torch.get_num_threads(),
        epochs=epochs,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        seed=seed,
    )
    settings['backbone'].pop('init_cfg', None)
    # As the record reads back (tuples become lists).
    settings = json.loads(json.dumps(settings, default=str))
    ckpt = osp.join(work_dir, CHECKPOINT_NAME)
    record = osp.join(work_dir, _RECORD)
    if osp.isfile(ckpt) and osp.isfile(record):
        with open(record) as f:
            if json.load(f).get('settings') == settings:
                return ckpt
    make_dataset(
        'cub',
        data_root,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        img_size=img_size,
        seed=seed,
        difficulty='pretrain',
    )
    run_cfg = pretrain_config(cfg, data_root, epochs, seed)
    run_cfg.work_dir = osp.join(work_dir, 'run')
    add_rng_state_hook(run_cfg)
    use_scrim_image_loader(run_cfg)
    runner = Runner.from_cfg(run_cfg)
    runner.train()
    top1 = float(runner.test()['accuracy/top1'])
    os.makedirs(work_dir, exist_ok=True)
    last = osp.join(run_cfg.work_dir, f'epoch_{epochs}.pth')
    shutil.copyfile(last, ckpt)
    with open(record, 'w') as f:
        json.dump(dict(settings=settings, top1=top1), f, indent=1)
    return ckpt


def pretrained_top1(work_dir: str) -> Optional[float]:
    """Top-1 of the cached pretraining run on its own test split."""
    record = osp.join(work_dir, _RECORD)
    if not osp.isfile(record):
        return None
    with open(record) as f:
        return json.load(f).get('top1')


def _train_pipeline(cfg: Config) -> list:
    """The config's training pipeline without its horizontal flips.

    A horizontal flip turns a grating at ``a`` degrees into one at
    ``180 - a``: 22.5 into 157.5 and 67.5 into 112.5. With it, the
    pretraining classes came in indistinguishable pairs (top-1 55 % and a
    loss stuck near ln 2 after 12 epochs).
    """
    return [
        dict(step)
        for step in cfg.train_dataloader.dataset.pipeline
        if step.get('type') != 'RandomFlip'
    ]


def _input_size(cfg: Config) -> int:
    """The smaller side of the config's test inputs."""
    from ..utils.config_check import infer_input_size

    size, source = infer_input_size(cfg.test_dataloader.dataset.pipeline)
    if size is None:
        raise ValueError(
            f'test_dataloader.dataset.pipeline: {source}; the pretraining set '
            'needs the fixed input size of the benchmark config'
        )
    return min(size)


def with_pretrained_backbone(cfg: Config, checkpoint: str) -> Config:
    """A copy of ``cfg`` whose backbone starts from ``checkpoint``.

    Args:
        cfg (Config): A config with ``model.backbone``.
        checkpoint (str): A checkpoint with ``backbone.*`` weights.

    Returns:
        Config: The copy, with mmengine's ``Pretrained`` init on the
        backbone (as the R50 recipes load ImageNet weights).
    """
    import copy

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'--init {checkpoint}: no such file; give a checkpoint with '
            'backbone.* weights, or leave --init out to pretrain one'
        )
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=checkpoint, prefix='backbone'
    )
    return cfg
