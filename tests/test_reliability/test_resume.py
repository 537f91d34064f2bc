# Copyright (c) scrim-mm contributors. All rights reserved.
"""Training stopped after epoch 1 and resumed equals an uninterrupted run.

Four short runs of the demo model (ResNet-18, 64 px, Mixup / CutMix,
random resized crops and flips, class-balanced sampler, validation after
every epoch) through ``tools/train.py``'s ``main`` in this process:

* A: two epochs, uninterrupted;
* B: the same config, stopped by an exception right after the epoch-1
  checkpoint (before the epoch-1 validation that A runs);
* C: ``--resume`` from B's ``epoch_1.pth`` with :class:`SCRIMRNGStateHook`;
* D: the same resume without the hook.

C must end with exactly A's weights and optimizer state and log exactly
A's epoch-2 losses; D shows that without the hook it does not.
"""

import json
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

import tools.train as train_tool
from scrim_mm.engine.hooks import get_rng_states, set_rng_states


class Interrupted(Exception):
    """Raised by :class:`StopAfterEpoch` to simulate a killed job."""


@HOOKS.register_module(name='SCRIMTestStopAfterEpoch', force=True)
class StopAfterEpoch(Hook):
    """Stop training once ``epoch`` is finished and checkpointed."""

    priority = 'LOWEST'  # after the CheckpointHook (VERY_LOW)

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.epoch:
            raise Interrupted(f'stopped after epoch {self.epoch}')


CONFIG = """\
_base_ = [{base!r}]
data_root = {root!r}
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=64,
                 crop_ratio_range=(0.5, 1.0)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs'),
        ]))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(64, 64)),
            dict(type='PackInputs'),
        ]))
test_dataloader = val_dataloader
model = dict(
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))
train_cfg = dict(max_epochs=2, val_interval=1)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=1, max_keep_ckpts=-1))
randomness = dict(seed=0, deterministic=True)
custom_hooks = {hooks!r}
"""

RNG_HOOK = dict(type='SCRIMRNGStateHook')
STOP_HOOK = dict(type='SCRIMTestStopAfterEpoch', epoch=1)


def write_config(path, demo_config, root, hooks) -> str:
    text = CONFIG.format(base=demo_config, root=root, hooks=hooks)
    path.write_text(text)
    return str(path)


def train(config, work_dir, name, *extra):
    train_tool.main(
        [
            config,
            '--work-dir',
            str(work_dir),
            *extra,
            '--cfg-options',
            f'experiment_name={name}',
        ]
    )


def train_logs(work_dir) -> dict:
    """The logged training scalars, by iteration."""
    logs = {}
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                for line in f:
                    entry = json.loads(line)
                    if 'loss' in entry:
                        logs[entry['step']] = entry
    return logs


def logged_values(entry: dict) -> dict:
    return {
        k: v
        for k, v in entry.items()
        if k.startswith('loss') or k in ('lr', 'grad_norm', 'epoch')
    }


def load(path) -> dict:
    # Our own files: the full pickle is fine here.
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture
def keep_global_state():
    """Leave the process's random and cuDNN settings as they were."""
    cudnn = (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    states = get_rng_states()
    yield
    set_rng_states(states)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def test_resume_equals_uninterrupted_training(
    tmp_path, demo_config, tiny_cub, keep_global_state
):
    with_hook = write_config(
        tmp_path / 'resume_cfg.py', demo_config, tiny_cub, [RNG_HOOK]
    )
    stopping = write_config(
        tmp_path / 'resume_stop_cfg.py',
        demo_config,
        tiny_cub,
        [RNG_HOOK, STOP_HOOK],
    )
    without_hook = write_config(
        tmp_path / 'resume_plain_cfg.py', demo_config, tiny_cub, []
    )
    work = {key: tmp_path / key for key in 'ABCD'}

    train(with_hook, work['A'], 'run_a')
    with pytest.raises(Interrupted):
        train(stopping, work['B'], 'run_b')
    ckpt_b = str(work['B'] / 'epoch_1.pth')
    assert not osp.exists(work['B'] / 'epoch_2.pth')
    assert 'rng_states' in load(ckpt_b)
    # tools/train.py adds the RNG-state hook by itself: the plain config
    # resumes exactly too, unless the config opts out.
    train(without_hook, work['C'], 'run_c', '--resume', ckpt_b)
    train(
        without_hook,
        work['D'],
        'run_d',
        '--resume',
        ckpt_b,
        '--cfg-options',
        'restore_rng_states=False',
    )

    a = load(work['A'] / 'epoch_2.pth')
    c = load(work['C'] / 'epoch_2.pth')
    d = load(work['D'] / 'epoch_2.pth')
    assert a['meta']['epoch'] == c['meta']['epoch'] == 2
    assert a['meta']['iter'] == c['meta']['iter']
    assert a['state_dict'].keys() == c['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, c['state_dict'][key]), key
    for idx, state in a['optimizer']['state'].items():
        for name, value in state.items():
            other = c['optimizer']['state'][idx][name]
            assert torch.equal(value, other), (idx, name)

    logs_a, logs_b = train_logs(work['A']), train_logs(work['B'])
    logs_c, logs_d = train_logs(work['C']), train_logs(work['D'])
    epoch_2 = sorted(set(logs_a) - set(logs_b))
    assert epoch_2 and sorted(logs_c) == epoch_2
    for step in epoch_2:
        assert logged_values(logs_c[step]) == logged_values(logs_a[step])
    # B's epoch 1 is A's epoch 1: the runs are deterministic at all.
    for step in logs_b:
        assert logged_values(logs_b[step]) == logged_values(logs_a[step])

    # Without the hook the resumed run draws other augmentations.
    assert any(
        logged_values(logs_d[step]) != logged_values(logs_a[step])
        for step in epoch_2
    )
    assert not all(
        torch.equal(value, d['state_dict'][key])
        for key, value in a['state_dict'].items()
    )


def test_rng_states_round_trip_and_load_weights_only(tmp_path):
    states = get_rng_states()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_states(states)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    # The states are plain tensors and numbers: a checkpoint holding them
    # loads with torch.load's default weights_only=True, no allow-list.
    path = str(tmp_path / 'states.pth')
    torch.save({'rng_states': states}, path)
    loaded = torch.load(path, weights_only=True)['rng_states']
    set_rng_states(loaded)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(ValueError, match='SCRIMRNGStateHook'):
        set_rng_states({'torch': 1})
