# Copyright (c) scrim-mm contributors. All rights reserved.
from .checkpoint_loader import (
    MMENGINE_CHECKPOINT_GLOBALS,
    mmengine_checkpoint_globals,
    register_checkpoint_loaders,
)
from .hooks import SCRIMRNGStateHook
from .optim_wrappers import (
    BranchGradClipper,
    SCRIMCPUAmpOptimWrapper,
    SCRIMOptimWrapperConstructor,
)

__all__ = [
    'BranchGradClipper',
    'SCRIMOptimWrapperConstructor',
    'MMENGINE_CHECKPOINT_GLOBALS',
    'mmengine_checkpoint_globals',
    'register_checkpoint_loaders',
    'SCRIMCPUAmpOptimWrapper',
    'SCRIMRNGStateHook',
]
