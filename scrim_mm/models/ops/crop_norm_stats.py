# Copyright (c) scrim-mm contributors. All rights reserved.
"""Separate batch-norm statistics for the crops of the shared backbone."""

from typing import Dict

import torch
import torch.nn as nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm


class CropNormStats(nn.Module):
    """Running statistics of a backbone's batch norms for the crop pass.

    The shared backbone sees full images and zoomed crops, whose statistics
    differ; one set would normalise test images with a mixture of both
    (``docs/part_benchmark.md``). This keeps a second set, used and updated
    only by the crop pass (weights shared), copied from the backbone's at
    the first training crop pass (the pretrained ones when fine-tuning).

    Args:
        backbone (nn.Module): The backbone whose batch norms get crop stats.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        # Backbone buffer name -> own buffer name (no dots allowed).
        self._keys: Dict[str, str] = {}
        for name, module in backbone.named_modules():
            if isinstance(module, _BatchNorm) and module.track_running_stats:
                for stat in (
                    'running_mean',
                    'running_var',
                    'num_batches_tracked',
                ):
                    key = f'{name}.{stat}'
                    self._keys[key] = key.replace('.', '__')
                    self.register_buffer(
                        self._keys[key], getattr(module, stat).detach().clone()
                    )
        self.register_buffer('initialised', torch.tensor(False))

    def forward(self, backbone: nn.Module, images: torch.Tensor):
        """Run ``backbone`` on ``images`` with the crop statistics.

        Args:
            backbone (nn.Module): The backbone this module was built for.
            images (torch.Tensor): The crops (N, 3, h, w).

        Returns:
            The backbone's outputs; in training the crop statistics update.
        """
        own = dict(backbone.named_buffers())
        # A one-off of real training: not while tracing nor on ``meta``.
        if (
            backbone.training
            and self.initialised.device.type != 'meta'
            and not torch.jit.is_tracing()
            and not bool(self.initialised)
        ):
            with torch.no_grad():
                for name, key in self._keys.items():
                    getattr(self, key).copy_(own[name])
                self.initialised.fill_(True)
        stats = {name: getattr(self, key) for name, key in self._keys.items()}
        return functional_call(backbone, stats, (images,))
