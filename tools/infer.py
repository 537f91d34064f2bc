# Copyright (c) scrim-mm contributors. All rights reserved.
"""Classify images with a trained SCRIM (or any mmpretrain) model.

Usage::

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_FOLDER [--topk 5]
        [--out results.json] [--device cpu] [--batch-size 8]
    python tools/infer.py --backend onnxruntime [CONFIG] MODEL.onnx
        IMAGE_OR_FOLDER [--topk 5] [--out results.json] [--batch-size 8]

``CONFIG`` is a config file or a model name of
``mmpretrain.list_models('scrim*')``. With ``--backend onnxruntime`` the
model is a file of ``tools/deployment/pytorch2onnx.py``, run by
onnxruntime; its test pipeline, normalisation and class names come from
the file's metadata, or from ``CONFIG`` when given. Both backends give the
same JSON (up to float rounding). A folder is searched recursively for
images. Prints the top-k classes with their scores per image (a progress
bar runs over the batches) and, with ``--out``, writes a JSON list with per
image: ``img_path``, ``pred_label``, ``pred_class``, ``pred_score``,
``topk`` and ``regions`` (the FPL regions in original-image pixels with
their stage and navigator score).
"""

import argparse
import json
import math
import numbers
import os
import os.path as osp
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
    parser = argparse.ArgumentParser(description='Classify images')
    parser.add_argument(
        'config',
        help='config file or model name (onnxruntime: optional, before '
        'the .onnx file)',
    )
    parser.add_argument(
        'checkpoint', help='checkpoint file or URL (onnxruntime: .onnx file)'
    )
    parser.add_argument('inputs', nargs='?', help='an image file or a folder')
    parser.add_argument(
        '--backend',
        choices=['pytorch', 'onnxruntime'],
        default='pytorch',
        help='run the PyTorch checkpoint or an exported ONNX file',
    )
    parser.add_argument(
        '--topk', type=int, default=5, help='classes to show per image'
    )
    parser.add_argument('--out', help='write the results to this JSON file')
    parser.add_argument(
        '--device', default=None, help='e.g. cpu or cuda:0 (default: auto)'
    )
    parser.add_argument(
        '--batch-size', type=int, default=8, help='images per forward pass'
    )
    args = parser.parse_args(argv)
    if args.inputs is None:
        if args.backend == 'pytorch':
            parser.error('expected CONFIG CHECKPOINT IMAGE_OR_FOLDER.')
        # onnxruntime with two positionals: MODEL.onnx IMAGE_OR_FOLDER.
        args.config, args.checkpoint, args.inputs = (
            None,
            args.config,
            args.checkpoint,
        )
    if args.topk < 1:
        parser.error(f'--topk {args.topk}: expected a positive integer.')
    if args.batch_size < 1:
        parser.error(
            f'--batch-size {args.batch_size}: expected a positive integer.'
        )
    return args


def _jsonable(value):
    """Plain JSON types; a non-finite number becomes None (null)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    return str(value)


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    """Entry point.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.

    Returns:
        list[dict]: One result per image, as written to ``--out``.
    """
    args = parse_args(argv)
    images = list_images(args.inputs)
    if args.backend == 'onnxruntime':
        from scrim_mm.deployment import SCRIMONNXInferencer

        cuda = str(args.device or 'cpu').startswith('cuda')
        providers = ['CPUExecutionProvider']
        if cuda:
            providers.insert(0, 'CUDAExecutionProvider')
        inferencer = SCRIMONNXInferencer(
            args.checkpoint, config=args.config, providers=providers
        )
    else:
        inferencer = SCRIMInferencer(
            args.config, pretrained=args.checkpoint, device=args.device
        )
    raw = inferencer(images, batch_size=args.batch_size, topk=args.topk)
    # The full score vector stays out: `topk` holds the best classes.
    results = [
        _jsonable({k: v for k, v in r.items() if k != 'pred_scores'})
        for r in raw
    ]
    for path, result in zip(images, raw):
        print(path)
        for rank, item in enumerate(result['topk'], 1):
            name = item['class'] if item['class'] is not None else '-'
            print(
                f'  {rank}. {name} (label {item["label"]}): '
                f'{item["score"]:.4f}'
            )
    if args.out:
        folder = osp.dirname(args.out)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=1)
        print(f'Results of {len(results)} images written to {args.out}')
    return results


if __name__ == '__main__':
    main()
