# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import Iterable, List

import torch.nn as nn
from mmengine.runner.checkpoint import _load_checkpoint

__all__ = ['check_checkpoint_keys']


def _preview(keys: List[str], limit: int = 10) -> str:
    shown = ', '.join(keys[:limit])
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return f'{len(keys)}: [{shown}{more}]'


def check_checkpoint_keys(
    model: nn.Module,
    checkpoint: str,
    ignore_prefixes: Iterable[str] = ('data_preprocessor.',),
) -> None:
    """Refuse a checkpoint whose parameters do not match the model.

    mmengine's ``load_from`` loads with ``strict=False`` and only logs the
    mismatch, so testing a checkpoint of another architecture silently
    evaluates a half-random model. This check runs first and raises.

    Args:
        model (nn.Module): The model about to be tested (it may be wrapped).
        checkpoint (str): The checkpoint path.
        ignore_prefixes (Iterable[str]): Key prefixes that may differ.

    Raises:
        ValueError: Naming the file and listing the missing and unexpected
            keys.
    """
    model = getattr(model, 'module', model)
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(
            f'{checkpoint} holds no state dict (got {type(ckpt).__name__}); '
            'expected a checkpoint saved by mmengine or a state dict.'
        )
    ignore = tuple(ignore_prefixes)
    ckpt_keys = {k for k in state if not k.startswith(ignore)}
    model_keys = {k for k in model.state_dict() if not k.startswith(ignore)}
    missing = sorted(model_keys - ckpt_keys)
    unexpected = sorted(ckpt_keys - model_keys)
    if missing or unexpected:
        raise ValueError(
            f'Checkpoint {checkpoint} does not match the model '
            f'{type(model).__name__} of the config: missing keys '
            f'{_preview(missing)}; unexpected keys {_preview(unexpected)}. '
            'Was it trained with another config or architecture?'
        )
