# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tests of the helpers behind tools/train.py and tools/test.py."""

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.registry import OPTIM_WRAPPERS

from scrim_mm.utils import apply_amp, set_dataloader_defaults, set_work_dir


def test_apply_amp_picks_fp16_on_cuda_and_bf16_on_cpu():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD'))))
    apply_amp(cfg, cuda=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD'))))
    apply_amp(cfg, cuda=False)
    assert cfg.optim_wrapper.type == 'SCRIMCPUAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert 'loss_scale' not in cfg.optim_wrapper


def test_apply_amp_refuses_custom_wrapper():
    cfg = Config(dict(optim_wrapper=dict(type='MyWrapper')))
    with pytest.raises(ValueError, match='MyWrapper'):
        apply_amp(cfg, cuda=False)


def test_cpu_amp_wrapper_autocasts_to_bf16():
    model = nn.Linear(4, 2)
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type='SCRIMCPUAmpOptimWrapper',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        )
    )
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, model.weight)


def test_cpu_amp_wrapper_rejects_bad_dtype():
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="dtype='half_float'"):
        OPTIM_WRAPPERS.build(
            dict(
                type='SCRIMCPUAmpOptimWrapper',
                dtype='half_float',
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            )
        )


def test_dataloader_defaults_without_workers():
    cfg = Config(dict(train_dataloader=dict(num_workers=0, batch_size=2)))
    set_dataloader_defaults(cfg, 'train_dataloader')
    loader = cfg.train_dataloader
    # persistent_workers=True with num_workers=0 makes PyTorch raise.
    assert loader.persistent_workers is False
    assert loader.collate_fn == dict(type='default_collate')
    cfg = Config(dict(train_dataloader=dict(num_workers=2)))
    set_dataloader_defaults(cfg, 'train_dataloader')
    assert cfg.train_dataloader.persistent_workers is True
    set_dataloader_defaults(cfg, 'val_dataloader')  # absent: no error
    assert 'val_dataloader' not in cfg


def test_work_dir_priority():
    cfg = Config(dict())
    set_work_dir(cfg, 'configs/scrim/scrim_r50_cub.py', None)
    assert cfg.work_dir.endswith('work_dirs/scrim_r50_cub')
    cfg = Config(dict(work_dir='from_config'))
    set_work_dir(cfg, 'x.py', None)
    assert cfg.work_dir == 'from_config'
    set_work_dir(cfg, 'x.py', 'from_cli')
    assert cfg.work_dir == 'from_cli'


def test_image_loader_switched_in_every_pipeline_and_wrapper():
    from scrim_mm.utils import use_scrim_image_loader

    load = dict(type='LoadImageFromFile')
    cfg = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset',
                    dataset=dict(pipeline=[load, dict(type='PackInputs')]),
                )
            ),
            val_dataloader=dict(
                dataset=dict(
                    pipeline=[dict(type='mmpretrain.LoadImageFromFile')]
                )
            ),
            test_dataloader=None,
        )
    )
    assert use_scrim_image_loader(cfg) == 2
    inner = cfg.train_dataloader.dataset.dataset.pipeline
    assert inner[0].type == 'SCRIMLoadImageFromFile'
    assert inner[1].type == 'PackInputs'
    assert (
        cfg.val_dataloader.dataset.pipeline[0].type == 'SCRIMLoadImageFromFile'
    )


def test_rng_state_hook_added_once():
    from scrim_mm.utils import add_rng_state_hook

    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    add_rng_state_hook(cfg)
    add_rng_state_hook(cfg)
    types = [h['type'] for h in cfg.custom_hooks]
    assert types == ['EMAHook', 'SCRIMRNGStateHook']


def test_rng_state_hook_opt_out():
    from scrim_mm.utils import add_rng_state_hook

    cfg = Config(dict(restore_rng_states=False))
    add_rng_state_hook(cfg)
    assert not cfg.get('custom_hooks')
