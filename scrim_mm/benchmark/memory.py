# Copyright (c) scrim-mm contributors. All rights reserved.
"""Peak tensor memory of one step, on CUDA and on the CPU."""

import gc
from typing import Callable, Optional

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from torch.profiler import ProfilerActivity, profile

__all__ = ['tensor_bytes', 'peak_memory']


def tensor_bytes(
    model: Optional[nn.Module], wrapper: Optional[OptimWrapper]
) -> int:
    """Bytes of the tensors of a model and / or its optimizer state.

    Args:
        model (nn.Module, optional): Its parameters, gradients and buffers
            are counted.
        wrapper (OptimWrapper, optional): Its optimizer state is counted.

    Returns:
        int: The bytes, each storage once.
    """
    seen = set()
    total = 0

    def add(t):
        nonlocal total
        if isinstance(t, torch.Tensor) and t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()

    if model is not None:
        for t in model.parameters():
            add(t)
            add(t.grad)
        for t in model.buffers():
            add(t)
    if wrapper is not None:
        for state in wrapper.optimizer.state.values():
            for t in state.values():
                add(t)
    return total


def peak_memory(
    fn: Callable[[], object],
    model: nn.Module,
    wrapper: OptimWrapper,
    device: str,
    training: bool,
) -> int:
    """Peak bytes of tensors alive during one call of ``fn``.

    Both figures count the tensors PyTorch allocates, not the allocator's
    cache nor the process's resident size.

    Args:
        fn (Callable): The step.
        model (nn.Module): Its model.
        wrapper (OptimWrapper): Its optimizer wrapper.
        device (str): ``'cpu'`` or ``'cuda'``.
        training (bool): A training step; otherwise the optimizer state,
            which an inference process would not hold, is left out.

    Returns:
        int: ``max_memory_allocated`` on CUDA; on the CPU the tensors alive
        before the step plus the peak of the step's own allocations, from
        the profiler's memory events.
    """
    gc.collect()
    optim_bytes = 0 if training else tensor_bytes(None, wrapper)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated()) - optim_bytes
    resident = tensor_bytes(model, wrapper) - optim_bytes
    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        fn()
    events = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]'
        and str(e.device_type()).upper().endswith('CPU')
    ]
    events.sort()
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return resident + peak
