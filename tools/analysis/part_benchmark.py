# Copyright (c) scrim-mm contributors. All rights reserved.
r"""Part benchmark: does SCRIM beat its plain backbone, and do its regions
land on the discriminative part? From scratch and fine-tuned.

Usage::

    python tools/analysis/part_benchmark.py CONFIG [--work-dir DIR]
        [--protocols scratch finetune] [--init CHECKPOINT]
        [--finetune-train-per-class N] [--data-root DIR] [--epochs N]
        [--seeds S [S ...]]
        [--ann-format demo|cub] [--no-make-data] [--threads N]
        [--cfg-options KEY=VALUE ...]

    e.g. CONFIG = configs/scrim/scrim_r18_hard-demo.py

Trains the SCRIM config and its plain twin (mmpretrain's ``ImageClassifier``
with the same backbone, ``GlobalAveragePooling`` and ``LinearClsHead``) with
the same data, pipeline, epochs, optimizer and seed through mmengine's
Runner, once per seed (``--seeds``, default ``0 1 2``), in two protocols:

- ``scratch``: both from random weights;
- ``finetune``: both from the same pretrained backbone, ``--init
  CHECKPOINT``, or by default the plain backbone trained once on the demo
  generator's pretraining set (gratings on discs: no class or mark of the
  hard set) and cached under ``<work-dir>/pretrain``; both train on the
  first ``--finetune-train-per-class`` images of each class (default 20).

It prints the machine that made the figures
(``scrim_mm.utils.describe_machine``: CPU, L2 cache, torch build, the GPU
if CUDA is available, threads; the CPU runs are deterministic on one
machine only), the tables of ``scrim_mm.analysis.format_part_benchmark``
per protocol, and last one line per protocol::

    part-benchmark protocol=<p> scrim_top1=<x> plain_top1=<y> \\
        worst_seed_diff=<d> hit_<stage>=<h> chance_<stage>=<c> \\
        worst_seed_ratio_<stage>=<r> ...   (one line)

When the config's data root is a demo set that does not exist yet, it is
written first (``--difficulty hard`` for a data root ending in ``hard``).
"""

import argparse
import os.path as osp
from typing import Optional, Sequence

import _bootstrap  # noqa: F401,E402  (the repository root on sys.path)
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from scrim_mm.analysis.part_benchmark import (  # noqa: E402
    FINETUNE_TRAIN_PER_CLASS,
)

DEFAULT_SEEDS = (0, 1, 2)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a SCRIM config')
    parser.add_argument(
        '--work-dir',
        help='where both runs go (default: work_dirs/part_benchmark/<name>)',
    )
    parser.add_argument(
        '--protocols',
        nargs='+',
        choices=('scratch', 'finetune'),
        default=['scratch', 'finetune'],
        help='from random weights, from a pretrained backbone, or both '
        '(default: both)',
    )
    parser.add_argument(
        '--init',
        help='checkpoint with backbone.* weights that both models start '
        'from in the finetune protocol (default: pretrain one on the '
        'pretraining set, once, and reuse it)',
    )
    parser.add_argument(
        '--finetune-train-per-class',
        type=int,
        default=FINETUNE_TRAIN_PER_CLASS,
        help='training images per class in the finetune protocol, the '
        'first of each class; 0 takes the whole split (default: '
        f'{FINETUNE_TRAIN_PER_CLASS}, the order of CUB: all 60 of the hard '
        'set leave the pretrained plain model at 95-100 %%)',
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
        '--threads',
        type=int,
        help='torch threads of every run (default: torch own count)',
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
        run_protocols,
        summary_line,
    )
    from scrim_mm.analysis.pretrain import pretrained_top1
    from scrim_mm.utils import describe_machine

    cfg = Config.fromfile(args.config)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if not args.no_make_data:
        ensure_demo_data(cfg)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'part_benchmark', name)
    results = run_protocols(
        cfg,
        work_dir,
        protocols=args.protocols,
        init=args.init,
        finetune_train_per_class=args.finetune_train_per_class or None,
        epochs=args.epochs,
        seeds=args.seeds,
        ann_format=args.ann_format,
    )
    print(f'\nmachine: {describe_machine()}')
    for protocol, result in results.items():
        print(f'\n## protocol: {protocol}\n')
        if protocol == 'finetune':
            top1 = pretrained_top1(osp.join(work_dir, 'pretrain'))
            source = args.init or osp.join(work_dir, 'pretrain')
            note = '' if top1 is None else f' (pretraining top-1 {top1:.1f})'
            per_class = args.finetune_train_per_class
            subset = (
                f', train on the first {per_class} images per class'
                if per_class
                else ''
            )
            print(f'both models start from {source}{note}{subset}\n')
        print(format_part_benchmark(result))
    print()
    for protocol, result in results.items():
        print(summary_line(result, protocol))


if __name__ == '__main__':
    main()
