# Copyright (c) scrim-mm contributors. All rights reserved.
from .anchors import (
    MAX_REGION_FRAC,
    fit_anchor_levels,
    generate_anchors,
    input_size_problem,
    per_level,
)
from .attention import part_attention_maps
from .crop_norm_stats import CropNormStats
from .crops import crop_regions
from .navigator import Navigator
from .nms import batched_hard_nms
from .targets import unpack_targets

__all__ = [
    'CropNormStats',
    'MAX_REGION_FRAC',
    'fit_anchor_levels',
    'generate_anchors',
    'input_size_problem',
    'per_level',
    'batched_hard_nms',
    'crop_regions',
    'Navigator',
    'part_attention_maps',
    'unpack_targets',
]
