# Copyright (c) scrim-mm contributors. All rights reserved.
"""The machine that a measurement ran on, in one line."""

import os

import torch

#: Where :func:`describe_machine` reads the CPU (Linux; absent elsewhere).
CPUINFO = '/proc/cpuinfo'
L2_SIZE = '/sys/devices/system/cpu/cpu0/cache/index2/size'


def _first_cpu() -> dict:
    """The fields of the first processor in :data:`CPUINFO`, or {}."""
    info = {}
    try:
        with open(CPUINFO) as f:
            for line in f:
                key, sep, value = line.partition(':')
                if not sep:
                    if info:  # the end of the first processor's block
                        break
                    continue
                info.setdefault(key.strip(), value.strip())
    except OSError:  # absent or unreadable: the fields are unknown
        pass
    return info


def describe_machine() -> str:
    """What CPU and GPU figures depend on, in one line.

    CPU runs are deterministic for one thread setting on one machine only:
    machines of the same kind with another CPU gave other figures from the
    same command (``docs/part_benchmark.md``), as oneDNN picks its kernels
    by CPU. The line names the CPU model and its ids, its L2 cache, the
    torch build and its CPU capability, the GPU when CUDA is available
    (where mmengine's runners train), and the thread count. What cannot be
    read is ``unknown``.

    Returns:
        str: ``<cpu> (family F model M stepping S), L2 <size>, <n> CPUs,
        torch <version> (<capability>)[, GPU <name> (CUDA <version>)],
        <n> threads``.
    """
    info = _first_cpu()
    try:
        with open(L2_SIZE) as f:
            l2 = f.read().strip()
    except OSError:
        l2 = 'unknown'
    ids = ' '.join(
        f'{name} {info.get(key, "?")}'
        for name, key in (
            ('family', 'cpu family'),
            ('model', 'model'),
            ('stepping', 'stepping'),
        )
    )
    gpu = ''
    if torch.cuda.is_available():
        gpu = (
            f', GPU {torch.cuda.get_device_name()} '
            f'(CUDA {torch.version.cuda})'
        )
    threads = torch.get_num_threads()
    return (
        f'{info.get("model name", "unknown CPU")} ({ids}), L2 {l2}, '
        f'{os.cpu_count()} CPUs, torch {torch.__version__} '
        f'({torch.backends.cpu.get_cpu_capability()}){gpu}, {threads} '
        f'thread{"" if threads == 1 else "s"}'
    )
