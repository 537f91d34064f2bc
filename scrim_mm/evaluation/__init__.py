# Copyright (c) scrim-mm contributors. All rights reserved.
from .functional import (
    box_centres,
    object_hits,
    part_distances,
    part_hits,
    points_in_boxes,
    random_derangement,
    select_stage_regions,
)
from .metrics import PartHitRate

__all__ = [
    'PartHitRate',
    'box_centres',
    'object_hits',
    'part_distances',
    'part_hits',
    'points_in_boxes',
    'random_derangement',
    'select_stage_regions',
]
