# Copyright (c) scrim-mm contributors. All rights reserved.
from .checkpoint_check import check_checkpoint_keys
from .config_check import check_config
from .cpu_memory import RETAIN_CPU_MEMORY_ENV, retain_cpu_memory
from .machine import describe_machine
from .run_config import (
    add_rng_state_hook,
    apply_amp,
    set_dataloader_defaults,
    set_work_dir,
    use_scrim_image_loader,
)
from .torch_compile import (
    SAFE_BACKEND,
    apply_compile,
    compile_steps,
    eager_fallbacks,
)
from .tta_config import default_tta_pipeline, use_tta

__all__ = [
    'check_checkpoint_keys',
    'check_config',
    'describe_machine',
    'apply_amp',
    'apply_compile',
    'compile_steps',
    'eager_fallbacks',
    'retain_cpu_memory',
    'RETAIN_CPU_MEMORY_ENV',
    'SAFE_BACKEND',
    'set_dataloader_defaults',
    'set_work_dir',
    'use_scrim_image_loader',
    'add_rng_state_hook',
    'default_tta_pipeline',
    'use_tta',
]
