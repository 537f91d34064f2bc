# Copyright (c) scrim-mm contributors. All rights reserved.
"""scrim-mm: SCRIM fine-grained recognition as an mmpretrain plugin.

Importing this package registers every module of the plugin (models, data
samplers, checkpoint loader) into mmpretrain's and mmengine's registries.
"""

from . import apis, datasets, engine, models, visualization  # noqa: F401
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
