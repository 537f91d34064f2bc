# Copyright (c) scrim-mm contributors. All rights reserved.
"""Analyses of trained SCRIM models (imported on demand, not by the
package itself, since they build runners and data)."""

from .part_benchmark import (
    PartBenchmarkResult,
    cpl_peak_scores,
    format_part_benchmark,
    mean_result,
    plain_config,
    run_part_benchmark,
    summary_line,
)

__all__ = [
    'PartBenchmarkResult',
    'cpl_peak_scores',
    'format_part_benchmark',
    'mean_result',
    'plain_config',
    'run_part_benchmark',
    'summary_line',
]
