# Copyright (c) scrim-mm contributors. All rights reserved.
"""Test (evaluate) a checkpoint with mmengine's Runner.

Usage follows mmpretrain's ``tools/test.py``::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--out-item {metrics,pred}] [--show-dir DIR] [--amp] [--compile]
        [--tta] [--no-retain-cpu-memory] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

``--tta`` tests with test-time augmentation, as mmpretrain's test.py: the
config's ``tta_model`` (SCRIM configs: ``SCRIMAverageClsScoreTTA``, the
average of the class scores, regions of the un-flipped view) wraps the
model and ``tta_pipeline`` (SCRIM configs: the test pipeline and its
horizontal flip) replaces the test pipeline; a config without them gets
these defaults.

Unlike a plain ``load_from``, the checkpoint must match the model: a
checkpoint of another architecture is refused with the list of missing and
unexpected keys instead of a silent partial load.
"""

import argparse
import os

import _bootstrap  # noqa: F401  (the repository root on sys.path)
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from scrim_mm.utils import (
    apply_compile,
    check_checkpoint_keys,
    check_config,
    compile_steps,
    retain_cpu_memory,
    set_dataloader_defaults,
    set_work_dir,
    use_scrim_image_loader,
    use_tta,
)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the metrics file goes')
    parser.add_argument('--out', help='dump predictions or metrics here')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        default='pred',
        help='what --out holds (default: the predictions)',
    )
    parser.add_argument(
        '--show-dir',
        help='save a picture of the mined regions of every test image here',
    )
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='with --show-dir, draw every N-th test image',
    )
    parser.add_argument(
        '--amp', action='store_true', help='test with mixed precision'
    )
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation (tta_model / tta_pipeline)',
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help="torch.compile the test step (mmengine's compile config); a "
        'part that cannot be compiled runs eagerly, with a message',
    )
    parser.add_argument(
        '--no-retain-cpu-memory',
        action='store_true',
        help="leave glibc's malloc as it is (by default freed memory is "
        'kept for reuse; SCRIM_RETAIN_CPU_MEMORY=0 also turns it off)',
    )
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='disable pin_memory in the dataloader',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. test_dataloader.batch_size=4',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command-line options into the config."""
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.amp:
        cfg.setdefault('test_cfg', {})
        cfg.test_cfg.fp16 = True
    if args.show_dir is not None:
        cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + [
            dict(
                type='SCRIMRegionVisualizationHook',
                out_dir=args.show_dir,
                interval=args.interval,
            )
        ]
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    apply_compile(cfg, args.compile)
    use_scrim_image_loader(cfg)
    set_dataloader_defaults(
        cfg,
        'test_dataloader',
        pin_memory=not args.no_pin_memory,
        persistent_workers=False,
    )
    return cfg


def format_metrics(metrics: dict) -> str:
    """One line such as ``accuracy/top1: 58.33``."""
    return ', '.join(
        f'{key}: {value:.2f}'
        if isinstance(value, float)
        else f'{key}: {value}'
        for key, value in metrics.items()
    )


def main(argv=None) -> dict:
    """Entry point; returns the metrics."""
    args = parse_args(argv)
    retain_cpu_memory(False if args.no_retain_cpu_memory else None)
    cfg = merge_args(Config.fromfile(args.config), args)
    check_config(cfg, args.config, train=False)
    if args.tta:
        use_tta(cfg)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    check_checkpoint_keys(runner.model, args.checkpoint)
    # mmengine's Runner compiles only the training step.
    compile_steps(runner.model, ('test_step',), cfg.get('compile', None))
    if args.out and args.out_item == 'pred':
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out)
        )
    metrics = runner.test()
    if args.out and args.out_item == 'metrics':
        import mmengine

        mmengine.dump(metrics, args.out)
    print(f'Test metrics of {args.checkpoint}: {format_metrics(metrics)}')
    return metrics


if __name__ == '__main__':
    main()
