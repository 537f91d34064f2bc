# Copyright (c) scrim-mm contributors. All rights reserved.
from .checkpoint_check import check_checkpoint_keys
from .config_check import check_config
from .run_config import (
    add_rng_state_hook,
    apply_amp,
    set_dataloader_defaults,
    set_work_dir,
    use_scrim_image_loader,
)
from .tta_config import default_tta_pipeline, use_tta

__all__ = [
    'check_checkpoint_keys',
    'check_config',
    'apply_amp',
    'set_dataloader_defaults',
    'set_work_dir',
    'use_scrim_image_loader',
    'add_rng_state_hook',
    'default_tta_pipeline',
    'use_tta',
]
