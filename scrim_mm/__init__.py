# Copyright (c) scrim-mm contributors. All rights reserved.
"""scrim-mm: SCRIM fine-grained recognition as an mmpretrain plugin.

Importing this package registers every module of the plugin (models, data
samplers, transforms, hooks, optimizer wrappers) into mmpretrain's
registries, wraps mmengine's checkpoint loaders (see
:mod:`scrim_mm.engine.checkpoint_loader`) and adds the SCRIM configs of
``configs/scrim/metafile.yml`` to mmpretrain's model index, so that
``mmpretrain.apis.list_models('scrim*')`` and ``get_model('scrim_r50_cub')``
find them.
"""

from . import (  # noqa: F401
    apis,
    datasets,
    engine,
    evaluation,
    models,
    visualization,
)
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
