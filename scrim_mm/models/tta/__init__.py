# Copyright (c) scrim-mm contributors. All rights reserved.
from .scrim_score_tta import SCRIMAverageClsScoreTTA

__all__ = ['SCRIMAverageClsScoreTTA']
