# Copyright (c) scrim-mm contributors. All rights reserved.
from .rng_state_hook import SCRIMRNGStateHook, get_rng_states, set_rng_states

__all__ = ['SCRIMRNGStateHook', 'get_rng_states', 'set_rng_states']
