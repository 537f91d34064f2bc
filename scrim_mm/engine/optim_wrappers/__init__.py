# Copyright (c) scrim-mm contributors. All rights reserved.
from .branch_grad_clipper import BranchGradClipper
from .cpu_amp_optim_wrapper import SCRIMCPUAmpOptimWrapper
from .scrim_optim_wrapper_constructor import SCRIMOptimWrapperConstructor

__all__ = [
    'BranchGradClipper',
    'SCRIMCPUAmpOptimWrapper',
    'SCRIMOptimWrapperConstructor',
]
