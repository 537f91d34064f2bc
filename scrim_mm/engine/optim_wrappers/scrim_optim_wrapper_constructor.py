# Copyright (c) scrim-mm contributors. All rights reserved.
"""Optimizer wrapper constructor that clips SCRIM's branches separately."""

from typing import Dict, Optional, Sequence, Union

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS

from .branch_grad_clipper import BranchGradClipper

DEFAULT_CLIP_BRANCHES = {'navigator': ('fpl_head.navigators',)}


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SCRIMOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Build the optimizer wrapper with per-branch gradient clipping.

    Works as mmengine's :class:`DefaultOptimWrapperConstructor` (same
    ``optimizer``, ``paramwise_cfg`` and wrapper ``type``, so ``--amp``
    keeps working), and when ``clip_grad`` is set it replaces the
    wrapper's clip function by a :class:`BranchGradClipper`: the parameters
    under each prefix of ``clip_branches`` are clipped as one branch, and
    all other parameters as the branch ``'main'``. By default SCRIM's
    navigators (``fpl_head.navigators``) form their own branch, so their
    ranking-loss gradient never scales down the updates of the backbone
    and the classifiers (README, "Training balance").

    The branch prefixes come from ``paramwise_cfg['clip_branches']``, a
    dict ``{branch name: prefix or tuple of prefixes}`` of parameter names
    (as ``model.named_parameters()`` gives them); it is removed before
    mmengine reads the rest of ``paramwise_cfg``. ``dict()`` turns the
    branches off (one global clip, mmengine's behaviour). Example::

        optim_wrapper = dict(
            constructor='SCRIMOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
            clip_grad=dict(max_norm=5.0),
            paramwise_cfg=dict(
                clip_branches=dict(navigator='fpl_head.navigators')))

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config.
        paramwise_cfg (dict, optional): mmengine's parameter-wise options,
            plus ``clip_branches``. Defaults to None.
    """

    def __init__(
        self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None
    ) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        branches = paramwise_cfg.pop('clip_branches', DEFAULT_CLIP_BRANCHES)
        self.clip_branches = self._normalise_branches(branches)
        super().__init__(optim_wrapper_cfg, paramwise_cfg or None)

    @staticmethod
    def _normalise_branches(
        branches: Dict[str, Union[str, Sequence[str]]],
    ) -> Dict[str, tuple]:
        if not isinstance(branches, dict):
            raise ValueError(
                f'paramwise_cfg.clip_branches={branches!r}: not a dict; give '
                '{branch name: parameter-name prefix(es)}, e.g. '
                "dict(navigator='fpl_head.navigators')."
            )
        out = {}
        for name, prefixes in branches.items():
            if isinstance(prefixes, str):
                prefixes = (prefixes,)
            prefixes = tuple(prefixes)
            if not prefixes or not all(
                isinstance(p, str) and p for p in prefixes
            ):
                raise ValueError(
                    f'paramwise_cfg.clip_branches.{name}={prefixes!r}: '
                    'needs one or more non-empty parameter-name prefixes.'
                )
            out[str(name)] = prefixes
        return out

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the wrapper and install the branch-wise clip function.

        Args:
            model (nn.Module): The model (a DDP wrapper is unwrapped).

        Returns:
            OptimWrapper: The optimizer wrapper.
        """
        optim_wrapper = super().__call__(model)
        if hasattr(model, 'module'):
            model = model.module
        if not self.clip_branches or not getattr(
            optim_wrapper, 'clip_grad_kwargs', None
        ):
            return optim_wrapper
        named = dict(model.named_parameters())
        branches = {}
        for name, prefixes in self.clip_branches.items():
            params = [
                param
                for pname, param in named.items()
                if any(
                    pname == p or pname.startswith(p.rstrip('.') + '.')
                    for p in prefixes
                )
            ]
            if params:
                branches[name] = params
        # A model without the branch (e.g. CPL only) keeps the global clip.
        if branches:
            optim_wrapper.clip_func = BranchGradClipper(
                optim_wrapper.clip_func,
                branches,
                message_hub=getattr(optim_wrapper, 'message_hub', None),
            )
        return optim_wrapper
