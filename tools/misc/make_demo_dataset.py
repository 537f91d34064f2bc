# Copyright (c) scrim-mm contributors. All rights reserved.
"""Write a small synthetic fine-grained data set in a real benchmark layout.

A command line for :func:`scrim_mm.datasets.demo.make_dataset`, which
documents the images, the layouts (``cub``, ``cars``, ``aircraft``) and
the files written. ``--difficulty easy`` (default): the classes differ in
the shape, colour and texture of a small mark on a bird-like object;
``--difficulty hard``: only in the texture of a same-looking mark, among
look-alike distractor marks (defaults: 6 classes, 128 px).

Example::

    python tools/misc/make_demo_dataset.py --layout all --out data/demo
    # -> data/demo/cub, data/demo/cars, data/demo/aircraft
    python tools/misc/make_demo_dataset.py --difficulty hard \
        --out data/demo_hard_cub
"""

import argparse
import os.path as osp
from typing import Optional, Sequence

import _bootstrap  # noqa: F401,E402  (the repository root on sys.path)

# ``class_names``, ``is_complete`` and the file names stay importable from
# this module for older callers.
from scrim_mm.datasets.demo import (  # noqa: E402,F401
    DIFFICULTIES,
    DIFFICULTY_DEFAULTS,
    LAYOUTS,
    MANIFEST_FILE,
    PARTS_FILE,
    class_names,
    is_complete,
    make_dataset,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Write a small synthetic fine-grained data set in the '
        'folder layout of CUB-200-2011, Stanford Cars or FGVC-Aircraft.'
    )
    parser.add_argument(
        '--layout',
        choices=LAYOUTS + ('all',),
        default='cub',
        help='the benchmark layout to write (default: cub)',
    )
    parser.add_argument(
        '--out',
        default=None,
        help='the data root for one layout; with --layout all, the folder '
        'that receives cub/, cars/ and aircraft/ (default: data/demo/<layout>'
        ' and data/demo)',
    )
    parser.add_argument(
        '--difficulty',
        choices=DIFFICULTIES,
        default='easy',
        help='easy: classes differ in shape, colour and texture of a mark; '
        'hard: only in its texture, among look-alike distractors '
        '(default: easy)',
    )
    easy, hard = DIFFICULTY_DEFAULTS['easy'], DIFFICULTY_DEFAULTS['hard']
    parser.add_argument(
        '--num-classes',
        type=int,
        default=None,
        help=f'default: {easy["num_classes"]} (easy), '
        f'{hard["num_classes"]} (hard)',
    )
    parser.add_argument(
        '--train-per-class',
        type=int,
        default=60,
        help='training (trainval) images per class',
    )
    parser.add_argument(
        '--test-per-class', type=int, default=20, help='test images per class'
    )
    parser.add_argument(
        '--img-size',
        type=int,
        default=None,
        help=f'default: {easy["img_size"]} (easy), {hard["img_size"]} (hard)',
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--force',
        action='store_true',
        help='write the data set again even when it is complete',
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command line tool.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.
    """
    args = parse_args(argv)
    if args.layout == 'all':
        parent = args.out or osp.join('data', 'demo')
        targets = [(layout, osp.join(parent, layout)) for layout in LAYOUTS]
    else:
        targets = [
            (args.layout, args.out or osp.join('data', 'demo', args.layout))
        ]
    for layout, out in targets:
        make_dataset(
            layout,
            out,
            num_classes=args.num_classes,
            train_per_class=args.train_per_class,
            test_per_class=args.test_per_class,
            img_size=args.img_size,
            seed=args.seed,
            force=args.force,
            verbose=True,
            difficulty=args.difficulty,
        )


if __name__ == '__main__':
    main()
