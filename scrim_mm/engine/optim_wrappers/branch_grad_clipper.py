# Copyright (c) scrim-mm contributors. All rights reserved.
"""Gradient clipping applied to each branch of a model on its own."""

from typing import Callable, Dict, Iterable, List, Optional

import torch
from mmengine.logging import MessageHub


class BranchGradClipper:
    """Clip the gradients of every parameter branch separately.

    mmengine's :class:`~mmengine.optim.OptimWrapper` clips the *global*
    gradient norm of all parameters. In SCRIM the navigators learn only from
    their hinge ranking loss, whose gradient can be several times larger
    than the classification gradient of the rest of the model; under a
    global clip that large norm scales down every backbone and classifier
    update too, so the whole model learns at a fraction of its learning
    rate for as long as the ranking loss is large. This callable replaces
    the wrapper's ``clip_func``: it splits the parameters it is given into
    branches and calls the original clip function once per branch, so each
    branch is clipped against its own norm and no branch slows another.

    The norm of the ``default_branch`` is returned (the wrapper logs it as
    ``grad_norm``); the norms of the other branches are logged to the
    wrapper's :class:`~mmengine.logging.MessageHub` (or the current one) as
    ``train/grad_norm_<branch>``.

    Args:
        clip_func (Callable): The wrapper's clip function, e.g.
            :func:`torch.nn.utils.clip_grad_norm_`.
        branches (Dict[str, Iterable[torch.Tensor]]): Parameters of every
            named branch. Parameters in none of them belong to
            ``default_branch``.
        default_branch (str): Name of the branch of all other parameters.
            Defaults to ``'main'``.
        message_hub (MessageHub, optional): Where the norms of the other
            branches are logged. Defaults to None, meaning the current
            instance at every call.
    """

    def __init__(
        self,
        clip_func: Callable,
        branches: Dict[str, Iterable[torch.Tensor]],
        default_branch: str = 'main',
        message_hub: Optional[MessageHub] = None,
    ) -> None:
        if default_branch in branches:
            raise ValueError(
                f'default_branch={default_branch!r}: also names an explicit '
                'branch; give the other parameters a distinct branch name.'
            )
        self.clip_func = clip_func
        self.default_branch = default_branch
        self.message_hub = message_hub
        self.branch_names = tuple(branches)
        self._branch_of: Dict[int, str] = {}
        for name, params in branches.items():
            for param in params:
                self._branch_of[id(param)] = name

    def branch_of(self, param: torch.Tensor) -> str:
        """Name of the branch a parameter belongs to."""
        return self._branch_of.get(id(param), self.default_branch)

    def __call__(
        self, params: Iterable[torch.Tensor], **kwargs
    ) -> Optional[torch.Tensor]:
        """Clip each branch of ``params`` with the original clip function.

        Args:
            params (Iterable[Tensor]): Parameters with gradients.
            **kwargs: Arguments of the clip function (e.g. ``max_norm``).

        Returns:
            Tensor, optional: What the clip function returned for the
            default branch (its total norm for norm clipping), or None.
        """
        groups: Dict[str, List[torch.Tensor]] = {}
        for param in params:
            groups.setdefault(self.branch_of(param), []).append(param)
        result = None
        for name, group in groups.items():
            norm = self.clip_func(group, **kwargs)
            if name == self.default_branch:
                result = norm
            elif norm is not None:
                hub = self.message_hub or MessageHub.get_current_instance()
                hub.update_scalar(f'train/grad_norm_{name}', float(norm))
        return result

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(branches={self.branch_names}, '
            f'default_branch={self.default_branch!r})'
        )
