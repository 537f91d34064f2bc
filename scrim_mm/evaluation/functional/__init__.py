# Copyright (c) scrim-mm contributors. All rights reserved.
from .region_hits import (
    box_centres,
    object_hits,
    part_distances,
    part_hits,
    points_in_boxes,
    random_derangement,
    select_stage_regions,
)

__all__ = [
    'box_centres',
    'object_hits',
    'part_distances',
    'part_hits',
    'points_in_boxes',
    'random_derangement',
    'select_stage_regions',
]
