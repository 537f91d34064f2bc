# Copyright (c) scrim-mm contributors. All rights reserved.
"""The timed steps: a fixed random batch, inference and training steps."""

import contextlib
import os
import time
from typing import Callable, ContextManager, Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

try:
    import resource
except ImportError:  # Windows
    resource = None

__all__ = ['make_batch', 'make_steps', 'time_steps']


def make_batch(
    batch_size: int, size: int, num_classes: int, device: str, seed: int
) -> Callable[[], dict]:
    """A factory of fresh data dicts holding one fixed random batch.

    Labels come in pairs (0, 0, 1, 1, ...) so that the part-contrastive
    loss has positives, as with the class-balanced sampler.

    Args:
        batch_size (int): Images per batch.
        size (int): Square input size.
        num_classes (int): Number of classes.
        device (str): Where the images live.
        seed (int): Random seed.

    Returns:
        Callable[[], dict]: Gives ``dict(inputs, data_samples)``.
    """
    from mmpretrain.structures import DataSample

    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(
        0, 256, (batch_size, 3, size, size), generator=gen
    ).float()
    images = images.to(device)
    labels = (torch.arange(batch_size) // 2) % num_classes

    def factory() -> dict:
        samples = [DataSample().set_gt_label(int(label)) for label in labels]
        return dict(inputs=images, data_samples=samples)

    return factory


def _autocast(device: str, amp: bool) -> ContextManager:
    """Autocast as the AMP optimizer wrappers do, or nothing.

    Args:
        device (str): ``'cpu'`` (bf16) or ``'cuda'`` (fp16).
        amp (bool): Whether to autocast at all.

    Returns:
        ContextManager: The autocast context, or a null context.
    """
    if not amp:
        return contextlib.nullcontext()
    dtype = torch.float16 if device == 'cuda' else torch.bfloat16
    return torch.autocast(device_type=device, dtype=dtype)


def make_steps(
    model: nn.Module,
    wrapper: OptimWrapper,
    batch: Callable[[], dict],
    device: str,
    amp: bool,
) -> Dict[str, Callable[[], object]]:
    """The inference and training step functions of a model.

    Args:
        model (nn.Module): The model.
        wrapper (OptimWrapper): Its optimizer wrapper (AMP in it).
        batch (Callable[[], dict]): Gives the data dict.
        device (str): ``'cpu'`` or ``'cuda'``.
        amp (bool): Autocast the inference step.

    Returns:
        Dict[str, Callable]: ``'infer'`` (``test_step`` under
        ``torch.no_grad``) and ``'train'`` (``train_step``).
    """

    def infer():
        model.eval()
        with torch.no_grad(), _autocast(device, amp):
            return model.test_step(batch())

    def train():
        model.train()
        return model.train_step(batch(), wrapper)

    return dict(infer=infer, train=train)


def _sync(device: str) -> None:
    """Wait for the device's queued work (CUDA) before reading a clock."""
    if device == 'cuda':
        torch.cuda.synchronize()


def _cpu_seconds() -> Tuple[float, float]:
    """User and system CPU seconds of this process (all its threads).

    ``getrusage`` counts in microseconds. ``os.times``, the fallback where
    there is no ``resource`` module (Windows), counts in clock ticks (10 ms
    on Linux): too coarse for a GPU step of a few milliseconds, whose
    median CPU time it reads as 0.
    """
    if resource is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime, usage.ru_stime
    times = os.times()
    return times.user, times.system


def time_steps(
    steps: Dict[str, Callable[[], object]],
    iters: int,
    warmup: int,
    device: str,
) -> Tuple[
    Dict[str, List[float]], Dict[str, List[float]], Dict[str, List[float]]
]:
    """Time the steps of several models, interleaved.

    Interleaving makes a change of the load on a shared machine hit every
    model alike.

    Args:
        steps (Dict[str, Callable]): Name -> step function.
        iters (int): Timed calls of each.
        warmup (int): Untimed calls of each first.
        device (str): For synchronisation.

    Returns:
        tuple: Three dicts, name -> seconds of every timed call: wall
        clock, CPU (user + system, all threads), and system CPU alone
        (on the CPU mostly page faults of freshly mapped memory).
    """
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    sys_times = {name: [] for name in steps}
    for _ in range(iters):
        for name, fn in steps.items():
            _sync(device)
            start = time.perf_counter()
            user0, sys0 = _cpu_seconds()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
            user1, sys1 = _cpu_seconds()
            cpu_times[name].append(user1 + sys1 - user0 - sys0)
            sys_times[name].append(sys1 - sys0)
    return times, cpu_times, sys_times
