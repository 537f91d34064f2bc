# Copyright (c) scrim-mm contributors. All rights reserved.
"""Draw the regions SCRIM mines in images.

Usage::

    python tools/visualize_regions.py CONFIG CHECKPOINT IMAGE_OR_FOLDER
        --out-dir DIR [--device cpu] [--batch-size 8] [--display-size 320]
        [--palette]

Writes ``DIR/<image stem>.png`` per image (a folder is searched
recursively): the selected FPL regions of both stages on the original image
(one colour per stage, the navigator score at each box), the CPL
part-attention maps as heat maps beside it, and the predicted class with
its score in the title. ``scrim_mm.visualization.draw_regions`` does the
drawing; ``tools/test.py --show-dir DIR`` draws the same for a test set.
"""

import argparse
from typing import List, Optional, Sequence

import _bootstrap  # noqa: F401  (the repository root on sys.path)

from scrim_mm.apis import SCRIMInferencer, list_images


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Draw the FPL regions and CPL attentions of SCRIM'
    )
    parser.add_argument('config', help='config file or model name')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('inputs', help='an image file or a folder')
    parser.add_argument(
        '--out-dir', required=True, help='folder of the pictures'
    )
    parser.add_argument(
        '--device', default=None, help='e.g. cpu or cuda:0 (default: auto)'
    )
    parser.add_argument(
        '--batch-size', type=int, default=8, help='images per forward pass'
    )
    parser.add_argument(
        '--display-size',
        type=int,
        default=320,
        help='shorter side (pixels) the images are drawn at',
    )
    parser.add_argument(
        '--palette',
        action='store_true',
        help='write 256-colour PNGs (several times smaller)',
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(
            f'--batch-size {args.batch_size}: expected a positive integer.'
        )
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    """Entry point.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.

    Returns:
        list[dict]: One result per image (see :class:`SCRIMInferencer`),
        ``visualization`` the picture written.
    """
    args = parse_args(argv)
    images = list_images(args.inputs)
    inferencer = SCRIMInferencer(
        args.config, pretrained=args.checkpoint, device=args.device
    )
    results = inferencer(
        images,
        batch_size=args.batch_size,
        show_dir=args.out_dir,
        display_size=args.display_size,
        palette=args.palette,
        topk=1,
    )
    for result in results:
        print(
            f'{result["visualization"]}: {result.get("pred_class")} '
            f'({result["pred_score"]:.3f}), '
            f'{len(result.get("regions", []))} regions'
        )
    return results


if __name__ == '__main__':
    main()
