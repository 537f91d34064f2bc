# Copyright (c) scrim-mm contributors. All rights reserved.
"""The checkpoint loader stays weights-only and allow-lists narrowly.

Importing ``scrim_mm`` lets mmengine's loaders read mmengine's own
checkpoints (``HistoryBuffer``, numpy) under ``torch.load(weights_only=
True)``; any other global in a checkpoint must still be refused, nothing in
it may run, and ``torch.load`` outside mmengine must be left alone.
"""

import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

import scrim_mm  # noqa: F401  (wraps mmengine's loaders)
from scrim_mm.engine import MMENGINE_CHECKPOINT_GLOBALS


class MakeDir:
    """Unpickles into a call of ``os.mkdir(path)``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


class Attribute:
    """Unpickles into ``getattr(owner, name)`` (getattr is allow-listed)."""

    def __init__(self, owner, name: str) -> None:
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)

    def __call__(self, *args):
        # Only to be accepted as the callable of another __reduce__.
        return getattr(self.owner, self.name)(*args)


class CallAttribute:
    """Unpickles into ``getattr(np.ndarray, 'tofile')(array, path)``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return Attribute(np.ndarray, 'tofile'), (np.arange(3), self.path)


@pytest.fixture(autouse=True)
def weights_only_default(monkeypatch):
    """This environment variable would switch weights-only loading off."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)


def checkpoint(extra) -> dict:
    return {
        'state_dict': nn.Linear(2, 2).state_dict(),
        'meta': {'payload': extra},
    }


@pytest.mark.parametrize(
    'payload, name',
    [
        (os.system, 'system'),
        (MakeDir, 'MakeDir'),
    ],
)
def test_foreign_globals_are_refused(tmp_path, payload, name):
    path = str(tmp_path / 'foreign.pth')
    torch.save(checkpoint(payload), path)
    with pytest.raises(pickle.UnpicklingError, match=name):
        load_checkpoint(nn.Linear(2, 2), path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match=name):
        _load_checkpoint(path, map_location='cpu')


@pytest.mark.parametrize('make', [MakeDir, CallAttribute])
def test_nothing_in_a_checkpoint_runs(tmp_path, make):
    target = str(tmp_path / 'written_by_the_checkpoint')
    path = str(tmp_path / 'evil.pth')
    torch.save(checkpoint(make(target)), path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(nn.Linear(2, 2), path, map_location='cpu')
    assert not os.path.exists(target)
    # The payload is live: a full unpickle does run it.
    torch.load(path, weights_only=False)
    assert os.path.exists(target)


def test_allow_list_applies_to_mmengine_loaders_only(tmp_path):
    hub = MessageHub.get_instance('scrim_test_checkpoint_safety')
    hub.update_scalar('train/loss', 1.0)
    path = str(tmp_path / 'mmengine_style.pth')
    torch.save(
        {
            'state_dict': nn.Linear(2, 2).state_dict(),
            'message_hub': hub.state_dict(),
            'meta': {'seed': np.int64(0), 'arr': np.zeros(2)},
        },
        path,
    )
    get_safe = torch.serialization.get_safe_globals
    before = set(map(repr, get_safe()))
    loaded = _load_checkpoint(path, map_location='cpu')
    buffers = loaded['message_hub']['log_scalars']
    assert isinstance(buffers['train/loss'], HistoryBuffer)
    after = set(map(repr, get_safe()))
    assert after == before, after ^ before  # nothing leaked
    # torch.load outside mmengine still refuses HistoryBuffer ...
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(path)
    # ... and loads plain state dicts as before.
    plain = str(tmp_path / 'plain.pth')
    torch.save(nn.Linear(2, 2).state_dict(), plain)
    assert set(torch.load(plain)) == {'weight', 'bias'}
    assert os.system not in MMENGINE_CHECKPOINT_GLOBALS
