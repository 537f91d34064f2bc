# Copyright (c) scrim-mm contributors. All rights reserved.
"""Separate batch-norm statistics for the crops of the shared backbone."""

from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

_STATS = ('running_mean', 'running_var', 'num_batches_tracked')


class CropNormStats(nn.Module):
    """Running statistics of a backbone's batch norms for the crop pass.

    The shared backbone sees full images and zoomed crops, whose statistics
    differ; with one set, test images are normalised with a mixture of both
    (``docs/part_benchmark.md``). This module keeps a second set, swapped
    in (and updated) only for the crop pass; the weights stay shared. It
    starts as a copy of the backbone's at the first training crop pass.

    Args:
        backbone (nn.Module): The backbone whose batch norms get crop stats.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self._names: List[str] = []
        for name, module in backbone.named_modules():
            if isinstance(module, _BatchNorm) and module.track_running_stats:
                key = name.replace('.', '__')
                self._names.append(name)
                for stat in _STATS:
                    self.register_buffer(
                        f'{key}__{stat}',
                        getattr(module, stat).detach().clone(),
                    )
        self.register_buffer('initialised', torch.tensor(False))

    def _pairs(
        self, backbone: nn.Module
    ) -> Iterator[Tuple[_BatchNorm, Dict[str, str]]]:
        modules = dict(backbone.named_modules())
        for name in self._names:
            key = name.replace('.', '__')
            yield modules[name], {s: f'{key}__{s}' for s in _STATS}

    @torch.no_grad()
    def _copy_from(self, backbone: nn.Module) -> None:
        for module, keys in self._pairs(backbone):
            for stat, key in keys.items():
                getattr(self, key).copy_(getattr(module, stat))
        self.initialised.fill_(True)

    @contextmanager
    def swap(self, backbone: nn.Module) -> Iterator[None]:
        """Use the crop statistics in ``backbone`` inside the context.

        Args:
            backbone (nn.Module): The backbone this module was built for.
        """
        # Not while tracing (FLOP counting, export) or on the meta device
        # (shape-only dry runs): the copy is a one-off of real training.
        if (
            backbone.training
            and self.initialised.device.type != 'meta'
            and not torch.jit.is_tracing()
            and not bool(self.initialised)
        ):
            self._copy_from(backbone)
        pairs = list(self._pairs(backbone))
        for module, keys in pairs:
            for stat, key in keys.items():
                own, crop = getattr(module, stat), getattr(self, key)
                setattr(module, stat, crop)
                setattr(self, key, own)
        try:
            yield
        finally:
            for module, keys in pairs:
                for stat, key in keys.items():
                    crop, own = getattr(module, stat), getattr(self, key)
                    setattr(module, stat, own)
                    setattr(self, key, crop)
