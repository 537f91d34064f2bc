# Copyright (c) scrim-mm contributors. All rights reserved.
from .cpu_amp_optim_wrapper import SCRIMCPUAmpOptimWrapper

__all__ = ['SCRIMCPUAmpOptimWrapper']
