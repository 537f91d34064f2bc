# Copyright (c) scrim-mm contributors. All rights reserved.
"""SCRIM on a CUDA device: same results as on the CPU, and an fp16 step.

Skipped where no CUDA GPU is present (CI has none); run where one is, e.g.
``python -m pytest tests/test_models/test_cuda.py``.
"""

import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope

from scrim_mm.benchmark.flops import count_flops
from scrim_mm.utils import apply_amp

from .test_amp import LOSS_KEYS, batch, build

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA GPU'
)


@pytest.fixture
def no_tf32():
    """Full fp32 matrix products and convolutions, so CPU and GPU agree."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    ) = saved


def _on(model: torch.nn.Module, device: str) -> torch.nn.Module:
    return copy.deepcopy(model).to(device)


def test_cuda_predictions_match_cpu(no_tf32):
    """Scores and regions of ``predict`` are the CPU's, on the GPU."""
    cpu = build()
    cpu.eval()
    gpu = _on(cpu, 'cuda')
    with torch.no_grad():
        ref = cpu.test_step(batch())
        out = gpu.test_step(batch())
    assert len(out) == len(ref) == 4
    for a, b in zip(ref, out):
        assert b.pred_score.device.type == 'cuda'
        torch.testing.assert_close(
            b.pred_score.cpu(), a.pred_score, rtol=1e-3, atol=1e-4
        )
        torch.testing.assert_close(
            b.pred_boxes.cpu(), a.pred_boxes, rtol=0, atol=1e-3
        )


def test_cuda_losses_and_gradients_match_cpu(no_tf32):
    """Training forward: every loss term and the backbone gradient agree."""
    cpu = build()
    # The exploration noise of the training selection comes from each
    # device's own generator, which no seed makes equal: select without it.
    cpu.fpl_head.explore = 0.0
    cpu.train()
    gpu = _on(cpu, 'cuda')
    results = []
    for model in (cpu, gpu):
        data = model.data_preprocessor(batch(), True)
        losses = model.loss(data['inputs'], data['data_samples'])
        sum(losses.values()).backward()
        results.append((losses, model.backbone.conv1.weight.grad))
    (ref, ref_grad), (out, out_grad) = results
    assert set(ref) == set(out) == LOSS_KEYS
    for key in LOSS_KEYS:
        assert out[key].device.type == 'cuda', key
        torch.testing.assert_close(
            out[key].detach().cpu(),
            ref[key].detach(),
            rtol=2e-3,
            atol=2e-4,
            msg=lambda m, key=key: f'{key}: {m}',
        )
    assert ref_grad is not None and out_grad is not None
    assert ref_grad.abs().sum() > 0
    torch.testing.assert_close(out_grad.cpu(), ref_grad, rtol=1e-2, atol=1e-4)


def test_cuda_fp16_train_step():
    """``--amp`` on CUDA: fp16 autocast steps with dynamic loss scaling give
    finite losses and, once the scale has settled, update the fp32
    weights.

    The scale starts at 2 ** 16; the first steps overflow in fp16 and are
    skipped, each halving the scale (with fp16 autocast on the CPU, same
    model and batches, the first two were).
    """
    init_default_scope('mmpretrain')
    model = build().cuda()
    cfg = Config(
        dict(
            optim_wrapper=dict(
                constructor='SCRIMOptimWrapperConstructor',
                optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
                clip_grad=dict(max_norm=5.0),
            )
        )
    )
    apply_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrapper, AmpOptimWrapper)
    convs = []
    model.backbone.conv1.register_forward_hook(
        lambda module, args, out: convs.append(out.dtype)
    )
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    init_scale = wrapper.loss_scaler.get_scale()
    moved = 0
    for step in range(12):
        log_vars = model.train_step(batch(seed=step), wrapper)
        assert set(LOSS_KEYS) <= set(log_vars)
        for key, value in log_vars.items():
            assert torch.isfinite(torch.as_tensor(value)).all(), (step, key)
        moved = sum(
            not torch.equal(p0, p.detach())
            for p0, p in zip(before, model.parameters())
        )
        if moved:
            break
    # Autocast ran the backbone (full images and crops) in fp16 ...
    assert convs[:2] == [torch.float16] * 2
    # ... the steps that overflowed were skipped and lowered the scale ...
    assert wrapper.loss_scaler.get_scale() == init_scale / 2**step
    # ... and then the fp32 weights moved and stayed finite.
    assert moved > len(before) // 2
    for p in model.parameters():
        assert p.dtype == torch.float32
        assert torch.isfinite(p).all()


@pytest.mark.parametrize('training', [False, True])
def test_cuda_flop_count_matches_cpu(training):
    """The benchmark's FLOP counter traces the model on the GPU as on the
    CPU (under ``torch.jit.trace`` sizes become CPU tensors, which CUDA ops
    such as ``repeat_interleave`` refuse as arguments)."""
    cpu = build()
    inputs = cpu.data_preprocessor(batch(), False)['inputs']
    ref, ref_by_module = count_flops(cpu, inputs, training)
    out, by_module = count_flops(_on(cpu, 'cuda'), inputs.cuda(), training)
    assert ref > 0
    assert out == pytest.approx(ref, rel=1e-6)
    assert by_module == pytest.approx(ref_by_module, rel=1e-6)
