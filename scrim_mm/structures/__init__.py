# Copyright (c) scrim-mm contributors. All rights reserved.
"""Data structures shared by the packages: image geometry, box mapping."""

from .box_mapping import (
    boxes_to_original,
    input_geometry,
    input_region,
    input_view,
)

__all__ = [
    'boxes_to_original',
    'input_geometry',
    'input_region',
    'input_view',
]
