# Copyright (c) scrim-mm contributors. All rights reserved.
"""Save the random generators in checkpoints and restore them on resume."""

import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

__all__ = ['SCRIMRNGStateHook', 'get_rng_states', 'set_rng_states']

#: Checkpoint key under which :class:`SCRIMRNGStateHook` stores the states.
CHECKPOINT_KEY = 'rng_states'


def get_rng_states() -> Dict[str, Any]:
    """Return the states of Python's, numpy's and torch's global generators.

    Only tensors, ints, floats and strings are returned, so that a
    checkpoint holding them still loads with ``torch.load(weights_only=
    True)``.

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and, when CUDA is
        initialised, ``cuda`` (one state per device).
    """
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = dict(
        python=dict(
            version=version,
            internal=torch.tensor(internal, dtype=torch.int64),
            gauss=gauss,
        ),
        numpy=dict(
            name=name,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached=float(cached),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = list(torch.cuda.get_rng_state_all())
    return states


def set_rng_states(states: Dict[str, Any]) -> None:
    """Restore states returned by :func:`get_rng_states`.

    Args:
        states (dict): The states; tensors may be on any device (a resumed
            checkpoint is loaded onto the GPU).

    Raises:
        ValueError: If ``states`` is not such a dict.
    """
    try:
        py, nps = states['python'], states['numpy']
        random.setstate(
            (
                py['version'],
                tuple(int(v) for v in py['internal'].tolist()),
                py['gauss'],
            )
        )
        np.random.set_state(
            (
                nps['name'],
                nps['keys'].cpu().numpy().astype(np.uint32),
                nps['pos'],
                nps['has_gauss'],
                nps['cached'],
            )
        )
        torch.set_rng_state(states['torch'].cpu())
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(
            f'Invalid random generator states ({e!r}); expected the dict '
            'written by SCRIMRNGStateHook.'
        ) from e
    cuda = states.get('cuda')
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


@HOOKS.register_module()
class SCRIMRNGStateHook(Hook):
    """Make ``--resume`` continue the random streams of the stopped run.

    mmengine's resume restores the epoch, the iteration, the optimizer, the
    parameter schedulers and the message hub, and re-seeds the generators
    only when the seed changed; the *states* of the global generators that
    the data augmentation (numpy: flips, crops, Mixup's ratio), the batch
    augments (torch: Mixup / CutMix permutations) and Python's ``random``
    draw from are those of a fresh start. A resumed run then sees other
    augmentations than the run it continues.

    This hook

    * writes the states of Python's, numpy's and torch's (and CUDA's)
      global generators into every checkpoint (key ``rng_states``);
    * restores them when training resumed from such a checkpoint, right
      before the first resumed epoch (``before_train``, lowest priority,
      only if the loop starts past iteration 0, i.e. after ``--resume``, not
      after a plain ``load_from``);
    * keeps validation out of the training streams: the states are saved
      before and restored after every validation run, so that validating
      (or not) between two epochs does not change the training that
      follows.

    With it, an epoch-based run stopped after a checkpoint and resumed
    trains exactly like an uninterrupted one, on the same device and with
    ``num_workers=0`` or non-persistent workers (mmengine seeds each
    worker from the seed, the rank and the worker id, so workers that are
    started each epoch are reproducible, while the states inside
    persistent workers are not saved). The class-balanced sampler needs
    nothing: its order is a function of its seed and the epoch.

    Args:
        isolate_val (bool): Save and restore the states around validation.
            Defaults to True.
    """

    priority = 'LOWEST'

    def __init__(self, isolate_val: bool = True) -> None:
        self.isolate_val = isolate_val
        self._resumed: Optional[Dict[str, Any]] = None
        self._before_val: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the generator states in the checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint being saved.
        """
        checkpoint[CHECKPOINT_KEY] = get_rng_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the states of a loaded checkpoint for :meth:`before_train`.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        self._resumed = checkpoint.get(CHECKPOINT_KEY)

    def before_train(self, runner) -> None:
        """Restore the states if the run resumed from a checkpoint.

        Args:
            runner (Runner): The runner.
        """
        states, self._resumed = self._resumed, None
        if states is None or runner.iter == 0:
            return
        set_rng_states(states)
        runner.logger.info(
            'SCRIMRNGStateHook: restored the random generator states of '
            f'the checkpoint (epoch {runner.epoch}, iter {runner.iter}).'
        )

    def before_val(self, runner) -> None:
        """Save the states before validation.

        Args:
            runner (Runner): The runner.
        """
        if self.isolate_val:
            self._before_val = get_rng_states()

    def after_val(self, runner) -> None:
        """Restore the states saved by :meth:`before_val`.

        Args:
            runner (Runner): The runner.
        """
        states, self._before_val = self._before_val, None
        if states is not None:
            set_rng_states(states)
