# Copyright (c) scrim-mm contributors. All rights reserved.
from .cpl_neck import CPLNeck, CPLOutput
from .osme import OSME

__all__ = ['CPLNeck', 'CPLOutput', 'OSME']
