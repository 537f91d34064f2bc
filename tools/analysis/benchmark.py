# Copyright (c) scrim-mm contributors. All rights reserved.
"""Benchmark SCRIM against a plain classifier on the same backbone.

Usage::

    python tools/analysis/benchmark.py CONFIG [--baseline CONFIG]
        [--input-size 448] [--batch-size 2] [--device cpu|cuda] [--amp]
        [--compile] [--iters 5] [--warmup 2] [--profile-iters 1]
        [--no-channels-last] [--no-retain-cpu-memory] [--threads N]
        [--json FILE] [--onnxruntime] [--cfg-options KEY=VALUE ...]

With no option it measures what ``tools/train.py`` and ``tools/test.py``
run with no option: the config's model with its defaults (channels-last
for SCRIM), CPU memory retention on, torch's own thread count. In one
process, on random images and random weights, it reports for SCRIM and the
baseline (by default mmpretrain's ``ImageClassifier`` on the SCRIM backbone
with ``GlobalAveragePooling`` and ``LinearClsHead``) the median time of an
inference step (``test_step``) and of a training step (``train_step`` with
the config's optimizer wrapper), images per second, CPU time, peak memory,
FLOPs per image, the SCRIM / baseline ratios and where a SCRIM step spends
its time. :mod:`scrim_mm.benchmark` does the work.
"""

import argparse
import json
import os
from typing import List, Optional

import _bootstrap  # noqa: F401  (the repository root on sys.path)

# The profiler's tracing library logs a harmless error per profile on
# machines without a GPU; keep its messages to fatal ones.
os.environ.setdefault('KINETO_LOG_LEVEL', '5')

from mmengine.config import DictAction  # noqa: E402

from scrim_mm.benchmark import (  # noqa: E402
    BenchmarkOptions,
    format_report,
    run_benchmark,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (List[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(
        description='Time, memory and FLOPs of SCRIM against its baseline'
    )
    parser.add_argument('config', help='the SCRIM config file')
    parser.add_argument(
        '--baseline',
        help='config of the baseline model; default: the SCRIM config '
        'backbone with GlobalAveragePooling and LinearClsHead',
    )
    parser.add_argument('--input-size', type=int, default=448)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision as tools/train.py --amp: fp16 autocast and '
        'loss scaling on CUDA, bf16 autocast on the CPU',
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile the steps as tools/train.py --compile does',
    )
    parser.add_argument(
        '--iters', type=int, default=5, help='timed steps per model and mode'
    )
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed steps before timing'
    )
    parser.add_argument(
        '--profile-iters',
        type=int,
        default=1,
        help='profiled steps for the per-part shares (0: no profile)',
    )
    parser.add_argument(
        '--channels-last',
        action=argparse.BooleanOptionalAction,
        default=None,
        help="memory format of both models; default: the config's own "
        '(SCRIMClassifier: channels-last)',
    )
    parser.add_argument(
        '--retain-cpu-memory',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='glibc: keep freed memory in the heap, as the tools do by '
        'default (off with --no-retain-cpu-memory or '
        'SCRIM_RETAIN_CPU_MEMORY=0)',
    )
    parser.add_argument(
        '--threads',
        type=int,
        help="torch intra-op threads (CPU); default: torch's own",
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--onnxruntime',
        action='store_true',
        help='also time the SCRIM model exported to ONNX on onnxruntime '
        'against PyTorch at batch 1 (CPU; needs pip install -e .[deploy])',
    )
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override keys of the SCRIM config, e.g. '
        'model.fpl_head.num_train_parts=4',
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point: run, print the report, optionally write JSON.

    Args:
        argv (List[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        dict: The results of :func:`scrim_mm.benchmark.run_benchmark`.
    """
    args = vars(parse_args(argv))
    out = args.pop('json')
    try:
        opts = BenchmarkOptions(**args)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    res = run_benchmark(opts)
    print(format_report(res), flush=True)
    if out:
        with open(out, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
