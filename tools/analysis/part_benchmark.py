# Copyright (c) scrim-mm contributors. All rights reserved.
r"""Part benchmark: does SCRIM beat its plain backbone, and do its regions
land on the discriminative part?

Usage::

    python tools/analysis/part_benchmark.py CONFIG [--work-dir DIR]
        [--data-root DIR] [--epochs N] [--seeds S [S ...]]
        [--ann-format demo|cub]
        [--no-make-data] [--threads N] [--cfg-options KEY=VALUE ...]

    e.g. CONFIG = configs/scrim/scrim_r18_hard-demo.py

Trains the SCRIM config and its plain twin (mmpretrain's ``ImageClassifier``
with the same backbone, ``GlobalAveragePooling`` and ``LinearClsHead``) with
the same data, pipeline, epochs, optimizer and seed through mmengine's
Runner, scores both on the test split and prints the tables of
``scrim_mm.analysis.format_part_benchmark``. Training from scratch on a
few hundred images swings top-1 by tens of points from one seed to the
next, so both models are trained once per seed (``--seeds``, default
``0 1 2``) and the figures are the means. The last line is::

    part-benchmark scrim_top1=<x> plain_top1=<y> \\
        hit_<stage>=<h> chance_<stage>=<c> ...   (one line)

When the config's data root is a demo set that does not exist yet, it is
written first (``--difficulty hard`` for a data root ending in ``hard``).
"""

import argparse
import os.path as osp
from typing import Optional, Sequence

import _bootstrap  # noqa: F401,E402  (the repository root on sys.path)
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

DEFAULT_SEEDS = (0, 1, 2)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a SCRIM config')
    parser.add_argument(
        '--work-dir',
        help='where both runs go (default: work_dirs/part_benchmark/<name>)',
    )
    parser.add_argument(
        '--data-root', help='override the data root of every split'
    )
    parser.add_argument('--epochs', type=int, help='override the epochs')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=list(DEFAULT_SEEDS),
        help='train both models once per seed and report the means '
        f'(default: {" ".join(map(str, DEFAULT_SEEDS))})',
    )
    parser.add_argument(
        '--ann-format',
        choices=('demo', 'cub'),
        help='annotation format (default: the config PartHitRate, or guess)',
    )
    parser.add_argument(
        '--no-make-data',
        action='store_true',
        help='do not write a missing demo data set',
    )
    parser.add_argument(
        '--threads', type=int, help='torch threads (default: torch own)'
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (both models), key=value',
    )
    return parser.parse_args(argv)


def set_data_root(cfg: Config, data_root: str) -> None:
    """Point every split and the part metric at another data root."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            loader.dataset.data_root = data_root
        evaluators = cfg.get(f'{split}_evaluator') or []
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for evaluator in evaluators:
            if evaluator.get('type') == 'PartHitRate':
                evaluator['data_root'] = data_root


def ensure_demo_data(cfg: Config) -> None:
    """Write the config's demo data set if its folder does not exist."""
    from scrim_mm.datasets.demo import make_dataset

    root = cfg.test_dataloader.dataset.data_root
    if osp.isdir(root):
        return
    difficulty = 'hard' if root.rstrip('/').endswith('hard') else 'easy'
    print(f'part-benchmark: writing the {difficulty} demo set to {root}')
    make_dataset('cub', root, difficulty=difficulty)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from scrim_mm.analysis import (
        format_part_benchmark,
        run_part_benchmark,
        summary_line,
    )

    cfg = Config.fromfile(args.config)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if not args.no_make_data:
        ensure_demo_data(cfg)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'part_benchmark', name)
    result = run_part_benchmark(
        cfg,
        work_dir,
        epochs=args.epochs,
        seeds=args.seeds,
        ann_format=args.ann_format,
    )
    print(format_part_benchmark(result))
    print(summary_line(result))


if __name__ == '__main__':
    main()
