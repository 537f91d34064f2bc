# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper


class SCRIMAttentionRecorder:
    """Record the CPL part-attention maps of every forward pass of a model.

    A forward hook on ``model.neck`` (a :class:`CPLNeck`) keeps
    ``neck.attention_maps(output)`` of each call, so a prediction yields its
    attention maps without a second backbone pass. SCRIM calls its neck once
    per batch (the FPL crops go through the backbone only), so each recorded
    item belongs to one ``test_step``. A model without such a neck (e.g. a
    plain mmpretrain classifier) records nothing.

    Use it as a context manager or with :meth:`attach` / :meth:`detach`::

        with SCRIMAttentionRecorder(model) as recorder:
            preds = model.test_step(data)
            maps = recorder.pop()  # tuple of (B, P, H_s, W_s), on the CPU

    Args:
        model (nn.Module): The model, possibly wrapped (e.g. DDP).
    """

    def __init__(self, model: nn.Module) -> None:
        if is_model_wrapper(model):
            model = model.module
        neck = getattr(model, 'neck', None)
        self.neck = neck if hasattr(neck, 'attention_maps') else None
        self._records: List[Tuple[torch.Tensor, ...]] = []
        self._handle = None

    @property
    def available(self) -> bool:
        """Whether the model has a neck with ``attention_maps``."""
        return self.neck is not None

    @property
    def stage_names(self) -> Tuple[str, ...]:
        """The neck's stage names (empty without such a neck)."""
        return tuple(getattr(self.neck, 'stage_names', ()))

    def _hook(self, module: nn.Module, inputs, output) -> None:
        with torch.no_grad():
            maps = module.attention_maps(output)
        self._records.append(tuple(m.detach().float().cpu() for m in maps))

    def attach(self) -> 'SCRIMAttentionRecorder':
        """Start recording (idempotent)."""
        if self.neck is not None and self._handle is None:
            self._handle = self.neck.register_forward_hook(self._hook)
        return self

    def detach(self) -> None:
        """Stop recording and drop what was not popped."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._records.clear()

    def pop(self) -> Optional[Tuple[torch.Tensor, ...]]:
        """Take the maps of the latest forward pass.

        Returns:
            tuple[torch.Tensor] | None: One (B, P, H_s, W_s) CPU tensor per
            stage, or None when nothing was recorded (no such neck, or no
            forward pass since the last call). Older unpopped records are
            dropped.
        """
        if not self._records:
            return None
        maps = self._records[-1]
        self._records.clear()
        return maps

    def __enter__(self) -> 'SCRIMAttentionRecorder':
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()
