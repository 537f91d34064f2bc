# Copyright (c) scrim-mm contributors. All rights reserved.
# The box mapping lives in ``scrim_mm.structures``; it is re-exported here
# for code written when it lived in this package.
from ..structures import (
    boxes_to_original,
    input_geometry,
    input_region,
    input_view,
)
from .attention_recorder import SCRIMAttentionRecorder
from .region_drawer import STAGE_COLORS, draw_regions, stage_name
from .region_visualization_hook import SCRIMRegionVisualizationHook

__all__ = [
    'SCRIMAttentionRecorder',
    'boxes_to_original',
    'input_geometry',
    'input_region',
    'input_view',
    'STAGE_COLORS',
    'draw_regions',
    'stage_name',
    'SCRIMRegionVisualizationHook',
]
