# Copyright (c) scrim-mm contributors. All rights reserved.
from .part_contrastive_loss import PartContrastiveLoss
from .part_diversity_loss import PartDiversityLoss
from .region_ranking_loss import RegionRankingLoss

__all__ = ['PartContrastiveLoss', 'PartDiversityLoss', 'RegionRankingLoss']
