# Copyright (c) scrim-mm contributors. All rights reserved.
"""Shared pieces of the deployment tests: one demo run, one export.

The checkpoint is the session's short real training run of
``configs/scrim/scrim_r18_demo.py`` (96 px input, K = 2 regions on each of
two stages; see ``tests/test_apis/demo_run.py``), shared with the other
test folders. Exporting takes most of the time (``torch.export``), so the
dynamic-batch file is made once per session.
"""

from typing import Dict

import pytest
import torch
from mmengine.config import Config

from scrim_mm.apis import get_scrim_model
from scrim_mm.deployment import build_metadata, export_onnx, sample_inputs
from tests.test_apis.demo_run import CONFIG
from tests.test_apis.demo_run import demo_run as _demo_run

INPUT_SIZE = (96, 96)


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory) -> Dict:
    """A checkpoint and data of one short real training run."""
    return _demo_run(tmp_path_factory)


@pytest.fixture(scope='session')
def demo_cfg(demo_run) -> Config:
    """The demo config, reading the run's data."""
    cfg = Config.fromfile(CONFIG)
    cfg.test_dataloader.dataset.data_root = demo_run['data_root']
    return cfg


@pytest.fixture(scope='session')
def demo_model(demo_run, demo_cfg):
    """The trained demo model in eval mode, on the CPU."""
    model = get_scrim_model(
        demo_cfg, pretrained=demo_run['checkpoint'], device='cpu'
    )
    return model.eval()


@pytest.fixture(scope='session')
def demo_inputs(demo_cfg, demo_model) -> torch.Tensor:
    """The 4 demo test images, normalised (4, 3, 96, 96)."""
    inputs, source = sample_inputs(demo_cfg, demo_model, INPUT_SIZE, num=4)
    assert source.startswith('4 test image'), source
    return inputs


@pytest.fixture(scope='session')
def dynamic_onnx(tmp_path_factory, demo_cfg, demo_model) -> str:
    """The demo model exported with a dynamic batch."""
    path = str(tmp_path_factory.mktemp('onnx') / 'scrim_dynamic.onnx')
    return export_onnx(
        demo_model,
        path,
        INPUT_SIZE,
        dynamic_batch=True,
        metadata=build_metadata(demo_cfg, demo_model, INPUT_SIZE),
    )
