# Copyright (c) scrim-mm contributors. All rights reserved.
"""Inference with SCRIM through mmpretrain's API.

Importing it registers the SCRIM configs (``configs/scrim/metafile.yml``)
in mmpretrain's model index, so ``mmpretrain.list_models('scrim*')`` lists
them and ``mmpretrain.get_model('scrim_r50_cub', pretrained=CKPT)`` builds
one by name.
"""

from .demo_app import (
    SCRIMDemo,
    check_demo_sources,
    config_examples,
    read_demo_image,
)
from .inputs import IMAGE_EXTENSIONS, list_images
from .model import config_classes, get_scrim_model
from .model_index import METAFILE, find_metafile, register_scrim_models
from .scrim_inferencer import SCRIMInferencer

register_scrim_models()

__all__ = [
    'IMAGE_EXTENSIONS',
    'list_images',
    'config_classes',
    'get_scrim_model',
    'METAFILE',
    'find_metafile',
    'register_scrim_models',
    'SCRIMInferencer',
    'SCRIMDemo',
    'check_demo_sources',
    'config_examples',
    'read_demo_image',
]
