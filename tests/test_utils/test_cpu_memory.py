# Copyright (c) scrim-mm contributors. All rights reserved.
"""CPU memory retention: on by default in the tools, its switches, and
unchanged results."""

import os
import subprocess
import sys
import textwrap

import pytest

import scrim_mm.apis.scrim_inferencer as inferencer_module
import scrim_mm.utils.cpu_memory as cpu_memory
import tools.test as test_tool
import tools.train as train_tool
from scrim_mm.apis import SCRIMInferencer
from scrim_mm.utils import RETAIN_CPU_MEMORY_ENV, retain_cpu_memory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture
def calls(monkeypatch):
    """Record the ``mallopt`` calls instead of making them."""
    made = []

    def mallopt(param, value):
        made.append((param, value))
        return 1

    monkeypatch.setattr(cpu_memory, '_applied', False)
    monkeypatch.setattr(cpu_memory, '_mallopt', lambda: mallopt)
    monkeypatch.delenv(RETAIN_CPU_MEMORY_ENV, raising=False)
    return made


def test_on_by_default(calls):
    assert retain_cpu_memory() is True
    # M_MMAP_MAX = 0 and M_TRIM_THRESHOLD = -1 (no trimming).
    assert calls == [(-4, 0), (-1, -1)]
    # Once on, it stays on; a second call changes nothing.
    assert retain_cpu_memory() is True
    assert len(calls) == 2


@pytest.mark.parametrize('value', ['0', 'false', 'off'])
def test_environment_switch(calls, monkeypatch, value):
    monkeypatch.setenv(RETAIN_CPU_MEMORY_ENV, value)
    assert retain_cpu_memory() is False
    assert calls == []
    monkeypatch.setenv(RETAIN_CPU_MEMORY_ENV, '1')
    assert retain_cpu_memory() is True


def test_argument_switch_and_other_c_libraries(calls, monkeypatch):
    assert retain_cpu_memory(False) is False
    assert calls == []
    monkeypatch.setattr(cpu_memory, '_mallopt', lambda: None)
    assert retain_cpu_memory(True) is False


@pytest.mark.parametrize('tool', [train_tool, test_tool])
def test_tools_switch(monkeypatch, tool):
    seen = []

    def record(enable=None):
        seen.append(enable)
        raise KeyboardInterrupt  # stop before the config is read

    monkeypatch.setattr(tool, 'retain_cpu_memory', record)
    argv = ['missing.py'] + (['ckpt.pth'] if tool is test_tool else [])
    for extra in ([], ['--no-retain-cpu-memory']):
        with pytest.raises(KeyboardInterrupt):
            tool.main(argv + extra)
    # None: follow SCRIM_RETAIN_CPU_MEMORY (on unless 0); False: off.
    assert seen == [None, False]


def test_inferencer_switch(monkeypatch):
    seen = []

    def record(enable=None):
        seen.append(enable)
        raise KeyboardInterrupt

    monkeypatch.setattr(inferencer_module, '_retain_cpu_memory', record)
    for kwargs in ({}, dict(retain_cpu_memory=False)):
        with pytest.raises(KeyboardInterrupt):
            SCRIMInferencer('scrim_r18_demo', pretrained=False, **kwargs)
    assert seen == [None, False]


_SAME_RESULTS = textwrap.dedent(
    """
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import scrim_mm
    from scrim_mm.utils import retain_cpu_memory

    torch.set_num_threads(1)
    init_default_scope('mmpretrain')
    cfg = Config.fromfile('configs/scrim/scrim_r18_demo.py')

    def run():
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        images = torch.randint(0, 256, (4, 3, 64, 64)).float()
        data = dict(
            inputs=images,
            data_samples=[DataSample().set_gt_label(i // 2) for i in range(4)],
        )
        model.train()
        losses = model.train_step(data, wrapper)
        model.eval()
        with torch.no_grad():
            preds = model.test_step(data)
        return (
            [losses[k] for k in sorted(losses)]
            + [p.detach().clone() for p in model.parameters()]
            + [s.pred_score for s in preds]
        )

    before = run()
    assert retain_cpu_memory(True), 'not glibc'
    after = run()
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    print('same', len(before))  # losses, parameters, scores
    """
)


@pytest.mark.skipif(
    cpu_memory._mallopt() is None, reason='the C library is not glibc'
)
def test_same_results_with_and_without():
    """A training and a test step, bit for bit, in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    env.pop(RETAIN_CPU_MEMORY_ENV, None)
    proc = subprocess.run(
        [sys.executable, '-c', _SAME_RESULTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1].startswith('same ')
