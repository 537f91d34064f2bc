# Copyright (c) scrim-mm contributors. All rights reserved.
"""Multi-level anchor boxes for the FPL navigator."""

import math
from numbers import Real
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

Floats = Sequence[float]
PerLevel = Union[Floats, Sequence[Floats]]


def per_level(
    values: PerLevel, num_levels: int, name: str
) -> List[List[float]]:
    """Expand a flat list (shared by all levels) or check a per-level one.

    Args:
        values (Sequence[float] | Sequence[Sequence[float]]): The setting.
        num_levels (int): Number of pyramid levels.
        name (str): Its key, for the error message.

    Returns:
        list[list[float]]: One non-empty list per level.
    """
    values = list(values)
    if len(values) == 0:
        raise ValueError(f'{name}=(): empty; give at least one value')
    if all(isinstance(v, Real) for v in values):
        return [[float(v) for v in values] for _ in range(num_levels)]
    if len(values) != num_levels:
        raise ValueError(
            f'{name}={tuple(values)}: {len(values)} entries for '
            f'{num_levels} levels; give one sequence per level, or one for '
            'all levels'
        )
    out = [[float(v) for v in level] for level in values]
    if any(len(level) == 0 for level in out):
        raise ValueError(
            f'{name}={tuple(values)}: a level is empty; give every level '
            'at least one value'
        )
    return out


def generate_anchors(
    img_shape: Tuple[int, int],
    strides: Sequence[int],
    sizes: Sequence[float],
    scales: PerLevel,
    ratios: PerLevel,
    device: Optional[Union[torch.device, str]] = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Generate the anchors of all pyramid levels for one input size.

    NTS-Net's layout for any input size: level ``l`` of stride ``s`` has
    ``ceil(H / s) x ceil(W / s)`` positions (the output of padding-1,
    stride-2 3x3 convs) centred at ``s / 2 + k * s``, each with one anchor
    per (scale, ratio) of height ``sizes[l] * scale / sqrt(ratio)`` and
    width ``sizes[l] * scale * sqrt(ratio)``. In :class:`Navigator`'s
    order: level, row, column, type ``scale_i * len(ratios[l]) + ratio_i``.

    Args:
        img_shape (Tuple[int, int]): Network input size ``(H, W)``; should
            suit the strides (:func:`input_size_problem`).
        strides (Sequence[int]): Stride of every level; ``strides[0]`` is
            that of the navigator's input map.
        sizes (Sequence[float]): Base anchor size of every level in pixels.
        scales (Sequence[float] | Sequence[Sequence[float]]): Anchor scales,
            shared or one sequence per level.
        ratios (Sequence[float] | Sequence[Sequence[float]]): Aspect ratios
            (w / h), shared or one sequence per level.
        device (torch.device | str, optional): Defaults to None (CPU).
        dtype (torch.dtype): dtype of the result. Defaults to torch.float32.

    Returns:
        Tensor: (A, 4) ``(x1, y1, x2, y2)`` in input pixels, possibly
        beyond the image.

    Raises:
        ValueError: If the settings are inconsistent.
    """
    num_levels = len(strides)
    if len(sizes) != num_levels:
        raise ValueError(
            f'sizes={tuple(sizes)}: {len(sizes)} entries for the '
            f'{num_levels} levels of strides={tuple(strides)}; give one '
            'size per level'
        )
    scales = per_level(scales, num_levels, 'scales')
    ratios = per_level(ratios, num_levels, 'ratios')
    height, width = int(img_shape[0]), int(img_shape[1])

    anchors = []
    for stride, size, lvl_scales, lvl_ratios in zip(
        strides, sizes, scales, ratios
    ):
        stride = int(stride)
        # Sizes (h, w) of the anchor types, scale-major then ratio.
        hw = torch.tensor(
            [
                [size * s / math.sqrt(r), size * s * math.sqrt(r)]
                for s in lvl_scales
                for r in lvl_ratios
            ],
            dtype=torch.float64,
        )
        half = torch.cat([hw.flip(1), hw.flip(1)], dim=1) / 2  # (T, 4)
        half = half * half.new_tensor([-1, -1, 1, 1])
        ny = math.ceil(height / stride)
        nx = math.ceil(width / stride)
        cy = torch.arange(ny, dtype=torch.float64) * stride + stride / 2
        cx = torch.arange(nx, dtype=torch.float64) * stride + stride / 2
        yy, xx = torch.meshgrid(cy, cx, indexing='ij')
        centres = torch.stack([xx, yy, xx, yy], dim=-1)  # (ny, nx, 4)
        boxes = centres[:, :, None, :] + half[None, None]  # (ny, nx, T, 4)
        anchors.append(boxes.reshape(-1, 4))
    return torch.cat(anchors).to(device=device, dtype=dtype)


#: Widest square box of a kept anchor level over the smaller input side: a
#: region as large as the image localises nothing (docs/part_benchmark.md).
MAX_REGION_FRAC = 0.4


def fit_anchor_levels(
    sizes: Sequence[float],
    scales: PerLevel,
    img_shape: Tuple[int, int],
    max_frac: float = MAX_REGION_FRAC,
) -> Tuple[int, List[float]]:
    """Fit the anchor levels of one stage to an input size.

    Levels are kept from the first on while their widest square box,
    ``size * max(scales)``, is at most ``max_frac`` of the smaller input
    side; if none is, the first is kept, shrunk to that width (NTS-Net's
    stage 4: 448 px drops the 192-304 px level; 128 px keeps the first,
    60-76 px shrunk to 40-51 px).

    Args:
        sizes (Sequence[float]): Base size of every level.
        scales (Sequence[float] | Sequence[Sequence[float]]): Scales, shared
            or per level.
        img_shape (Tuple[int, int]): Input size ``(H, W)``.
        max_frac (float): The widest kept box over the smaller input side.
            Defaults to :data:`MAX_REGION_FRAC`.

    Returns:
        Tuple[int, List[float]]: The number of kept (first) levels, and the
        sizes of all levels, the first shrunk if it did not fit.
    """
    scales = per_level(scales, len(sizes), 'scales')
    limit = max_frac * min(int(img_shape[0]), int(img_shape[1]))
    sizes = [float(v) for v in sizes]
    num_kept = 0
    for size, lvl_scales in zip(sizes, scales):
        if size * max(lvl_scales) > limit + 1e-6:
            break
        num_kept += 1
    if num_kept == 0:
        num_kept = 1
        sizes[0] = limit / max(scales[0])
    return num_kept, sizes


def input_size_problem(
    height: int, width: int, strides: Sequence[int]
) -> Optional[str]:
    """What is wrong with an input size for the FPL stage strides.

    Both sides must be positive multiples of every stage stride; the one
    check, of :meth:`FPLHead.select` and :mod:`scrim_mm.utils.config_check`.

    Args:
        height (int): Input height.
        width (int): Input width.
        strides (Sequence[int]): The stage strides.

    Returns:
        str | None: None when the size suits, else the problem and its
        fix: ``'the FPL stage strides (16, 32) need multiples of 32; ...'``.
    """
    step = math.lcm(*(int(s) for s in strides))
    if height % step == 0 and width % step == 0 and min(height, width) > 0:
        return None
    near = sorted(
        {max(step, v // step * step) for v in (height, width)}
        | {(v // step + 1) * step for v in (height, width)}
    )
    return (
        f'the FPL stage strides {tuple(int(s) for s in strides)} need '
        f'multiples of {step}; resize or crop to a multiple of {step} '
        f'(e.g. {" or ".join(str(v) for v in near)})'
    )
