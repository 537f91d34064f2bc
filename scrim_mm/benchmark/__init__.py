# Copyright (c) scrim-mm contributors. All rights reserved.
"""Time, memory and FLOPs of SCRIM against a plain classifier.

``tools/analysis/benchmark.py`` is the command line of this package; see
:func:`run_benchmark` for what is measured. Not imported by ``scrim_mm``
itself: ``import scrim_mm.benchmark`` when it is needed.
"""

from .flops import count_flops
from .memory import peak_memory, tensor_bytes
from .models import (
    build_model,
    default_baseline_cfg,
    load_model_cfg,
    make_optim_wrapper,
    strip_init,
)
from .parts import (
    OVERHEAD_PARTS,
    PARTS,
    part_ranges,
    part_shares,
    profile_parts,
)
from .report import format_report
from .runner import BenchmarkOptions, run_benchmark
from .steps import make_batch, make_steps, time_steps

__all__ = [
    'BenchmarkOptions',
    'OVERHEAD_PARTS',
    'PARTS',
    'build_model',
    'count_flops',
    'default_baseline_cfg',
    'format_report',
    'load_model_cfg',
    'make_batch',
    'make_optim_wrapper',
    'make_steps',
    'part_ranges',
    'part_shares',
    'peak_memory',
    'profile_parts',
    'run_benchmark',
    'strip_init',
    'tensor_bytes',
    'time_steps',
]
