# Copyright (c) scrim-mm contributors. All rights reserved.
from .class_balanced_batch_sampler import SCRIMClassBalancedBatchSampler

__all__ = ['SCRIMClassBalancedBatchSampler']
