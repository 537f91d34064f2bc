# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tests of :mod:`scrim_mm.benchmark` and its command line (no timings)."""

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.optim import OptimWrapper
from torch.profiler import record_function

import scrim_mm.benchmark as bench
from scrim_mm.benchmark.runner import _build_models, _ratios
from scrim_mm.benchmark.steps import _cpu_seconds
from scrim_mm.utils import describe_machine

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'analysis' / 'benchmark.py'
DEMO_CFG = str(REPO / 'configs' / 'scrim' / 'scrim_r18_demo.py')
NUM = r'(-?[0-9]+\.[0-9]+)'


@pytest.fixture(scope='module')
def report():
    """One tiny run: ResNet-18 SCRIM, 64 px, 2 timed steps, CPU."""
    opts = bench.BenchmarkOptions(
        DEMO_CFG,
        input_size=64,
        batch_size=2,
        iters=2,
        warmup=0,
        device='cpu',
        retain_cpu_memory=False,
    )
    res = bench.run_benchmark(opts)
    return bench.format_report(res), res


def _row(text: str, label: str):
    match = re.search(
        rf'^{re.escape(label)}\s+{NUM}\s+{NUM}(?:\s+{NUM})?\s*$',
        text,
        re.M,
    )
    assert match, f'row {label!r} missing from the report:\n{text}'
    return [float(g) if g is not None else None for g in match.groups()]


def test_report_prints_every_figure(report):
    text, res = report
    baseline = 'ImageClassifier(ResNet + GlobalAveragePooling + LinearClsHead)'
    assert baseline in text
    for mode, label in (('infer', 'inference'), ('train', 'training')):
        scrim, base = res['scrim'][mode], res['baseline'][mode]
        ratio = res['ratios'][mode]
        t = _row(text, f'{label} time (ms)')
        assert t == pytest.approx(
            [scrim['time'] * 1e3, base['time'] * 1e3, ratio['time']],
            abs=0.051,
        )
        assert t[0] > 0 and t[1] > 0
        c = _row(text, f'{label} CPU time (ms)')
        assert c[0] > 0 and c[1] > 0
        after = text.split(f'{label} CPU time (ms)', 1)[1]
        system = _row(after, '  of which system (ms)')
        assert 0 <= system[0] <= c[0] and 0 <= system[1] <= c[1]
        assert system[0] == pytest.approx(scrim['sys_time'] * 1e3, abs=0.051)
        ips = _row(text, f'{label} img/s')
        assert ips[:2] == pytest.approx(
            [2 / scrim['time'], 2 / base['time']], abs=0.006
        )
        mem = _row(text, f'{label} peak memory (MiB)')
        assert mem[0] > 0 and mem[1] > 0
        assert mem[2] == pytest.approx(mem[0] / mem[1], abs=0.02)
        flops = _row(text, f'{label} GFLOPs/img')
        assert flops[0] > flops[1] > 0
        m = re.search(
            rf'^{label}: time ratio {NUM}, FLOP ratio {NUM}, '
            rf'time/FLOP ratio {NUM}$',
            text,
            re.M,
        )
        assert m, text
        time_ratio, flop_ratio, quotient = map(float, m.groups())
        assert time_ratio == pytest.approx(ratio['time'], abs=0.006)
        assert flop_ratio == pytest.approx(
            scrim['flops'] / base['flops'], abs=0.006
        )
        assert quotient == pytest.approx(
            ratio['time'] / ratio['flops'], abs=0.006
        )
    # Training re-encodes M = 4 crops per stage, inference K = 2.
    assert res['scrim']['train']['flops'] > res['scrim']['infer']['flops']
    # A training step also holds activations for backward, the gradients
    # and the optimizer state.
    assert res['scrim']['train']['memory'] > res['scrim']['infer']['memory']


def test_report_prints_part_shares(report):
    text, res = report
    for mode, label in (('train', 'training'), ('infer', 'inference')):
        block = text.split(f'SCRIM {label} step by part')[1]
        printed = {}
        for key, name in bench.PARTS.items():
            m = re.search(rf'^  {re.escape(name)}\s+{NUM}%$', block, re.M)
            assert m, f'{label}: share of {name!r} missing:\n{block}'
            printed[key] = float(m.group(1))
        assert sum(printed.values()) == pytest.approx(100, abs=0.6)
        shares = res['scrim'][mode]['shares']
        for key, value in printed.items():
            assert value == pytest.approx(shares[key] * 100, abs=0.051)
            # Attribution never charges a part more than the step took.
            assert -0.05 <= value <= 100
        # Every part of the model ran inside its range (the ranges are
        # set by the benchmark, not the model code).
        parts = ['backbone_full', 'backbone_crops', 'navigator', 'osme']
        parts += ['anchors_nms', 'crops', 'heads']
        if mode == 'train':
            parts.append('losses')
        for key in parts:
            assert shares[key] > 0, (mode, key)
        assert re.search(
            r'^  SCRIM non-conv/linear work\s+' + NUM, block, re.M
        )
    train = res['scrim']['train']['shares']
    assert train['optimizer'] > 0 and train['losses'] > 0
    assert res['scrim']['infer']['shares']['optimizer'] == 0


def test_defaults_are_the_tools_defaults(report):
    """No option: the config's channels-last for both models, torch's
    thread count, no compile."""
    _, res = report
    settings = res['settings']
    assert settings['channels_last'] is True
    assert settings['compile'] is False
    # The machine is named as in the part benchmark, threads included.
    assert settings['device_name'] == describe_machine()
    threads = torch.get_num_threads()
    assert re.search(f', {threads} threads?$', settings['device_name'])
    opts = bench.BenchmarkOptions(DEMO_CFG)
    assert opts.threads is None and opts.retain_cpu_memory is None
    assert opts.channels_last is None and opts.compile is False
    assert (opts.input_size, opts.batch_size) == (448, 2)


def test_cpu_clock_resolves_milliseconds():
    """A few ms of CPU work reads as a few ms, not 0 or one 10 ms tick.

    ``os.times`` counts whole clock ticks, so a GPU step of 4 ms had a
    median CPU time of 0 and a CPU time ratio of about 4.5e15.
    """
    user0, sys0 = _cpu_seconds()
    start = time.process_time()
    while time.process_time() - start < 0.003:
        pass
    user1, sys1 = _cpu_seconds()
    spent = user1 + sys1 - user0 - sys0
    assert 0.002 < spent < 0.009


def test_zero_baseline_cpu_time_gives_no_ratio(report):
    """A baseline CPU time of 0 gives no ratio ('n/a'), not a division."""
    _, res = report
    res = copy.deepcopy(res)
    for mode in ('infer', 'train'):
        res['baseline'][mode]['cpu_time'] = 0.0
        res['ratios'][mode] = _ratios(
            res['scrim'][mode], res['baseline'][mode]
        )
        assert res['ratios'][mode]['cpu_time'] is None
        assert res['ratios'][mode]['time'] > 0
    text = bench.format_report(res)
    for mode, label in (('infer', 'inference'), ('train', 'training')):
        line = next(
            x for x in text.splitlines() if x.startswith(f'{label} CPU time')
        )
        scrim_ms = res['scrim'][mode]['cpu_time'] * 1e3
        assert line.split()[-3:] == [f'{scrim_ms:.1f}', '0.0', 'n/a']


def test_memory_format_follows_scrim():
    for value in (None, False):
        opts = bench.BenchmarkOptions(DEMO_CFG, channels_last=value)
        _, models, _, channels_last = _build_models(opts)
        assert channels_last is (value is None)
        for model in models.values():
            weight = model.backbone.conv1.weight
            assert (
                weight.is_contiguous(memory_format=torch.channels_last)
                is channels_last
            )


def test_part_ranges_wrap_the_model_only_inside_the_block():
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    model = MODELS.build(
        dict(
            type='SCRIMClassifier',
            num_classes=2,
            backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
        )
    )
    samples = [DataSample().set_gt_label(i % 2) for i in range(4)]
    inputs = torch.randn(4, 3, 64, 64)
    torch.manual_seed(0)
    plain = model.loss(inputs, samples)
    with bench.part_ranges(model):
        assert 'forward' in vars(model.backbone)
        torch.manual_seed(0)
        ranged = model.loss(inputs, samples)
    # The same losses, and the methods restored after the block.
    for key, value in plain.items():
        torch.testing.assert_close(ranged[key], value)
    for obj in (model, model.backbone, model.neck, model.head, model.fpl_head):
        wrapped = {'forward', 'loss', 'forward_all', 'encode_crops'}
        assert not wrapped & set(vars(obj)), type(obj).__name__


def test_backward_time_is_charged_to_the_forward_range():
    """The backward of a range's ops counts for that range, not 'other'."""
    torch.manual_seed(0)
    weight = torch.randn(384, 384, requires_grad=True)
    x = torch.randn(384, 384)

    def step():
        with record_function('scrim/backbone_crops'):
            y = x
            for _ in range(6):
                y = torch.tanh(y @ weight)
        with record_function('scrim/losses'):
            loss = y.square().mean()
        loss.backward()
        weight.grad = None

    shares = bench.profile_parts(step, iters=2)
    # Forward alone is about a third of the matmul work; with its backward
    # the range holds nearly all of it.
    assert shares['backbone_crops'] > 0.6
    assert shares['backbone_crops'] > 5 * shares['other']
    assert shares['total'] > 0


def test_cpu_peak_memory_counts_step_allocations():
    model = torch.nn.Linear(256, 256)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    resident = sum(p.numel() * 4 for p in model.parameters())
    mib = 2**20

    def step():
        a = torch.ones(16 * mib // 4)  # 16 MiB
        b = torch.ones(8 * mib // 4)  # 8 MiB, both alive
        del a, b
        c = torch.ones(4 * mib // 4)  # after the peak
        return c.sum()

    peak = bench.peak_memory(step, model, wrapper, 'cpu', training=True)
    extra = peak - resident
    assert 24 * mib <= extra < 25 * mib


def test_bad_options_are_named(tmp_path):
    with pytest.raises(ValueError, match='iters=0'):
        bench.BenchmarkOptions(DEMO_CFG, iters=0)
    with pytest.raises(ValueError, match='device='):
        bench.BenchmarkOptions(DEMO_CFG, device='tpu')
    with pytest.raises(FileNotFoundError, match='missing.py'):
        bench.load_model_cfg(str(tmp_path / 'missing.py'))


def test_command_line_end_to_end(tmp_path):
    """The tool as a user runs it, at a tiny size, JSON included."""
    out = tmp_path / 'bench.json'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            DEMO_CFG,
            '--input-size',
            '64',
            '--iters',
            '1',
            '--warmup',
            '0',
            '--profile-iters',
            '0',
            '--no-retain-cpu-memory',
            '--json',
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'training: time ratio' in proc.stdout
    data = json.loads(out.read_text())
    assert data['settings']['input_size'] == 64
    assert data['settings']['retain_cpu_memory'] is False
    assert data['ratios']['train']['time_per_flop'] > 0
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), DEMO_CFG, '--iters', '0'],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and 'iters=0' in bad.stderr
