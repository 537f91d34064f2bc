# Copyright (c) scrim-mm contributors. All rights reserved.
"""Train a model (SCRIM or any mmpretrain model) with mmengine's Runner.

Usage follows mmpretrain's ``tools/train.py``::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--compile] [--no-retain-cpu-memory] [--auto-scale-lr]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

Works from a clone without installing the package (``tools/_bootstrap.py``
puts the repository root on ``sys.path`` so that
``custom_imports=['scrim_mm']`` resolves) and with the package installed.
"""

import argparse
import os

import _bootstrap  # noqa: F401  (the repository root on sys.path)
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from scrim_mm.utils import (
    add_rng_state_hook,
    apply_amp,
    apply_compile,
    check_config,
    retain_cpu_memory,
    set_dataloader_defaults,
    set_work_dir,
    use_scrim_image_loader,
)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work directory',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision: fp16 with dynamic loss scaling on '
        'CUDA, bf16 autocast on CPU',
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help="torch.compile the training step (mmengine's compile config); "
        'a part that cannot be compiled runs eagerly, with a message',
    )
    parser.add_argument(
        '--no-retain-cpu-memory',
        action='store_true',
        help="leave glibc's malloc as it is (by default freed memory is "
        'kept for reuse; SCRIM_RETAIN_CPU_MEMORY=0 also turns it off)',
    )
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training',
    )
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size over '
        'auto_scale_lr.base_batch_size of the config',
    )
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='disable pin_memory in the dataloaders',
    )
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='disable persistent_workers in the dataloaders',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. train_cfg.max_epochs=2 or '
        'key="[a,b]" for lists (no white space)',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torchrun passes --local-rank (torch >= 2.0) or sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command-line options into the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        apply_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise KeyError(
                f'--auto-scale-lr needs `auto_scale_lr = dict('
                f'base_batch_size=...)` in {args.config}, which has none.'
            )
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_compile(cfg, args.compile)
    add_rng_state_hook(cfg)
    use_scrim_image_loader(cfg)
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_dataloader_defaults(
            cfg,
            field,
            pin_memory=not args.no_pin_memory,
            persistent_workers=not args.no_persistent_workers,
        )
    return cfg


def main(argv=None) -> None:
    """Entry point."""
    args = parse_args(argv)
    retain_cpu_memory(False if args.no_retain_cpu_memory else None)
    cfg = merge_args(Config.fromfile(args.config), args)
    check_config(cfg, args.config)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
