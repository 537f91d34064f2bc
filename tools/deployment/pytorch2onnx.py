# Copyright (c) scrim-mm contributors. All rights reserved.
"""Export a SCRIM checkpoint to ONNX and check it with onnxruntime.

Usage::

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT
        --out model.onnx [--input-size H W] [--dynamic-batch] [--opset 18]
        [--benchmark ITERS] [--cfg-options KEY=VALUE ...]

The graph holds the whole test-mode model: backbone, CPL necks,
navigators, the anchors of the input size, hard NMS, the crops
(``RoiAlign``), their re-encoding and the fusion head. Input ``inputs``
(B, 3, H, W) float32, normalised as the data preprocessor gives it;
outputs ``scores``, ``boxes``, ``box_scores``, ``box_stages`` (see
``scrim_mm.deployment.SCRIMExportWrapper``). The test pipeline,
normalisation, class and stage names go into the file's metadata.

After the export the file is run with onnxruntime on the config's test
images (random inputs when there are none) at batch 1, and at batch 4 with
``--dynamic-batch``; the largest differences from PyTorch are printed and
the exit status is 1 when they exceed the tolerances (scores 1e-4, boxes
0.5 px, same top-1 and box order). ``--benchmark N`` also prints the
median latency of onnxruntime against PyTorch at batch 1 (N timed runs).
Needs ``pip install -e .[deploy]``.
"""

import argparse
import os.path as osp
import sys
from typing import List, Optional

import _bootstrap  # noqa: F401,E402  (the repository root on sys.path)
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from scrim_mm.apis import get_scrim_model  # noqa: E402
from scrim_mm.deployment import (  # noqa: E402
    BOX_TOL,
    DEFAULT_OPSET,
    SCORE_TOL,
    ONNXRuntimeSCRIM,
    build_metadata,
    compare_outputs,
    export_onnx,
    input_size_from_config,
    latency_ratio,
    parity_ok,
    sample_inputs,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Export SCRIM to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument(
        '--input-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size (default: what the test pipeline gives)',
    )
    parser.add_argument(
        '--dynamic-batch',
        action='store_true',
        help='symbolic batch dimension (default: batch 1)',
    )
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument(
        '--benchmark',
        type=int,
        default=0,
        metavar='ITERS',
        help='time onnxruntime against PyTorch at batch 1',
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status (0: parity holds)."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    size = tuple(args.input_size or input_size_from_config(cfg))
    model = get_scrim_model(cfg, pretrained=args.checkpoint, device='cpu')
    model.eval()
    export_onnx(
        model,
        args.out,
        size,
        dynamic_batch=args.dynamic_batch,
        opset=args.opset,
        metadata=build_metadata(cfg, model, size),
    )
    mib = osp.getsize(args.out) / 2**20
    print(
        f'Exported {args.out} ({mib:.1f} MiB, opset {args.opset}, '
        f'input {size[0]}x{size[1]}, batch '
        f'{"dynamic" if args.dynamic_batch else 1})'
    )
    runner = ONNXRuntimeSCRIM(args.out, num_threads=torch.get_num_threads())
    inputs, source = sample_inputs(cfg, model, size, num=4)
    print(f'onnxruntime against PyTorch on {source}:')
    ok = True
    batches = [inputs[:1], inputs] if args.dynamic_batch else [inputs[:1]]
    for batch in batches:
        diffs = compare_outputs(model, runner, batch)
        ok = ok and parity_ok(diffs)
        print(
            f'  batch {diffs["batch"]}: max |diff| scores '
            f'{diffs["scores"]:.2e}, boxes {diffs["boxes"]:.3f} px, '
            f'box scores {diffs["box_scores"]:.2e}; same top-1: '
            f'{diffs["same_top1"]}, same stages: {diffs["same_stages"]}'
        )
    print(
        'parity OK' if ok else 'PARITY FAILED',
        f'(tolerances: scores {SCORE_TOL}, boxes {BOX_TOL} px)',
    )
    if args.benchmark > 0:
        lat = latency_ratio(model, runner, inputs[:1], iters=args.benchmark)
        print(
            f'latency at batch 1 (median of {lat["iters"]}, '
            f'{torch.get_num_threads()} threads): PyTorch '
            f'{lat["torch_ms"]:.1f} ms, onnxruntime '
            f'{lat["onnxruntime_ms"]:.1f} ms, ratio {lat["ratio"]:.2f}'
        )
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
