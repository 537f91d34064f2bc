# Copyright (c) scrim-mm contributors. All rights reserved.
"""Optimizer wrapper constructor for SCRIM: per-branch clipping and the
navigators' learning rate."""

from typing import Dict, Optional, Sequence, Union

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS

from .branch_grad_clipper import BranchGradClipper

DEFAULT_CLIP_BRANCHES = {'navigator': ('fpl_head.navigators',)}
#: The custom key that ``navigator_lr_mult`` becomes.
NAVIGATOR_KEY = 'fpl_head.navigators'
#: The navigators' default learning rate, as a multiple of the base one.
DEFAULT_NAVIGATOR_LR_MULT = 0.3


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SCRIMOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Build the optimizer wrapper with SCRIM's navigator learning rate and
    per-branch gradient clipping.

    Works as mmengine's :class:`DefaultOptimWrapperConstructor` (same
    ``optimizer``, ``paramwise_cfg`` and wrapper ``type``, so ``--amp``
    keeps working), with two additions.

    **Navigators' learning rate.** ``paramwise_cfg['navigator_lr_mult']``
    (default 0.3): the navigators learn at 0.3x the optimizer's base
    learning rate, the backbone's; measured on the part benchmark: at the
    full rate their best region kept moving between validations, at 3x they
    never found the mark (docs/part_benchmark.md). The constructor turns it
    into the custom key ``'fpl_head.navigators'`` of mmengine's
    ``custom_keys``, which wins over shorter keys that also match the
    navigators, such as ``'fpl_head'`` (mmengine applies the longest
    matching key). It is the navigators' one rule: a ``custom_keys`` entry
    that would take precedence over it (``'fpl_head.navigators'`` itself
    or a longer key matching a navigator parameter) is refused. As any
    custom key, it also sets the navigators' weight decay to the base one
    (mmengine's ``bias_decay_mult`` and ``norm_decay_mult`` skip
    parameters that a custom key matches). A model without navigators
    (a plain classifier, a CPL-only SCRIM) is built exactly as by
    mmengine's constructor.

    **Per-branch clipping.** When ``clip_grad`` is set it replaces the
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
                navigator_lr_mult=0.3,
                clip_branches=dict(navigator='fpl_head.navigators')))

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config.
        paramwise_cfg (dict, optional): mmengine's parameter-wise options,
            plus ``navigator_lr_mult`` (float, defaults to 0.3) and
            ``clip_branches`` (dict). Defaults to None.
    """

    def __init__(
        self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None
    ) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        branches = paramwise_cfg.pop('clip_branches', DEFAULT_CLIP_BRANCHES)
        self.clip_branches = self._normalise_branches(branches)
        lr_mult = paramwise_cfg.pop(
            'navigator_lr_mult', DEFAULT_NAVIGATOR_LR_MULT
        )
        valid = isinstance(lr_mult, (int, float)) and not isinstance(
            lr_mult, bool
        )
        if not valid or lr_mult < 0:
            raise ValueError(
                f'paramwise_cfg.navigator_lr_mult={lr_mult!r}: not a '
                "non-negative number; give the navigators' learning rate as "
                f'a multiple of the base one (default '
                f'{DEFAULT_NAVIGATOR_LR_MULT})'
            )
        self.navigator_lr_mult = float(lr_mult)
        if NAVIGATOR_KEY in (paramwise_cfg.get('custom_keys') or {}):
            self._refuse_navigator_key(NAVIGATOR_KEY)
        clip_grad = optim_wrapper_cfg.get('clip_grad')
        if isinstance(clip_grad, dict) and '_delete_' in clip_grad:
            # configs/_base_/scrim_runtime.py replaces the clipping of the
            # config it is mixed into with clip_grad=dict(_delete_=True,
            # ...); mmengine's merge keeps that key where the config had no
            # clip_grad, and the clip function must not receive it.
            clip_grad = {k: v for k, v in clip_grad.items() if k != '_delete_'}
            optim_wrapper_cfg = dict(optim_wrapper_cfg, clip_grad=clip_grad)
        super().__init__(optim_wrapper_cfg, paramwise_cfg or None)

    def _refuse_navigator_key(self, key: str) -> None:
        """Raise the error of a custom key on the navigators."""
        raise ValueError(
            f'paramwise_cfg.custom_keys[{key!r}]: would set the '
            "navigators' learning rate, which navigator_lr_mult sets; "
            f'remove the key and set paramwise_cfg.navigator_lr_mult '
            f'(now {self.navigator_lr_mult:g}) instead'
        )

    def _navigator_paramwise_cfg(self, model: nn.Module) -> Optional[dict]:
        """``paramwise_cfg`` with the navigators' custom key added.

        Args:
            model (nn.Module): The unwrapped model.

        Returns:
            dict, optional: The new ``paramwise_cfg``, or None when the
            model has no navigator parameters (nothing is added).
        """
        prefix = NAVIGATOR_KEY + '.'
        names = [
            n for n, _ in model.named_parameters() if n.startswith(prefix)
        ]
        if not names:
            return None
        if self.base_lr is None:
            raise ValueError(
                'optimizer.lr=None: the navigators learn at '
                'paramwise_cfg.navigator_lr_mult x the base learning rate, '
                'which the optimizer config does not give; set '
                'optim_wrapper.optimizer.lr'
            )
        custom_keys = dict(self.paramwise_cfg.get('custom_keys') or {})
        for key in custom_keys:
            # mmengine tries the longer keys first (equal lengths in
            # alphabetical order): such a key would win on a navigator.
            wins = len(key) > len(NAVIGATOR_KEY) or (
                len(key) == len(NAVIGATOR_KEY) and key < NAVIGATOR_KEY
            )
            if wins and any(key in name for name in names):
                self._refuse_navigator_key(key)
        custom_keys[NAVIGATOR_KEY] = dict(lr_mult=self.navigator_lr_mult)
        return dict(self.paramwise_cfg, custom_keys=custom_keys)

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
        if hasattr(model, 'module'):
            model = model.module
        paramwise_cfg = self._navigator_paramwise_cfg(model)
        if paramwise_cfg is None:
            optim_wrapper = super().__call__(model)
        else:
            # mmengine reads self.paramwise_cfg while it builds.
            original, self.paramwise_cfg = self.paramwise_cfg, paramwise_cfg
            try:
                optim_wrapper = super().__call__(model)
            finally:
                self.paramwise_cfg = original
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
