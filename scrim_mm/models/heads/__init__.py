# Copyright (c) scrim-mm contributors. All rights reserved.
from .fpl_head import FPLHead, FPLOutput
from .scrim_head import SCRIMHead

__all__ = ['FPLHead', 'FPLOutput', 'SCRIMHead']
