# Copyright (c) scrim-mm contributors. All rights reserved.
"""Analyses of trained SCRIM models (imported on demand, not by the
package itself, since they build runners and data)."""

from .part_benchmark import (
    FINETUNE_TRAIN_PER_CLASS,
    PROTOCOLS,
    PartBenchmarkResult,
    cpl_peak_scores,
    format_part_benchmark,
    mean_result,
    plain_config,
    run_part_benchmark,
    run_protocols,
    summary_line,
    with_train_subset,
    worst_seed_diff,
    worst_seed_ratio,
)
from .pretrain import make_pretrained_backbone, with_pretrained_backbone

__all__ = [
    'FINETUNE_TRAIN_PER_CLASS',
    'PROTOCOLS',
    'PartBenchmarkResult',
    'cpl_peak_scores',
    'format_part_benchmark',
    'mean_result',
    'plain_config',
    'make_pretrained_backbone',
    'run_part_benchmark',
    'run_protocols',
    'summary_line',
    'with_pretrained_backbone',
    'with_train_subset',
    'worst_seed_diff',
    'worst_seed_ratio',
]
