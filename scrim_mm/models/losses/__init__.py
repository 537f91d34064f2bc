# Copyright (c) scrim-mm contributors. All rights reserved.
from .part_contrastive_loss import PartContrastiveLoss
from .region_ranking_loss import RegionRankingLoss

__all__ = ['PartContrastiveLoss', 'RegionRankingLoss']
