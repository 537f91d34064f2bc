# Copyright (c) scrim-mm contributors. All rights reserved.
from .part_hit_rate import PartHitRate

__all__ = ['PartHitRate']
