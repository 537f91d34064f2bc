# Copyright (c) scrim-mm contributors. All rights reserved.
"""Soak test: train SCRIM for many varied steps and check every loss.

Usage::

    python tools/analysis/soak.py [CONFIG] [--data-root DIR] [--iters 300]
        [--sizes 64 96 128 160] [--batch-sizes 1 2 3 4 6 8]
        [--mix-probs 0.4 0.4] [--eval-interval 50] [--device cpu|cuda]
        [--amp] [--seed 0] [--threads N] [--json FILE]
        [--cfg-options KEY=VALUE ...]

It builds the model and the optimizer wrapper of ``CONFIG`` (default: the
ResNet-18 demo, ``configs/scrim/scrim_r18_demo.py``, gradient clipping
included) and trains it on the images of the config's training set (the
demo CUB set is generated under ``--data-root`` when it is missing) for
``--iters`` steps, every step with

* a random input size from ``--sizes`` (multiples of 32, the FPL anchors
  need them) and a random batch size from ``--batch-sizes`` (1 included);
* a random resized crop, a horizontal flip and colour jitter per image;
* a batch drawn either class-balanced (pairs of one class, positives for
  the part-contrastive loss), from a single class, or uniformly;
* Mixup or CutMix (the model's ``train_cfg.augments``, one of them per
  batch with ``--mix-probs``, plain labels otherwise);

and every ``--eval-interval`` steps a prediction in eval mode. It reports,
per loss key (and the gradient norm), how many values were finite and
their minimum, mean and maximum, plus the non-finite predictions, boxes
outside the input and non-finite parameters at the end, and exits with
status 1 if anything was not finite.
"""

import argparse
import json
import math
import os.path as osp
import random
import sys
import time
from collections import defaultdict
from typing import Dict, List

import _bootstrap  # the repository root on sys.path
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS

from scrim_mm.utils import apply_amp

REPO_ROOT = _bootstrap.REPO_ROOT
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs', 'scrim', 'scrim_r18_demo.py')


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='SCRIM soak test')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument(
        '--data-root',
        help="training data root (default: the config's); a missing demo "
        'CUB set is generated there',
    )
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument(
        '--sizes', type=int, nargs='+', default=[64, 96, 128, 160]
    )
    parser.add_argument(
        '--batch-sizes', type=int, nargs='+', default=[1, 2, 3, 4, 6, 8]
    )
    parser.add_argument(
        '--mix-probs',
        type=float,
        nargs=2,
        default=[0.4, 0.4],
        help='probabilities of Mixup and CutMix per batch',
    )
    parser.add_argument('--eval-interval', type=int, default=50)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu'
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='fp16 (CUDA) or bf16 (CPU) mixed precision',
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--json', help='write the report here')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={}
    )
    args = parser.parse_args(argv)
    bad = [s for s in args.sizes if s <= 0 or s % 32]
    if bad:
        parser.error(f'--sizes must be positive multiples of 32, got {bad}')
    if min(args.batch_sizes) < 1:
        parser.error('--batch-sizes must be positive')
    return args


class Stats:
    """Count, non-finite count, min, max and mean of a stream of values."""

    def __init__(self) -> None:
        self.count = 0
        self.nonfinite = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Record one value."""
        self.count += 1
        if not math.isfinite(value):
            self.nonfinite += 1
            return
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def as_dict(self) -> dict:
        """The summary as a JSON-friendly dict."""
        finite = self.count - self.nonfinite
        return dict(
            count=self.count,
            nonfinite=self.nonfinite,
            min=self.min if finite else None,
            mean=self.total / finite if finite else None,
            max=self.max if finite else None,
        )


def build_pipelines(sizes: List[int]) -> Dict[int, object]:
    """One augmenting pipeline per input size."""
    pipelines = {}
    for size in sizes:
        transforms = [
            dict(type='LoadImageFromFile'),
            dict(
                type='RandomResizedCrop',
                scale=size,
                crop_ratio_range=(0.3, 1.0),
            ),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.4,
            ),
            dict(type='PackInputs'),
        ]
        built = [TRANSFORMS.build(t) for t in transforms]

        def run(info, built=built):
            for transform in built:
                info = transform(info)
            return info

        pipelines[size] = run
    return pipelines


def draw_batch(rng: random.Random, by_class, batch_size: int):
    """Indices of a batch: class-balanced, single-class or uniform."""
    classes = sorted(by_class)
    kind = rng.choice(('balanced', 'single', 'uniform'))
    if kind == 'single':
        members = by_class[rng.choice(classes)]
        return kind, [rng.choice(members) for _ in range(batch_size)]
    if kind == 'uniform':
        pool = [i for c in classes for i in by_class[c]]
        return kind, [rng.choice(pool) for _ in range(batch_size)]
    indices = []
    while len(indices) < batch_size:
        members = by_class[rng.choice(classes)]
        indices += [rng.choice(members) for _ in range(2)]
    return kind, indices[:batch_size]


def main(argv=None) -> int:
    """Run the soak test; return the exit status."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    if args.amp:
        apply_amp(cfg, cuda=args.device.startswith('cuda'))
    dataset_cfg = cfg.train_dataloader.dataset
    if args.data_root:
        dataset_cfg.data_root = args.data_root
    if not osp.isdir(dataset_cfg.data_root):
        from scrim_mm.datasets.demo import make_dataset

        make_dataset('cub', dataset_cfg.data_root)
    dataset_cfg.pipeline = []
    dataset_cfg.lazy_init = False
    probs = list(args.mix_probs)
    cfg.model.train_cfg = dict(
        augments=[
            dict(type='Mixup', alpha=0.8),
            dict(type='CutMix', alpha=1.0),
        ],
        probs=probs,
    )
    cfg.model.pop('init_cfg', None)

    # The initialisation report of every parameter is not what this is
    # about: log warnings only.
    MMLogger.get_instance('scrim_soak', log_level='WARNING')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(dataset_cfg)
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.to(args.device).train()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        pipelines = build_pipelines(args.sizes)
    hub = MessageHub.get_current_instance()

    by_class = defaultdict(list)
    for idx, label in enumerate(dataset.get_gt_labels()):
        by_class[int(label)].append(idx)
    rng = random.Random(args.seed)
    stats: Dict[str, Stats] = defaultdict(Stats)
    seen = defaultdict(int)
    problems = []
    start = time.time()
    for it in range(1, args.iters + 1):
        size = rng.choice(args.sizes)
        batch_size = rng.choice(args.batch_sizes)
        kind, indices = draw_batch(rng, by_class, batch_size)
        data = pseudo_collate(
            [pipelines[size](dataset.get_data_info(i)) for i in indices]
        )
        seen[f'size={size}'] += 1
        seen[f'batch={batch_size}'] += 1
        seen[f'draw={kind}'] += 1
        log_vars = model.train_step(data, optim_wrapper)
        for key, value in log_vars.items():
            value = float(torch.as_tensor(value).detach())
            stats[key].add(value)
            if not math.isfinite(value):
                problems.append(
                    f'iter {it}: {key}={value} (size {size}, '
                    f'batch {batch_size}, {kind})'
                )
        if 'train/grad_norm' in hub.log_scalars:
            stats['grad_norm'].add(hub.get_scalar('train/grad_norm').current())
        if args.eval_interval and it % args.eval_interval == 0:
            model.eval()
            with torch.no_grad():
                preds = model.test_step(data)
            model.train()
            for sample in preds:
                if not torch.isfinite(sample.pred_score).all():
                    problems.append(f'iter {it}: non-finite pred_score')
                boxes = sample.get('pred_boxes')
                if boxes is not None and (
                    not torch.isfinite(boxes).all()
                    or boxes.min() < 0
                    or boxes.max() > size
                ):
                    problems.append(f'iter {it}: boxes outside the input')
            seen['eval'] += 1
        if it % 25 == 0 or it == args.iters:
            rate = (time.time() - start) / it
            print(
                f'[{it}/{args.iters}] {rate:.2f} s/iter  '
                f'loss {float(log_vars["loss"].detach()):.4f}',
                flush=True,
            )
    bad_params = [
        name
        for name, param in model.named_parameters()
        if not torch.isfinite(param).all()
    ]
    problems += [f'non-finite parameter {name}' for name in bad_params]

    report = dict(
        config=osp.relpath(args.config, REPO_ROOT),
        iters=args.iters,
        seconds=round(time.time() - start, 1),
        device=args.device,
        amp=args.amp,
        seed=args.seed,
        draws=dict(sorted(seen.items())),
        losses={k: s.as_dict() for k, s in sorted(stats.items())},
        problems=problems,
    )
    print(
        f'\n{"key":<20}{"count":>7}{"non-fin":>9}{"min":>11}'
        f'{"mean":>11}{"max":>11}'
    )
    for key, item in report['losses'].items():
        cells = [
            f'{item[k]:>11.4f}' if item[k] is not None else f'{"-":>11}'
            for k in ('min', 'mean', 'max')
        ]
        print(
            f'{key:<20}{item["count"]:>7}{item["nonfinite"]:>9}'
            + ''.join(cells)
        )
    print('draws:', ', '.join(f'{k}: {v}' for k, v in report['draws'].items()))
    print(
        f'{args.iters} iterations in {report["seconds"]} s; '
        + (
            f'{len(problems)} PROBLEMS:\n' + '\n'.join(problems[:20])
            if problems
            else 'every loss, gradient norm, prediction and parameter '
            'stayed finite.'
        )
    )
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(report, f, indent=2)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
