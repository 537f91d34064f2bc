# Copyright (c) scrim-mm contributors. All rights reserved.
"""Run a whole benchmark: SCRIM against its baseline, one process."""

import statistics
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from ..utils import compile_steps, describe_machine, retain_cpu_memory
from .flops import count_flops
from .memory import peak_memory
from .models import (
    build_model,
    default_baseline_cfg,
    load_model_cfg,
    make_optim_wrapper,
)
from .onnx_latency import onnxruntime_latency
from .parts import OVERHEAD_PARTS, profile_parts
from .steps import make_batch, make_steps, time_steps

__all__ = ['BenchmarkOptions', 'run_benchmark']

_MODES = ('infer', 'train')


@dataclass
class BenchmarkOptions:
    """What to measure, and how; the defaults are the tools' defaults.

    Args:
        config (str): The SCRIM config file.
        baseline (str, optional): A config of the baseline model. None
            gives mmpretrain's ``ImageClassifier`` on the SCRIM backbone
            with ``GlobalAveragePooling`` and ``LinearClsHead``.
        input_size (int): Square input size. Defaults to 448.
        batch_size (int): Images per step. Defaults to 2.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        amp (bool): Mixed precision as ``tools/train.py --amp``. Defaults
            to False.
        iters (int): Timed steps per model and mode. Defaults to 5.
        warmup (int): Untimed steps first. Defaults to 2.
        profile_iters (int): Profiled steps for the per-part shares; 0
            skips the profile, as ``compile`` does (the profiler ranges
            of the parts are compiled away). Defaults to 1.
        channels_last (bool, optional): The memory format of both models.
            None keeps the SCRIM config's own choice (on by default, see
            :class:`SCRIMClassifier`) and gives it to the baseline too.
        threads (int, optional): Torch intra-op threads. None keeps
            torch's own default, as the tools do.
        retain_cpu_memory (bool, optional): Keep freed CPU memory in the
            heap (see :func:`scrim_mm.utils.retain_cpu_memory`). None
            follows ``SCRIM_RETAIN_CPU_MEMORY``, as the tools do (on unless
            it is ``0``).
        compile (bool): ``torch.compile`` the steps as ``tools/train.py
            --compile`` does. Defaults to False.
        seed (int): Random seed. Defaults to 0.
        onnxruntime (bool): Also export SCRIM to ONNX at batch 1 and time
            onnxruntime against PyTorch (CPU only, needs the ``deploy``
            extra). Defaults to False.
        cfg_options (dict, optional): Overrides of the SCRIM config.
    """

    config: str
    baseline: Optional[str] = None
    input_size: int = 448
    batch_size: int = 2
    device: str = 'cpu'
    amp: bool = False
    iters: int = 5
    warmup: int = 2
    profile_iters: int = 1
    channels_last: Optional[bool] = None
    threads: Optional[int] = None
    retain_cpu_memory: Optional[bool] = None
    compile: bool = False
    seed: int = 0
    onnxruntime: bool = False
    cfg_options: Optional[dict] = field(default=None)

    def __post_init__(self) -> None:
        for name in ('input_size', 'batch_size', 'iters'):
            if getattr(self, name) < 1:
                raise ValueError(
                    f'{name}={getattr(self, name)}: must be >= 1; pass a '
                    'positive number.'
                )
        for name in ('warmup', 'profile_iters'):
            if getattr(self, name) < 0:
                raise ValueError(
                    f'{name}={getattr(self, name)}: must be >= 0; pass 0 '
                    'or more.'
                )
        if self.onnxruntime and self.device != 'cpu':
            raise ValueError(
                f'onnxruntime=True with device={self.device!r}: the '
                'onnxruntime comparison runs on the CPU; use device="cpu".'
            )
        if self.device not in ('cpu', 'cuda'):
            raise ValueError(
                f'device={self.device!r}: unknown; use "cpu" or "cuda".'
            )


def _build_models(opts: BenchmarkOptions):
    """Build SCRIM and its baseline in the same memory format.

    Returns:
        tuple: ``(cfg, models, baseline_name, channels_last)``.
    """
    cfg_options = dict(opts.cfg_options or {})
    if opts.channels_last is not None:
        cfg_options['model.channels_last'] = opts.channels_last
    cfg, scrim_cfg = load_model_cfg(opts.config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    scrim = build_model(scrim_cfg, opts.device)
    # The baseline gets SCRIM's memory format so that the ratios measure
    # SCRIM's extra work, not a layout difference.
    channels_last = bool(getattr(scrim, 'channels_last', False))
    if opts.baseline:
        _, base_cfg = load_model_cfg(opts.baseline)
        baseline_name = opts.baseline
    else:
        base_cfg = default_baseline_cfg(scrim_cfg, scrim)
        baseline_name = (
            f'ImageClassifier({base_cfg["backbone"]["type"]} + '
            'GlobalAveragePooling + LinearClsHead)'
        )
    baseline = build_model(base_cfg, opts.device, channels_last)
    models = dict(scrim=scrim, baseline=baseline)
    return cfg, models, baseline_name, channels_last


def _ratio(num: float, den: float) -> Optional[float]:
    """``num / den``, or None where the baseline measured 0."""
    return num / den if den > 0 else None


def _ratios(scrim: dict, base: dict) -> dict:
    """SCRIM / baseline ratios of one mode.

    The CPU time ratio is None where the baseline's median CPU time is 0
    (a clock too coarse for the step), not a meaningless huge number.
    """
    time_ratio = scrim['time'] / base['time']
    flop_ratio = scrim['flops'] / base['flops']
    return dict(
        time=time_ratio,
        cpu_time=_ratio(scrim['cpu_time'], base['cpu_time']),
        flops=flop_ratio,
        time_per_flop=time_ratio / flop_ratio,
        memory=scrim['memory'] / base['memory'],
    )


def run_benchmark(opts: BenchmarkOptions) -> dict:
    """Build both models and measure them.

    Args:
        opts (BenchmarkOptions): What to measure.

    Returns:
        dict: ``settings``, ``scrim``, ``baseline`` (per mode: ``time``
        (median seconds), ``times``, ``img_per_s``, ``cpu_time``,
        ``sys_time``, ``memory`` (bytes), ``flops`` (per image),
        ``flops_by_module``; SCRIM also ``shares`` and ``overhead`` when
        profiled) and ``ratios`` (per mode: ``time``, ``cpu_time``,
        ``flops``, ``time_per_flop``, ``memory``).

    Raises:
        RuntimeError: ``device='cuda'`` without CUDA.
    """
    if opts.device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('device=cuda: CUDA is not available here.')
    if opts.threads:
        torch.set_num_threads(opts.threads)
    retained = retain_cpu_memory(opts.retain_cpu_memory)
    # Keep the weight-initialisation log of mmengine out of the report.
    MMLogger.get_instance('scrim_benchmark', log_level='WARNING')
    torch.manual_seed(opts.seed)
    cfg, models, baseline_name, channels_last = _build_models(opts)
    batch = make_batch(
        opts.batch_size,
        opts.input_size,
        int(getattr(models['scrim'].head, 'num_classes', 2)),
        opts.device,
        opts.seed,
    )
    res = dict(scrim={}, baseline={}, ratios={})
    for name, model in models.items():
        # FLOPs first: the analyzer traces an eager copy of the model.
        with torch.no_grad():
            inputs = model.data_preprocessor(batch(), False)['inputs']
        for mode in _MODES:
            flops, by_module = count_flops(model, inputs, mode == 'train')
            res[name][mode] = dict(
                flops=flops, flops_by_module=list(by_module.items())
            )
        if opts.compile:
            compile_steps(model, ('train_step', 'test_step'))
    wrappers = {
        k: make_optim_wrapper(cfg, m, opts.amp, opts.device)
        for k, m in models.items()
    }
    steps = {
        k: make_steps(m, wrappers[k], batch, opts.device, opts.amp)
        for k, m in models.items()
    }
    for mode in _MODES:
        times, cpu_times, sys_times = time_steps(
            {k: steps[k][mode] for k in models},
            opts.iters,
            opts.warmup,
            opts.device,
        )
        for k in models:
            median = statistics.median(times[k])
            res[k][mode].update(
                time=median,
                times=times[k],
                img_per_s=opts.batch_size / median,
                cpu_time=statistics.median(cpu_times[k]),
                sys_time=statistics.median(sys_times[k]),
            )
    for k, model in models.items():
        for mode in _MODES:
            res[k][mode]['memory'] = peak_memory(
                steps[k][mode],
                model,
                wrappers[k],
                opts.device,
                mode == 'train',
            )
    # A compiled model does not call the parts' methods: no shares then.
    if opts.profile_iters and not opts.compile:
        for mode in ('train', 'infer'):
            shares = profile_parts(
                steps['scrim'][mode], opts.profile_iters, models['scrim']
            )
            res['scrim'][mode]['shares'] = shares
            res['scrim'][mode]['overhead'] = sum(
                shares[k] for k in OVERHEAD_PARTS
            )
    for mode in _MODES:
        res['ratios'][mode] = _ratios(
            res['scrim'][mode], res['baseline'][mode]
        )
    if opts.onnxruntime:
        res['onnxruntime'] = onnxruntime_latency(
            models['scrim'],
            cfg,
            opts.input_size,
            opts.iters,
            opts.warmup,
            opts.seed,
        )
    device_name = describe_machine()
    settings = asdict(opts)
    settings.update(
        baseline=baseline_name,
        device_name=device_name,
        channels_last=channels_last,
        retain_cpu_memory=retained,
        torch=torch.__version__,
    )
    res['settings'] = settings
    return res
