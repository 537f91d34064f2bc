# Copyright (c) scrim-mm contributors. All rights reserved.
from .loading import SCRIMLoadImageFromFile, truncation_reason

__all__ = ['SCRIMLoadImageFromFile', 'truncation_reason']
