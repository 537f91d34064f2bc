# Copyright (c) scrim-mm contributors. All rights reserved.
"""The text report of a benchmark run."""

from .parts import OVERHEAD_PARTS, PARTS

__all__ = ['format_report']

_MODES = (('infer', 'inference'), ('train', 'training'))


def _fmt_row(label: str, scrim: str, base: str, ratio: str) -> str:
    """One aligned line of the report table."""
    return f'{label:<30}{scrim:>12}{base:>12}{ratio:>10}'


def _mode_rows(res: dict, mode: str, label: str) -> list:
    """The table rows of one mode (inference or training)."""
    s, b, r = res['scrim'][mode], res['baseline'][mode], res['ratios'][mode]
    mib = 1024.0**2
    return [
        _fmt_row(
            f'{label} time (ms)',
            f'{s["time"] * 1e3:.1f}',
            f'{b["time"] * 1e3:.1f}',
            f'{r["time"]:.2f}',
        ),
        _fmt_row(
            f'{label} CPU time (ms)',
            f'{s["cpu_time"] * 1e3:.1f}',
            f'{b["cpu_time"] * 1e3:.1f}',
            'n/a' if r['cpu_time'] is None else f'{r["cpu_time"]:.2f}',
        ),
        _fmt_row(
            '  of which system (ms)',
            f'{s["sys_time"] * 1e3:.1f}',
            f'{b["sys_time"] * 1e3:.1f}',
            '',
        ),
        _fmt_row(
            f'{label} img/s',
            f'{s["img_per_s"]:.2f}',
            f'{b["img_per_s"]:.2f}',
            '',
        ),
        _fmt_row(
            f'{label} peak memory (MiB)',
            f'{s["memory"] / mib:.1f}',
            f'{b["memory"] / mib:.1f}',
            f'{r["memory"]:.2f}',
        ),
        _fmt_row(
            f'{label} GFLOPs/img',
            f'{s["flops"] / 1e9:.2f}',
            f'{b["flops"] / 1e9:.2f}',
            f'{r["flops"]:.2f}',
        ),
    ]


def format_report(res: dict) -> str:
    """Render the results as the text table the tool prints.

    Args:
        res (dict): The results of :func:`run_benchmark`.

    Returns:
        str: The report.
    """
    s, r, st = res['scrim'], res['ratios'], res['settings']
    lines = [
        f'SCRIM benchmark: {st["config"]} vs {st["baseline"]}',
        f'device {st["device"]} ({st["device_name"]}), '
        f'input {st["input_size"]}x{st["input_size"]}, '
        f'batch {st["batch_size"]}, amp {st["amp"]}, '
        f'channels_last {st["channels_last"]}, '
        f'retain_cpu_memory {st["retain_cpu_memory"]}, '
        f'compile {st["compile"]}, '
        f'{st["iters"]} timed steps (+{st["warmup"]} warm-up), medians',
        '',
        _fmt_row('', 'SCRIM', 'baseline', 'ratio'),
    ]
    for mode, label in _MODES:
        lines += _mode_rows(res, mode, label)
    lines.append('')
    for mode, label in _MODES:
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
    for mode, label in reversed(_MODES):
        shares = s[mode].get('shares')
        if shares is None:
            continue
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
