# Copyright (c) scrim-mm contributors. All rights reserved.
"""Refuse a checkpoint that does not fit the model, before testing it."""

import os.path as osp
from typing import Iterable, List

import torch.nn as nn
from mmengine.runner.checkpoint import _load_checkpoint

__all__ = ['check_checkpoint_keys']


def _preview(keys: List[str], limit: int = 10) -> str:
    shown = ', '.join(keys[:limit])
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return f'{len(keys)}: [{shown}{more}]'


def _strip_prefix(state: dict, prefix: str = 'module.') -> dict:
    """Drop a DDP ``module.`` prefix, as mmengine's loader does."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def check_checkpoint_keys(
    model: nn.Module,
    checkpoint: str,
    ignore_prefixes: Iterable[str] = ('data_preprocessor.',),
) -> None:
    """Refuse a checkpoint whose parameters do not match the model.

    mmengine's ``load_from`` loads with ``strict=False`` and only logs the
    mismatch (missing and unexpected keys, and tensors of another shape,
    which it skips), so testing a checkpoint of another architecture or
    another number of classes silently evaluates a half-random model. This
    check runs first and raises.

    Args:
        model (nn.Module): The model about to be tested (it may be wrapped).
        checkpoint (str): The checkpoint path (or URL).
        ignore_prefixes (Iterable[str]): Key prefixes that may differ.
            Defaults to ``('data_preprocessor.',)``.

    Raises:
        FileNotFoundError: The checkpoint file does not exist.
        ValueError: Naming the file and listing the missing and unexpected
            keys, or the tensors whose shapes differ.
    """
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'Checkpoint {checkpoint} does not exist; expected the path of '
            'a .pth file written by tools/train.py (e.g. '
            'work_dirs/<config>/epoch_N.pth).'
        )
    model = getattr(model, 'module', model)
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(
            f'{checkpoint} holds no state dict (got {type(ckpt).__name__}); '
            'expected a checkpoint saved by mmengine or a state dict.'
        )
    state = _strip_prefix(state)
    ignore = tuple(ignore_prefixes)
    model_state = model.state_dict()
    ckpt_keys = {k for k in state if not k.startswith(ignore)}
    model_keys = {k for k in model_state if not k.startswith(ignore)}
    missing = sorted(model_keys - ckpt_keys)
    unexpected = sorted(ckpt_keys - model_keys)
    if missing or unexpected:
        raise ValueError(
            f'Checkpoint {checkpoint} does not match the model '
            f'{type(model).__name__} of the config: missing keys '
            f'{_preview(missing)}; unexpected keys {_preview(unexpected)}. '
            'Was it trained with another config or architecture?'
        )
    mismatched = [
        f'{k} {tuple(state[k].shape)} vs {tuple(model_state[k].shape)}'
        for k in sorted(ckpt_keys)
        if hasattr(state[k], 'shape')
        and tuple(state[k].shape) != tuple(model_state[k].shape)
    ]
    if mismatched:
        raise ValueError(
            f'Checkpoint {checkpoint} does not match the model '
            f'{type(model).__name__} of the config: tensors of another '
            f'shape (checkpoint vs model) {_preview(mismatched, 5)}. '
            'Was it trained with another number of classes or other '
            'channel settings?'
        )
