# Copyright (c) scrim-mm contributors. All rights reserved.
"""Split the time of a SCRIM step into the parts of the model.

While it profiles, the benchmark runs each part of the model inside a
``torch.profiler.record_function`` range named ``scrim/<part>``
(:func:`part_ranges` wraps the parts' methods; the model code has no
ranges), every step in :data:`STEP_RANGE` and the optimizer step in
:data:`OPTIM_RANGE`.
"""

from contextlib import contextmanager, nullcontext
from typing import Callable, Dict, Iterator, Optional

import torch.nn as nn
from torch.profiler import ProfilerActivity, profile, record_function

__all__ = [
    'PARTS',
    'OVERHEAD_PARTS',
    'RANGE_PREFIX',
    'STEP_RANGE',
    'OPTIM_RANGE',
    'part_ranges',
    'part_shares',
    'profile_parts',
]

#: The parts of a SCRIM step, keyed by the names of the ``scrim/<name>``
#: profiler ranges in the model code, and how they are printed.
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
#: SCRIM's own work that is neither a convolution nor a linear layer: the
#: part that must stay small next to the backbone.
OVERHEAD_PARTS = ('anchors_nms', 'crops', 'losses', 'other')
RANGE_PREFIX = 'scrim/'
STEP_RANGE = 'benchmark/step'
OPTIM_RANGE = 'benchmark/optimizer'
_BACKWARD_PREFIX = 'autograd::engine::evaluate_function:'


def _part_of(name: str) -> str:
    """The part key of a range name.

    Args:
        name (str): A ``scrim/<part>`` range name or :data:`OPTIM_RANGE`.

    Returns:
        str: A key of :data:`PARTS`; ``'other'`` for unknown parts.
    """
    if name == OPTIM_RANGE:
        return 'optimizer'
    part = name[len(RANGE_PREFIX) :]
    return part if part in PARTS else 'other'


def _is_part_range(name: str) -> bool:
    """Whether a profiler event is one of the ranges of :data:`PARTS`."""
    return name.startswith(RANGE_PREFIX) or name == OPTIM_RANGE


@contextmanager
def part_ranges(model: nn.Module) -> Iterator[None]:
    """Run the parts of a SCRIM model inside ``scrim/<part>`` ranges.

    The methods of the parts are wrapped on the instances for the time of
    the block, and restored after it. The backbone's range is
    ``backbone_crops`` while :meth:`SCRIMClassifier.encode_crops` runs and
    ``backbone_full`` otherwise. A part the model lacks (no FPL head) is
    skipped.

    Args:
        model (nn.Module): A :class:`~scrim_mm.models.SCRIMClassifier`.
    """
    in_crops = [False]
    patched = []

    def wrap(obj, attr: str, part) -> None:
        """Run ``obj.attr`` inside the range of ``part`` (a name, or a
        function giving it at call time)."""
        method = getattr(obj, attr)

        def ranged(*args, **kwargs):
            name = part() if callable(part) else part
            with record_function(RANGE_PREFIX + name):
                return method(*args, **kwargs)

        setattr(obj, attr, ranged)
        patched.append((obj, attr))

    def mark_crops(obj, attr: str) -> None:
        """Flag the backbone calls made inside ``obj.attr`` as crops."""
        method = getattr(obj, attr)

        def flagged(*args, **kwargs):
            in_crops[0] = True
            try:
                return method(*args, **kwargs)
            finally:
                in_crops[0] = False

        setattr(obj, attr, flagged)
        patched.append((obj, attr))

    fpl = getattr(model, 'fpl_head', None)
    wrap(
        model.backbone,
        'forward',
        lambda: 'backbone_crops' if in_crops[0] else 'backbone_full',
    )
    wrap(model.neck, 'forward', 'osme')
    wrap(model.head, 'forward_all', 'heads')
    wrap(model.head, 'loss', 'losses')
    if fpl is not None:
        mark_crops(model, 'encode_crops')
        wrap(fpl, 'forward', 'anchors_nms')
        for navigator in fpl.navigators:
            wrap(navigator, 'forward', 'navigator')
        wrap(fpl, 'crop', 'crops')
        wrap(fpl, 'teacher', 'heads')
        wrap(fpl, 'loss', 'losses')
    try:
        yield
    finally:
        for obj, attr in reversed(patched):
            delattr(obj, attr)


def part_shares(events) -> Dict[str, float]:
    """Split the wall time of profiled steps into the parts of SCRIM.

    A nested range's time is its own part's, not the outer one's. A
    backward op is charged to the part that ran its forward op (autograd's
    sequence numbers link the two); time outside every range is
    ``'other'``.

    Args:
        events: ``prof.events()`` of steps run inside :data:`STEP_RANGE`
            ranges, with ``scrim/<part>`` ranges in the model code.

    Returns:
        Dict[str, float]: Seconds per part (keys of :data:`PARTS`), summed
        over the profiled steps, plus ``'total'``.
    """
    owner = {}

    def scope(event) -> Optional[object]:
        """The innermost part range holding ``event``."""
        key = id(event)
        if key not in owner:
            parent = event.cpu_parent
            if parent is None:
                owner[key] = None
            elif _is_part_range(parent.name):
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
        if name == STEP_RANGE:
            total += duration
        elif name.startswith(_BACKWARD_PREFIX):
            backward.append(event)
            continue
        outer = scope(event)
        if _is_part_range(name):
            times[_part_of(name)] += duration
            if outer is not None:
                times[_part_of(outer.name)] -= duration
        if event.sequence_nr >= 0 and outer is not None:
            forward_part.setdefault(
                (event.sequence_nr, event.thread), _part_of(outer.name)
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
        part = forward_part.get((event.sequence_nr, event.fwd_thread), 'other')
        times[part] += event.time_range.elapsed_us() * 1e-6
    times['other'] += total - sum(times.values())
    times['total'] = total
    return times


def profile_parts(
    fn: Callable[[], object], iters: int, model: Optional[nn.Module] = None
) -> Dict[str, float]:
    """Profile ``iters`` calls of a step and split them into parts.

    Args:
        fn (Callable): The step.
        iters (int): Profiled calls.
        model (nn.Module, optional): The SCRIM model the step runs; its
            parts get their ranges from :func:`part_ranges`. None: only the
            ranges ``fn`` opens itself. Defaults to None.

    Returns:
        Dict[str, float]: Fractions of the step's wall time per part (keys
        of :data:`PARTS`), and ``'total'`` seconds per step.
    """
    ranges = nullcontext() if model is None else part_ranges(model)
    with ranges, profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            with record_function(STEP_RANGE):
                fn()
    times = part_shares(prof.events())
    total = times.pop('total')
    shares = {k: v / total for k, v in times.items()}
    shares['total'] = total / iters
    return shares
