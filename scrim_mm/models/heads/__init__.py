# Copyright (c) scrim-mm contributors. All rights reserved.
from .fpl_head import FPLHead
from .scrim_head import SCRIMHead

__all__ = ['FPLHead', 'SCRIMHead']
