# Copyright (c) scrim-mm contributors. All rights reserved.
"""Benchmark SCRIM against a plain classifier on the same backbone.

Usage::

    python tools/analysis/benchmark.py CONFIG [--baseline CONFIG]
        [--input-size 448] [--batch-size 2] [--device cpu|cuda] [--amp]
        [--iters 5] [--warmup 2] [--channels-last] [--threads N]
        [--retain-cpu-memory] [--profile-iters 1] [--json FILE]
        [--onnxruntime] [--cfg-options KEY=VALUE ...]

In one process, on synthetic random images, it measures for the SCRIM model
of ``CONFIG`` and for a baseline:

- the median time of an inference step (``model.test_step`` under
  ``torch.no_grad``: preprocessing and ``predict``) and of a training step
  (``model.train_step`` with an mmengine ``OptimWrapper``: preprocessing,
  loss, backward, clipping and the optimizer step), and images per second.
  The steps of the two models are interleaved so that a change of the load
  on a shared machine hits both alike. The CPU time of the process (user +
  system, from ``os.times``) is reported too: on a machine shared with
  other jobs it varies less than the wall clock; its system part is mostly
  page faults of memory that the C library handed back to the kernel;
- the peak memory of one step: on CUDA ``torch.cuda.max_memory_allocated``;
  on the CPU the same quantity rebuilt from ``torch.profiler``'s allocation
  events (``profile_memory=True``): the bytes of every tensor alive before
  the step (parameters, buffers, optimizer state) plus the highest running
  sum of the step's allocations and frees. Both count the tensors PyTorch
  allocates, not the allocator's cache nor the process's resident size.
  The optimizer state is left out of the inference figure;
- FLOPs per image with mmengine's ``FlopAnalyzer`` (a traced forward in
  ``'tensor'`` mode; one multiply-add counts as one FLOP, fvcore's
  convention; ops without a counting rule, e.g. ``roi_align`` and NMS, count
  as zero). Inference FLOPs trace the model in eval mode (``K`` crops per
  stage), training FLOPs in train mode (``M`` crops per stage). The backward
  pass is about twice the forward for both models, so the forward ratio is
  also the training-step ratio;
- the ratios SCRIM / baseline of time, FLOPs and their quotient (1.0 means
  SCRIM costs exactly its extra FLOPs) and of peak memory;
- the share of the wall time of a SCRIM training (and inference) step
  spent in each part of the model, from the ``scrim/...``
  ``torch.profiler.record_function`` ranges inside the model code. A
  backward op is charged to the part that ran its forward op (autograd's
  sequence numbers link the two); time outside every range (preprocessing,
  Python glue, autograd bookkeeping, ``zero_grad``) is ``other``.

With ``--onnxruntime`` (CPU, needs ``pip install -e .[deploy]``) the SCRIM
model is also exported to ONNX at batch 1 and this input size, and the
median latency of onnxruntime (same number of threads) against PyTorch
(fp32, ``predict``'s computation without the DataSamples) at batch 1 is
reported as a ratio (``scrim_mm.deployment.latency_ratio``).

The baseline is, by default, an mmpretrain ``ImageClassifier`` with the
SCRIM config's backbone, a ``GlobalAveragePooling`` neck and a
``LinearClsHead`` of the same number of classes, at the same input size;
``--baseline`` takes the model of another config instead. Any ``init_cfg``
or ``pretrained`` of the models is dropped (no download, random weights).
"""

import argparse
import contextlib
import copy
import gc
import json
import os
import os.path as osp
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
# The profiler's tracing library logs a harmless error per profile on
# machines without a GPU; keep its messages to fatal ones.
os.environ.setdefault('KINETO_LOG_LEVEL', '5')

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from mmengine.config import Config, ConfigDict, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import OptimWrapper, build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from torch.profiler import (  # noqa: E402
    ProfilerActivity,
    profile,
    record_function,
)

from scrim_mm.utils import apply_amp  # noqa: E402

# The parts of a SCRIM step, keyed by the names of the ``scrim/<name>``
# profiler ranges in the model code, and how they are printed.
PARTS = {
    'backbone_full': 'backbone, full image',
    'backbone_crops': 'backbone, crops',
    'navigator': 'navigators',
    'osme': 'OSME (CPL necks)',
    'anchors_nms': 'anchors + NMS',
    'crops': 'crop sampling',
    'heads': 'linear heads',
    'losses': 'losses',
    'optimizer': 'clip + optimizer step',
    'other': 'other',
}
# SCRIM's own work that is neither a convolution nor a linear layer: the
# part that must stay small next to the backbone.
OVERHEAD_PARTS = ('anchors_nms', 'crops', 'losses', 'other')
RANGE_PREFIX = 'scrim/'
_STEP_RANGE = 'benchmark/step'
_OPTIM_RANGE = 'benchmark/optimizer'
_BACKWARD_PREFIX = 'autograd::engine::evaluate_function:'
_DEFAULT_OPTIM = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=5.0),
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (List[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(
        description='Time, memory and FLOPs of SCRIM against its baseline'
    )
    parser.add_argument('config', help='the SCRIM config file')
    parser.add_argument(
        '--baseline',
        help='config of the baseline model; default: the SCRIM config '
        'backbone with GlobalAveragePooling and LinearClsHead',
    )
    parser.add_argument('--input-size', type=int, default=448)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision as tools/train.py --amp: fp16 autocast and '
        'loss scaling on CUDA, bf16 autocast on the CPU',
    )
    parser.add_argument(
        '--iters', type=int, default=5, help='timed steps per model and mode'
    )
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed steps before timing'
    )
    parser.add_argument(
        '--profile-iters',
        type=int,
        default=1,
        help='profiled steps for the per-part shares',
    )
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='channels-last memory format for both models (SCRIM through '
        'its channels_last option)',
    )
    parser.add_argument(
        '--threads', type=int, help='torch intra-op threads (CPU)'
    )
    parser.add_argument(
        '--retain-cpu-memory',
        action='store_true',
        help='glibc only: keep freed memory in the heap for reuse '
        '(mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=-1) instead of handing '
        'every block above 32 MiB back to the kernel and faulting it in '
        'again on the next step',
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument(
        '--onnxruntime',
        action='store_true',
        help='also time the SCRIM model exported to ONNX on onnxruntime '
        'against PyTorch at batch 1 (CPU)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override keys of the SCRIM config, e.g. '
        'model.fpl_head.num_train_parts=4',
    )
    args = parser.parse_args(argv)
    for name in ('input_size', 'batch_size', 'iters', 'profile_iters'):
        if getattr(args, name) < 1:
            raise SystemExit(
                f'--{name.replace("_", "-")} must be >= 1, got '
                f'{getattr(args, name)}.'
            )
    if args.warmup < 0:
        raise SystemExit(f'--warmup must be >= 0, got {args.warmup}.')
    if args.onnxruntime and args.device != 'cpu':
        raise SystemExit('--onnxruntime compares on the CPU: --device cpu.')
    return args


# ----------------------------------------------------------------------
# models
# ----------------------------------------------------------------------
def _strip_init(cfg: dict) -> None:
    """Drop every ``init_cfg`` / ``pretrained`` (no network access).

    Args:
        cfg (dict): A model config, changed in place (nested too).
    """
    if isinstance(cfg, dict):
        cfg.pop('init_cfg', None)
        cfg.pop('pretrained', None)
        for value in cfg.values():
            _strip_init(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _strip_init(value)


def load_model_cfg(
    path: str, cfg_options: Optional[dict] = None
) -> Tuple[Config, ConfigDict]:
    """Read a config and return it with its model config, init removed.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Overrides to merge.

    Returns:
        Tuple[Config, ConfigDict]: The config and a copy of its ``model``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file {path!r} does not exist.')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'{path}: the config has no `model`.')
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor', None) is not None:
        # As mmengine's Runner: a top-level preprocessor is the default.
        model_cfg.setdefault(
            'data_preprocessor', copy.deepcopy(cfg.data_preprocessor)
        )
    _strip_init(model_cfg)
    return cfg, model_cfg


def default_baseline_cfg(scrim_cfg: ConfigDict, scrim: nn.Module) -> dict:
    """The plain classifier on the SCRIM backbone.

    Args:
        scrim_cfg (ConfigDict): The SCRIM model config (init removed).
        scrim (nn.Module): The built SCRIM model; its head gives the number
            of classes and the channels of the last stage map.

    Returns:
        dict: An ``ImageClassifier`` config.
    """
    head = scrim.head
    for name in ('num_classes', 'in_channels'):
        if not isinstance(getattr(head, name, None), int):
            raise ValueError(
                f'The SCRIM head ({type(head).__name__}) has no integer '
                f'`{name}`; pass --baseline CONFIG.'
            )
    cfg = dict(
        type='ImageClassifier',
        backbone=copy.deepcopy(scrim_cfg.backbone),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=head.num_classes,
            in_channels=head.in_channels,
        ),
    )
    if 'data_preprocessor' in scrim_cfg:
        cfg['data_preprocessor'] = copy.deepcopy(scrim_cfg.data_preprocessor)
    return cfg


def build_model(
    model_cfg: dict, device: str, channels_last: bool
) -> nn.Module:
    """Build, initialise (randomly) and move a model.

    Args:
        model_cfg (dict): Model config without pretrained weights.
        device (str): ``'cpu'`` or ``'cuda'``.
        channels_last (bool): Store the 4-d weights channels-last.

    Returns:
        nn.Module: The model.
    """
    from mmpretrain.registry import MODELS

    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def make_optim_wrapper(
    cfg: Config, model: nn.Module, amp: bool, device: str
) -> OptimWrapper:
    """The config's optimizer wrapper (or SGD), AMP as tools/train.py.

    Args:
        cfg (Config): The SCRIM config (its ``optim_wrapper`` is used when
            it has one).
        model (nn.Module): The model to optimise.
        amp (bool): Apply ``--amp`` as ``tools/train.py`` does.
        device (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        OptimWrapper: The wrapper, its ``step`` inside a profiler range.
    """
    wrapper_cfg = copy.deepcopy(cfg.get('optim_wrapper', None))
    if wrapper_cfg is None:
        wrapper_cfg = copy.deepcopy(_DEFAULT_OPTIM)
    holder = Config(dict(optim_wrapper=wrapper_cfg))
    if amp:
        apply_amp(holder, cuda=device == 'cuda')
    wrapper = build_optim_wrapper(model, holder.optim_wrapper)
    step = wrapper.step

    def ranged_step(*args, **kwargs):
        with record_function(_OPTIM_RANGE):
            return step(*args, **kwargs)

    wrapper.step = ranged_step
    return wrapper


# ----------------------------------------------------------------------
# steps
# ----------------------------------------------------------------------
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


def retain_cpu_memory() -> None:
    """Make glibc's malloc keep freed memory for reuse.

    By default glibc serves every block above its mmap threshold (at most
    32 MiB) with a fresh ``mmap`` and unmaps it on free, so the next step
    page-faults and zero-fills it again. No mmap and no trimming turn the
    heap into a cache, as CUDA's caching allocator is. The same as starting
    the process with ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:``
    ``glibc.malloc.trim_threshold=<large>``.

    Raises:
        SystemExit: If the C library has no ``mallopt`` (not glibc).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library('c')
    libc = ctypes.CDLL(name) if name else None
    mallopt = getattr(libc, 'mallopt', None)
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    if mallopt is None or not (
        mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, -1)
    ):
        raise SystemExit(
            '--retain-cpu-memory needs glibc (mallopt); this C library '
            f'({name}) has none.'
        )


def _autocast(device: str, amp: bool):
    """Autocast as the AMP optimizer wrappers do, or nothing.

    Args:
        device (str): ``'cpu'`` (bf16) or ``'cuda'`` (fp16).
        amp (bool): Whether to autocast at all.

    Returns:
        A context manager.
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
        Dict[str, Callable]: ``'infer'`` and ``'train'``.
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
    """Wait for the device's queued work (CUDA) before reading a clock.

    Args:
        device (str): ``'cpu'`` or ``'cuda'``.
    """
    if device == 'cuda':
        torch.cuda.synchronize()


def time_steps(
    steps: Dict[str, Callable[[], object]],
    iters: int,
    warmup: int,
    device: str,
) -> Dict[str, List[float]]:
    """Time the steps of several models, interleaved.

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


def _cpu_seconds() -> Tuple[float, float]:
    """User and system CPU seconds of this process (all its threads)."""
    times = os.times()
    return times.user, times.system


# ----------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------
def _tensor_bytes(
    model: Optional[nn.Module], wrapper: Optional[OptimWrapper]
) -> int:
    """Bytes of the tensors of a model and / or its optimizer state."""
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
    optim_bytes = 0 if training else _tensor_bytes(None, wrapper)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated()) - optim_bytes
    resident = _tensor_bytes(model, wrapper) - optim_bytes
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


# ----------------------------------------------------------------------
# FLOPs
# ----------------------------------------------------------------------
def count_flops(
    model: nn.Module, inputs: torch.Tensor, training: bool
) -> Tuple[float, Dict[str, float]]:
    """Per-image forward FLOPs (multiply-adds) in ``'tensor'`` mode.

    Args:
        model (nn.Module): The model (a copy is traced; its BN statistics
            stay untouched).
        inputs (Tensor): A preprocessed batch.
        training (bool): Trace in train mode (``M`` crops) or eval mode.

    Returns:
        Tuple[float, Dict[str, float]]: FLOPs per image, and per top-level
        child module.
    """
    from mmengine.analysis import FlopAnalyzer

    clone = copy.deepcopy(model)
    clone.train(training)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with torch.no_grad():
            analyzer = FlopAnalyzer(clone, (inputs,))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            total = analyzer.total()
            by_module = analyzer.by_module()
    batch = inputs.shape[0]
    children = {
        name: by_module.get(name, 0) / batch
        for name, _ in clone.named_children()
        if name != 'data_preprocessor'
    }
    del clone
    return total / batch, children


# ----------------------------------------------------------------------
# per-part shares
# ----------------------------------------------------------------------
def _part_of(name: str) -> str:
    """The part key of a ``scrim/<part>`` range name.

    Args:
        name (str): The range name.

    Returns:
        str: A key of :data:`PARTS`; ``'other'`` for unknown parts.
    """
    part = name[len(RANGE_PREFIX) :]
    return part if part in PARTS else 'other'


def part_shares(events) -> Dict[str, float]:
    """Split the wall time of profiled steps into the parts of SCRIM.

    Args:
        events: ``prof.events()`` of steps run inside ``benchmark/step``
            ranges, with ``scrim/<part>`` ranges in the model code.

    Returns:
        Dict[str, float]: Seconds per part (keys of :data:`PARTS`), summed
        over the profiled steps, plus ``'total'``.
    """
    owner = {}

    def scope(event) -> Optional[object]:
        """The innermost ``scrim/`` or optimizer range holding ``event``."""
        key = id(event)
        if key not in owner:
            parent = event.cpu_parent
            if parent is None:
                owner[key] = None
            elif parent.name.startswith(RANGE_PREFIX) or (
                parent.name == _OPTIM_RANGE
            ):
                owner[key] = parent
            else:
                owner[key] = scope(parent)
        return owner[key]

    times = dict.fromkeys(PARTS, 0.0)
    total = 0.0
    forward_part = {}
    backward = []
    for event in events:
        name = event.name
        duration = event.time_range.elapsed_us() * 1e-6
        if name == _STEP_RANGE:
            total += duration
        elif name.startswith(_BACKWARD_PREFIX):
            backward.append(event)
            continue
        outer = scope(event)
        if name.startswith(RANGE_PREFIX) or name == _OPTIM_RANGE:
            part = 'optimizer' if name == _OPTIM_RANGE else _part_of(name)
            times[part] += duration
            if outer is not None:
                # Nested range: the time is the inner part's, not the
                # outer's.
                outer_part = (
                    'optimizer'
                    if outer.name == _OPTIM_RANGE
                    else _part_of(outer.name)
                )
                times[outer_part] -= duration
        if event.sequence_nr >= 0 and outer is not None:
            forward_part.setdefault(
                (event.sequence_nr, event.thread),
                'optimizer'
                if outer.name == _OPTIM_RANGE
                else _part_of(outer.name),
            )
    for event in backward:
        # Only the outermost backward function calls: a nested one is
        # already inside its parent's time.
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith(
            _BACKWARD_PREFIX
        ):
            parent = parent.cpu_parent
        if parent is not None:
            continue
        part = forward_part.get(
            (event.sequence_nr, event.fwd_thread),
            'other',
        )
        times[part] += event.time_range.elapsed_us() * 1e-6
    times['other'] += total - sum(times.values())
    times['total'] = total
    return times


def profile_parts(fn: Callable[[], object], iters: int) -> Dict[str, float]:
    """Profile ``iters`` calls of a step and split them into parts.

    Args:
        fn (Callable): The step.
        iters (int): Profiled calls.

    Returns:
        Dict[str, float]: Fractions of the step's wall time per part (keys
        of :data:`PARTS`), and ``'total'`` seconds per step.
    """
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            with record_function(_STEP_RANGE):
                fn()
    times = part_shares(prof.events())
    total = times.pop('total')
    shares = {k: v / total for k, v in times.items()}
    shares['total'] = total / iters
    return shares


# ----------------------------------------------------------------------
# report
# ----------------------------------------------------------------------
def _fmt_row(label: str, scrim: str, base: str, ratio: str) -> str:
    """One line of the report table.

    Args:
        label (str): Row label.
        scrim (str): SCRIM's value.
        base (str): The baseline's value.
        ratio (str): Their ratio, or ``''``.

    Returns:
        str: The aligned line.
    """
    return f'{label:<30}{scrim:>12}{base:>12}{ratio:>10}'


def format_report(res: dict) -> str:
    """Render the results as the text table the tool prints.

    Args:
        res (dict): The results of :func:`run_benchmark`.

    Returns:
        str: The report.
    """
    s, b, r = res['scrim'], res['baseline'], res['ratios']
    st = res['settings']
    mib = 1024.0**2
    lines = [
        f'SCRIM benchmark: {st["config"]} vs {st["baseline"]}',
        f'device {st["device"]} ({st["device_name"]}), '
        f'input {st["input_size"]}x{st["input_size"]}, '
        f'batch {st["batch_size"]}, amp {st["amp"]}, '
        f'channels_last {st["channels_last"]}, '
        f'retain_cpu_memory {st["retain_cpu_memory"]}, '
        f'{st["iters"]} timed steps (+{st["warmup"]} warm-up), medians',
        '',
        _fmt_row('', 'SCRIM', 'baseline', 'ratio'),
    ]
    for mode, label in (('infer', 'inference'), ('train', 'training')):
        lines.append(
            _fmt_row(
                f'{label} time (ms)',
                f'{s[mode]["time"] * 1e3:.1f}',
                f'{b[mode]["time"] * 1e3:.1f}',
                f'{r[mode]["time"]:.2f}',
            )
        )
        lines.append(
            _fmt_row(
                f'{label} CPU time (ms)',
                f'{s[mode]["cpu_time"] * 1e3:.1f}',
                f'{b[mode]["cpu_time"] * 1e3:.1f}',
                f'{r[mode]["cpu_time"]:.2f}',
            )
        )
        lines.append(
            _fmt_row(
                '  of which system (ms)',
                f'{s[mode]["sys_time"] * 1e3:.1f}',
                f'{b[mode]["sys_time"] * 1e3:.1f}',
                '',
            )
        )
        lines.append(
            _fmt_row(
                f'{label} img/s',
                f'{s[mode]["img_per_s"]:.2f}',
                f'{b[mode]["img_per_s"]:.2f}',
                '',
            )
        )
        lines.append(
            _fmt_row(
                f'{label} peak memory (MiB)',
                f'{s[mode]["memory"] / mib:.1f}',
                f'{b[mode]["memory"] / mib:.1f}',
                f'{r[mode]["memory"]:.2f}',
            )
        )
        lines.append(
            _fmt_row(
                f'{label} GFLOPs/img',
                f'{s[mode]["flops"] / 1e9:.2f}',
                f'{b[mode]["flops"] / 1e9:.2f}',
                f'{r[mode]["flops"]:.2f}',
            )
        )
    lines.append('')
    for mode, label in (('infer', 'inference'), ('train', 'training')):
        lines.append(
            f'{label}: time ratio {r[mode]["time"]:.2f}, FLOP ratio '
            f'{r[mode]["flops"]:.2f}, time/FLOP ratio '
            f'{r[mode]["time_per_flop"]:.2f}'
        )
    lines.append(
        'FLOPs of SCRIM by module (train, GFLOPs/img): '
        + ', '.join(
            f'{k} {v / 1e9:.3f}' for k, v in s['train']['flops_by_module']
        )
    )
    for mode, label in (('train', 'training'), ('infer', 'inference')):
        shares = s[mode]['shares']
        lines.append('')
        lines.append(
            f'SCRIM {label} step by part (profiled, '
            f'{shares["total"] * 1e3:.1f} ms per step):'
        )
        for key, name in PARTS.items():
            lines.append(f'  {name:<28}{shares[key] * 100:6.1f}%')
        lines.append(
            f'  {"SCRIM non-conv/linear work":<28}'
            f'{s[mode]["overhead"] * 100:6.1f}%  '
            f'({" + ".join(PARTS[k] for k in OVERHEAD_PARTS)})'
        )
    if 'onnxruntime' in res:
        o = res['onnxruntime']
        lines += [
            '',
            f'onnxruntime vs PyTorch at batch 1 (ONNX file '
            f'{o["onnx_mib"]:.1f} MiB): {o["onnxruntime_ms"]:.1f} ms vs '
            f'{o["torch_ms"]:.1f} ms, median ratio {o["ratio"]:.2f}',
        ]
    return '\n'.join(lines)


def onnxruntime_latency(
    model: nn.Module, cfg: Config, args: argparse.Namespace
) -> Dict[str, float]:
    """Export SCRIM at batch 1 and time onnxruntime against PyTorch.

    Args:
        model (nn.Module): The SCRIM model (CPU).
        cfg (Config): Its config (for the file's metadata).
        args (argparse.Namespace): ``input_size``, ``iters``, ``warmup``,
            ``seed``.

    Returns:
        dict: What :func:`scrim_mm.deployment.latency_ratio` returns, plus
        ``onnx_mib`` (the file size).
    """
    import tempfile

    from scrim_mm.deployment import (
        ONNXRuntimeSCRIM,
        build_metadata,
        export_onnx,
        latency_ratio,
    )

    size = (args.input_size, args.input_size)
    num_classes = int(getattr(model.head, 'num_classes', 2))
    batch = make_batch(1, args.input_size, num_classes, 'cpu', args.seed)
    with torch.no_grad():
        inputs = model.data_preprocessor(batch(), False)['inputs']
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(
            model.eval(),
            osp.join(tmp, 'scrim.onnx'),
            size,
            metadata=build_metadata(cfg, model, size),
        )
        runner = ONNXRuntimeSCRIM(path, num_threads=torch.get_num_threads())
        res = latency_ratio(
            model, runner, inputs, iters=args.iters, warmup=args.warmup
        )
        res['onnx_mib'] = osp.getsize(path) / 1024.0**2
        del runner
    return res


# ----------------------------------------------------------------------
# main
# ----------------------------------------------------------------------
def run_benchmark(args: argparse.Namespace) -> dict:
    """Build both models and measure them.

    Args:
        args (argparse.Namespace): The options of :func:`parse_args`.

    Returns:
        dict: ``settings``, ``scrim``, ``baseline`` (per mode: ``time``
        (median seconds), ``times``, ``img_per_s``, ``memory`` (bytes),
        ``flops`` (per image), SCRIM also ``shares`` and ``overhead``) and
        ``ratios`` (per mode: ``time``, ``flops``, ``time_per_flop``,
        ``memory``).
    """
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available here.')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.retain_cpu_memory:
        retain_cpu_memory()
    # Keep the weight-initialisation log of mmengine out of the report.
    MMLogger.get_instance('scrim_benchmark', log_level='WARNING')
    torch.manual_seed(args.seed)
    cfg_options = dict(args.cfg_options or {})
    if args.channels_last:
        cfg_options['model.channels_last'] = True
    cfg, scrim_cfg = load_model_cfg(args.config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    scrim = build_model(scrim_cfg, args.device, args.channels_last)
    if args.baseline:
        _, base_cfg = load_model_cfg(args.baseline)
        baseline_name = args.baseline
    else:
        base_cfg = default_baseline_cfg(scrim_cfg, scrim)
        baseline_name = (
            f'ImageClassifier({base_cfg["backbone"]["type"]} + '
            'GlobalAveragePooling + LinearClsHead)'
        )
    baseline = build_model(base_cfg, args.device, args.channels_last)
    num_classes = int(getattr(scrim.head, 'num_classes', 2))
    batch = make_batch(
        args.batch_size,
        args.input_size,
        num_classes,
        args.device,
        args.seed,
    )
    models = dict(scrim=scrim, baseline=baseline)
    wrappers = {
        k: make_optim_wrapper(cfg, m, args.amp, args.device)
        for k, m in models.items()
    }
    steps = {
        k: make_steps(m, wrappers[k], batch, args.device, args.amp)
        for k, m in models.items()
    }
    res = dict(scrim={}, baseline={}, ratios={})
    for mode in ('infer', 'train'):
        times, cpu_times, sys_times = time_steps(
            {k: steps[k][mode] for k in models},
            args.iters,
            args.warmup,
            args.device,
        )
        for k in models:
            median = statistics.median(times[k])
            res[k][mode] = dict(
                time=median,
                times=times[k],
                img_per_s=args.batch_size / median,
                cpu_time=statistics.median(cpu_times[k]),
                sys_time=statistics.median(sys_times[k]),
            )
    for k, model in models.items():
        for mode in ('infer', 'train'):
            res[k][mode]['memory'] = peak_memory(
                steps[k][mode],
                model,
                wrappers[k],
                args.device,
                mode == 'train',
            )
        with torch.no_grad():
            inputs = model.data_preprocessor(batch(), False)['inputs']
        for mode in ('infer', 'train'):
            flops, by_module = count_flops(model, inputs, mode == 'train')
            res[k][mode]['flops'] = flops
            res[k][mode]['flops_by_module'] = list(by_module.items())
    for mode in ('train', 'infer'):
        shares = profile_parts(steps['scrim'][mode], args.profile_iters)
        res['scrim'][mode]['shares'] = shares
        res['scrim'][mode]['overhead'] = sum(shares[k] for k in OVERHEAD_PARTS)
    for mode in ('infer', 'train'):
        s, b = res['scrim'][mode], res['baseline'][mode]
        time_ratio = s['time'] / b['time']
        flop_ratio = s['flops'] / b['flops']
        res['ratios'][mode] = dict(
            time=time_ratio,
            cpu_time=s['cpu_time'] / b['cpu_time'],
            flops=flop_ratio,
            time_per_flop=time_ratio / flop_ratio,
            memory=s['memory'] / b['memory'],
        )
    if args.onnxruntime:
        res['onnxruntime'] = onnxruntime_latency(scrim, cfg, args)
    if args.device == 'cuda':
        device_name = torch.cuda.get_device_name()
    else:
        device_name = f'{torch.get_num_threads()} threads'
    res['settings'] = dict(
        config=args.config,
        baseline=baseline_name,
        device=args.device,
        device_name=device_name,
        input_size=args.input_size,
        batch_size=args.batch_size,
        amp=args.amp,
        channels_last=args.channels_last,
        retain_cpu_memory=args.retain_cpu_memory,
        iters=args.iters,
        warmup=args.warmup,
        torch=torch.__version__,
    )
    return res


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point: run, print the report, optionally write JSON.

    Args:
        argv (List[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        dict: The results of :func:`run_benchmark`.
    """
    args = parse_args(argv)
    res = run_benchmark(args)
    print(format_report(res), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
