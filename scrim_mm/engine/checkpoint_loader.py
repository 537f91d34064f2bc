# Copyright (c) scrim-mm contributors. All rights reserved.
"""Let mmengine load its own checkpoints under ``torch.load(weights_only)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine
0.10.x writes checkpoints whose ``message_hub`` holds
:class:`~mmengine.logging.HistoryBuffer` objects and numpy arrays and scalars,
which the weights-only unpickler refuses: ``load_from``, ``--resume``,
``tools/test.py`` and ``mmpretrain.apis`` then fail with ``UnpicklingError``.

The fix here is deliberately narrow:

* loading stays ``weights_only=True``; nothing is loaded with
  ``weights_only=False`` and no environment variable is set;
* the weights-only unpickler is allowed exactly the few data types mmengine
  and numpy write into a checkpoint (:data:`MMENGINE_CHECKPOINT_GLOBALS`),
  and only while mmengine's own loaders run (a ``torch.serialization.
  safe_globals`` context around them), not for every ``torch.load`` of the
  process;
* it wraps mmengine's registered loaders for local files and ``http(s)://``
  (mmengine lets a loader be registered per scheme) instead of re-writing
  them.

``builtins.getattr`` is on the list because numpy pickles its dtype classes
(``numpy.dtypes.Float64DType`` ...) as ``getattr(module, name)``. The
weights-only unpickler still refuses to *call* anything that is not on the
list, so attribute access cannot be turned into code execution.

A checkpoint from an untrusted source should still be treated as untrusted
input: prefer ``.safetensors`` or a plain state dict for weights you share.
"""

import contextlib
import functools
from typing import Callable, Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = [
    'MMENGINE_CHECKPOINT_GLOBALS',
    'mmengine_checkpoint_globals',
    'register_checkpoint_loaders',
]


def _numpy_globals() -> List[Callable]:
    """Return the numpy callables that appear in pickled arrays/scalars."""
    # numpy >= 2 moved ``numpy.core`` to ``numpy._core``; the pickles name
    # whichever module wrote them, so both spellings are resolved when present.
    found: List[Callable] = [np.ndarray, np.dtype]
    for mod_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        found += [mod._reconstruct, mod.scalar]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [
            getattr(dtypes, name)
            for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return found


#: The globals that a checkpoint written by mmengine's Runner contains.
MMENGINE_CHECKPOINT_GLOBALS: List[Callable] = [
    HistoryBuffer,
    getattr,
] + _numpy_globals()


@contextlib.contextmanager
def mmengine_checkpoint_globals() -> Iterator[None]:
    """Allow the weights-only unpickler the types of mmengine checkpoints.

    A no-op on torch versions without ``torch.serialization.safe_globals``
    (they load with ``weights_only=False`` by default anyway).
    """
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is None:
        yield
        return
    with safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
        yield


def _wrap(loader: Callable) -> Callable:
    """Run ``loader`` inside :func:`mmengine_checkpoint_globals`."""
    if getattr(loader, '_scrim_wrapped', False):
        return loader

    @functools.wraps(loader)
    def wrapped(*args, **kwargs):
        with mmengine_checkpoint_globals():
            return loader(*args, **kwargs)

    wrapped._scrim_wrapped = True
    return wrapped


def register_checkpoint_loaders() -> None:
    """Wrap mmengine's local and http(s) checkpoint loaders.

    Idempotent: calling it again (e.g. on a second import) changes nothing.
    """
    for prefix in ('', 'http://', 'https://'):
        loader = CheckpointLoader._schemes.get(prefix)
        if loader is not None:
            CheckpointLoader.register_scheme(
                prefix, loader=_wrap(loader), force=True
            )


register_checkpoint_loaders()
