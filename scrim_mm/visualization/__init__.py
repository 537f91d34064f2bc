# Copyright (c) scrim-mm contributors. All rights reserved.
from .attention_recorder import SCRIMAttentionRecorder
from .box_mapping import (
    boxes_to_original,
    input_geometry,
    input_region,
    input_view,
)
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
