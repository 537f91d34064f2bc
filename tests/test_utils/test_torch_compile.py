# Copyright (c) scrim-mm contributors. All rights reserved.
"""``--compile``: mmengine's compile config, and eager fallback per part.

A real inductor compile of the SCRIM demo model takes minutes on a small
CPU, so the tools run here with a compile that fails (every graph then
stays eager, with its message), and one tiny module is compiled for real.
"""

import logging
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch._inductor.compile_fx as compile_fx_module
from mmengine.config import Config

import scrim_mm.utils.torch_compile as torch_compile
import tools.test as test_tool
import tools.train as train_tool
from scrim_mm.utils import (
    SAFE_BACKEND,
    apply_compile,
    compile_steps,
    eager_fallbacks,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'scrim', 'scrim_r18_demo.py')


@pytest.fixture(autouse=True)
def dynamo_state():
    """Leave dynamo as the other tests expect it."""
    with torch._dynamo.config.patch(suppress_errors=False):
        yield
    torch._dynamo.reset()


def test_apply_compile_sets_mmengine_config():
    cfg = Config(dict())
    assert apply_compile(cfg, False) is None
    assert 'compile' not in cfg
    assert apply_compile(cfg, True) == dict(backend=SAFE_BACKEND)
    assert cfg.compile == dict(backend=SAFE_BACKEND)
    assert torch._dynamo.config.suppress_errors is True
    # A compile dict of the config's own is kept; compile=True works too.
    own = Config(dict(compile=dict(backend='inductor', mode='max-autotune')))
    assert apply_compile(own, True)['mode'] == 'max-autotune'
    assert apply_compile(Config(dict(compile=True)), False) == {}
    assert apply_compile(Config(dict(compile=False)), False) is None


def test_tools_fall_back_to_eager_and_finish(tmp_path, monkeypatch, caplog):
    """One training and one test iteration of the demo model with
    --compile, inductor failing on every graph."""

    def fail(*args, **kwargs):
        raise RuntimeError('no C++ compiler\nsecond line')

    monkeypatch.setattr(compile_fx_module, 'compile_fx', fail)
    data = tmp_path / 'demo_cub'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    subprocess.run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'misc', 'make_demo_dataset.py'),
            '--out',
            str(data),
            '--train-per-class',
            '2',
            '--test-per-class',
            '1',
            '--img-size',
            '64',
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    options = [
        f'{field}.dataset.data_root={data}'
        for field in ('train_dataloader', 'test_dataloader')
    ]
    work = tmp_path / 'work'
    before = len(eager_fallbacks())
    train_tool.main(
        [
            DEMO,
            '--compile',
            '--no-validate',
            '--no-retain-cpu-memory',
            '--work-dir',
            str(work),
            '--cfg-options',
            *options,
            'train_cfg.max_epochs=1',
            'default_hooks.checkpoint.interval=1',
        ]
    )
    trained = eager_fallbacks()[before:]
    assert trained, 'no part of the training step fell back'
    assert (work / 'epoch_1.pth').is_file()
    metrics = test_tool.main(
        [
            DEMO,
            str(work / 'epoch_1.pth'),
            '--compile',
            '--no-retain-cpu-memory',
            '--work-dir',
            str(tmp_path / 'test_work'),
            '--cfg-options',
            *options,
        ]
    )
    assert 'accuracy/top1' in metrics
    tested = eager_fallbacks()[before + len(trained) :]
    assert tested, 'no part of the test step fell back'
    for message in trained + tested:
        assert '\n' not in message
        assert message.endswith('stays eager (RuntimeError: no C++ compiler)')
    assert any('backbone' in m for m in trained + tested)


def test_tiny_real_compile():
    """Compiled where a C++ compiler is found; else eager, with a message."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    x = torch.randn(4, 8)
    ref = model(x)
    ref.sum().backward()
    ref_grad = model[0].weight.grad.clone()
    model.zero_grad()

    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def test_step(self, x):
            return self.model(x)

    holder = Holder()
    before = len(eager_fallbacks())
    compile_steps(holder, ('test_step',))
    out = holder.test_step(x)
    out.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(model[0].weight.grad, ref_grad)
    new = eager_fallbacks()[before:]
    assert all('stays eager' in m and '\n' not in m for m in new)


def test_dynamo_report_becomes_one_line():
    try:
        raise RuntimeError('cannot trace this\nmore detail')
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        'torch._dynamo.convert_frame',
        logging.WARNING,
        __file__,
        1,
        "WON'T CONVERT forward /x/model.py line 12 \ndue to: \nTraceback...",
        None,
        exc_info,
    )
    before = len(eager_fallbacks())
    assert torch_compile._FILTER.filter(record) is False
    assert eager_fallbacks()[before:] == [
        'torch.compile: frame forward /x/model.py line 12 stays eager '
        '(RuntimeError: cannot trace this)'
    ]
    other = logging.LogRecord(
        'torch._dynamo.convert_frame', logging.INFO, '', 1, 'hi', None, None
    )
    assert torch_compile._FILTER.filter(other) is True
