# Copyright (c) scrim-mm contributors. All rights reserved.
from .anchors import generate_anchors, num_anchors_per_level
from .attention import part_attention_maps, part_diversity
from .crop_norm_stats import CropNormStats
from .crops import crop_regions
from .navigator import Navigator
from .nms import batched_hard_nms
from .targets import unpack_targets

__all__ = [
    'CropNormStats',
    'generate_anchors',
    'num_anchors_per_level',
    'batched_hard_nms',
    'crop_regions',
    'Navigator',
    'part_attention_maps',
    'part_diversity',
    'unpack_targets',
]
