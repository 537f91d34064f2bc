# Copyright (c) scrim-mm contributors. All rights reserved.
from .class_balanced_sampler import SCRIMClassBalancedSampler

__all__ = ['SCRIMClassBalancedSampler']
