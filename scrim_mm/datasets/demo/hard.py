# Copyright (c) scrim-mm contributors. All rights reserved.
"""The hard demo set: classes told apart only by the texture of a mark.

Every class's mark is the same axis-aligned square, with a side of 8-12 %
of the image side, in the same two tones (a saturated amber and near-black);
the class is the *texture* those tones draw (:data:`CLASS_TEXTURES`:
horizontal, vertical and both diagonal stripes, checkerboard, dots,
diamonds, zigzag). The mark lies at a random place on the bird's body, and
2-4 look-alike *distractor* marks - same shape, size range and tones, with a
texture of the separate set :data:`DISTRACTOR_TEXTURES` that no class uses -
lie at random places, never overlapping the class mark or each other: at
least one off the object (on the background, or where it overlaps the
object least) and, where one fits (about 98 % of the images at 128 px),
at least one on the body. The class can therefore only be told by finding
the one mark with a class texture.

The marks are drawn straight at the output resolution, aligned to whole
pixels, with 4 x 4 anti-aliasing samples per pixel; the texture period is
``max(3, img_size / 32)`` pixels (4 px at 128 px), so that it stays legible
at the network input.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .drawing import (
    SUPERSAMPLE,
    BirdPose,
    add_noise,
    bbox,
    downsample,
    draw_background,
    draw_bird,
    keypoint,
    transform,
)

CLASS_TEXTURES = (
    'hstripes',
    'vstripes',
    'diag_up',
    'diag_down',
    'checker',
    'dots',
    'diamonds',
    'zigzag',
)
DISTRACTOR_TEXTURES = ('solid', 'rings', 'grid', 'noise')
MAX_HARD_CLASSES = len(CLASS_TEXTURES)
MARK_SHAPE = 'square'
MARK_COLOUR_NAME = 'amber'
MARK_COLOUR = (250, 185, 0)
MARK_DARK = (20, 20, 20)
# The mark's side as a fraction of the image side.
MARK_SIDE = (0.08, 0.12)
MIN_HARD_IMG_SIZE = 64

# Anti-aliasing samples per pixel and axis.
_SUBSAMPLE = 4
# Tries of the rejection sampling of mark positions.
_TRIES = 60


def hard_part_type(label: int) -> Dict[str, str]:
    """Return the part type that marks a class of the hard set.

    Args:
        label (int): 0-based class index, below :data:`MAX_HARD_CLASSES`.

    Returns:
        dict: ``shape``, ``colour`` (the same for every class) and
        ``texture`` (the class) of the class's mark.
    """
    if not 0 <= label < MAX_HARD_CLASSES:
        raise ValueError(
            f'label must be in [0, {MAX_HARD_CLASSES}), got {label}'
        )
    return dict(
        shape=MARK_SHAPE,
        colour=MARK_COLOUR_NAME,
        texture=CLASS_TEXTURES[label],
    )


def texture_period(img_size: int) -> float:
    """Return the texture period of the hard set's marks in pixels.

    Args:
        img_size (int): Image size in pixels.

    Returns:
        float: ``max(3, img_size / 32)``.
    """
    return max(3.0, img_size / 32)


def mark_side_range(img_size: int) -> Tuple[int, int]:
    """Return the smallest and largest side of a mark in whole pixels.

    Args:
        img_size (int): Image size in pixels.

    Returns:
        tuple[int, int]: Sides within :data:`MARK_SIDE` of ``img_size``.
    """
    lo = math.ceil(MARK_SIDE[0] * img_size - 1e-9)
    hi = math.floor(MARK_SIDE[1] * img_size + 1e-9)
    return lo, max(lo, hi)


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def texture_pattern(
    kind: str, side: int, period: float, rng: np.random.Generator
) -> np.ndarray:
    """Return the coverage of the bright tone over a square mark.

    Every texture draws a random phase (two numbers), so that class
    textures use the same random draws; ``'noise'`` draws its cells too.

    Args:
        kind (str): One of :data:`CLASS_TEXTURES` or
            :data:`DISTRACTOR_TEXTURES`.
        side (int): Side of the mark in pixels.
        period (float): Texture period in pixels.
        rng (np.random.Generator): The random generator to draw from.

    Returns:
        np.ndarray: ``side`` x ``side`` float32 in [0, 1], the fraction of
        each pixel in the bright tone (anti-aliased).
    """
    # Whole-pixel phases keep horizontal and vertical edges crisp.
    phase = np.floor(rng.uniform(0, period, 2))
    n = side * _SUBSAMPLE
    t = (np.arange(n, dtype=np.float64) + 0.5) / _SUBSAMPLE
    x = t[None, :] + phase[0]
    y = t[:, None] + phase[1]
    p = period
    root2 = math.sqrt(2.0)
    if kind == 'hstripes':
        on = _frac(y / p) + 0 * x < 0.5
    elif kind == 'vstripes':
        on = _frac(x / p) + 0 * y < 0.5
    elif kind == 'diag_up':  # '/': lines of constant x + y
        on = _frac((x + y) / (p * root2)) < 0.5
    elif kind == 'diag_down':  # '\': lines of constant x - y
        on = _frac((x - y) / (p * root2)) < 0.5
    elif kind == 'checker':
        on = (np.floor(x / (p / 2)) + np.floor(y / (p / 2))) % 2 == 0
    elif kind == 'dots':
        # Dark dots on the bright tone, sparser than the stripes, so that
        # they do not look like the bright cells of ``grid``.
        du, dv = _frac(x / (1.5 * p)) - 0.5, _frac(y / (1.5 * p)) - 0.5
        on = du * du + dv * dv >= 0.13
    elif kind == 'diamonds':
        # A checkerboard turned by 45 degrees, with cells large enough not
        # to alias into an upright one.
        u, v = (x + y) / root2, (x - y) / root2
        on = (np.floor(u / p) + np.floor(v / p)) % 2 == 0
    elif kind == 'zigzag':
        # Horizontal stripes bent into chevrons 3 periods wide.
        tri = np.abs(_frac(x / (3 * p)) - 0.5) * 2 * p
        on = _frac((y + tri) / p) < 0.5
    elif kind == 'solid':
        on = np.ones((n, n), dtype=bool)
    elif kind == 'rings':
        r = np.hypot(t[None, :] - side / 2, t[:, None] - side / 2)
        on = _frac(r / p + phase[0] / p) < 0.5
    elif kind == 'grid':
        on = (_frac(x / p) >= 0.25) & (_frac(y / p) >= 0.25)
    elif kind == 'noise':
        cells = math.ceil(side / (p / 2)) + 1
        bits = rng.random((cells, cells)) < 0.5
        idx = np.minimum((t / (p / 2)).astype(int), cells - 1)
        on = bits[idx[:, None], idx[None, :]]
    else:
        raise ValueError(f'unknown mark texture {kind!r}')
    on = on.astype(np.float32).reshape(side, _SUBSAMPLE, side, _SUBSAMPLE)
    return on.mean(axis=(1, 3))


def _mask(polys: Sequence, img_size: int, factor: float) -> np.ndarray:
    """Rasterise canvas polygons into a boolean mask at the output size."""
    mask = Image.new('L', (img_size, img_size), 0)
    draw = ImageDraw.Draw(mask)
    for poly in polys:
        draw.polygon([(x / factor, y / factor) for x, y in poly], fill=255)
    return np.asarray(mask) > 127


def _free(box: Tuple[int, int, int, int], taken: Sequence) -> bool:
    """Tell whether a box keeps a gap of 1 px to every taken box."""
    x0, y0, x1, y1 = box
    return all(
        x1 + 1 <= a0 or a1 + 1 <= x0 or y1 + 1 <= b0 or b1 + 1 <= y0
        for a0, b0, a1, b1 in taken
    )


def _on_body(
    rng: np.random.Generator,
    bird: BirdPose,
    side: int,
    body: np.ndarray,
    taken: Sequence,
    min_cover: float,
) -> Optional[Tuple[int, int, int, int]]:
    """Sample a free box mostly on the body; None if none is found."""
    img_size = body.shape[0]
    best, best_cover = None, -1.0
    for _ in range(_TRIES):
        u = rng.uniform(-0.55, 0.45) * bird.a
        v = rng.uniform(-0.4, 0.4) * bird.b
        cx, cy = transform(np.array([[u, v]]), bird.centre, 1.0, bird.angle)[0]
        x0 = int(round(cx / SUPERSAMPLE - side / 2))
        y0 = int(round(cy / SUPERSAMPLE - side / 2))
        x0 = min(max(x0, 0), img_size - side)
        y0 = min(max(y0, 0), img_size - side)
        box = (x0, y0, x0 + side, y0 + side)
        if not _free(box, taken):
            continue
        cover = float(body[y0 : y0 + side, x0 : x0 + side].mean())
        if cover > best_cover:
            best, best_cover = box, cover
        if cover >= 0.9:
            break
    return best if best_cover >= min_cover else None


def _on_background(
    rng: np.random.Generator,
    side: int,
    obj: np.ndarray,
    taken: Sequence,
) -> Optional[Tuple[int, int, int, int]]:
    """Sample a free box off the object (least overlap of the tries)."""
    img_size = obj.shape[0]
    best, best_overlap = None, 2.0
    for _ in range(4 * _TRIES):
        x0, y0 = (int(v) for v in rng.integers(0, img_size - side + 1, 2))
        box = (x0, y0, x0 + side, y0 + side)
        if not _free(box, taken):
            continue
        overlap = float(obj[y0 : y0 + side, x0 : x0 + side].mean())
        if overlap < best_overlap:
            best, best_overlap = box, overlap
        if overlap == 0:
            break
    return best


def _paint(
    arr: np.ndarray, box: Tuple[int, int, int, int], coverage: np.ndarray
) -> None:
    x0, y0, x1, y1 = box
    bright = np.asarray(MARK_COLOUR, np.float32)
    dark = np.asarray(MARK_DARK, np.float32)
    c = coverage[..., None]
    arr[y0:y1, x0:x1] = c * bright + (1 - c) * dark


def draw_scene(
    rng: np.random.Generator, img_size: int, name: str
) -> Tuple[np.ndarray, BirdPose, np.ndarray, np.ndarray]:
    """Draw the clutter and the bird of a hard-set or pretraining image.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        img_size (int): Width and height in pixels, at least
            :data:`MIN_HARD_IMG_SIZE`.
        name (str): The set, for the error message.

    Returns:
        tuple: The image (H x W x 3 float32, writable), the bird's pose,
        and boolean masks (H x W) of its body and of the whole bird.
    """
    if img_size < MIN_HARD_IMG_SIZE:
        raise ValueError(
            f'img_size must be >= {MIN_HARD_IMG_SIZE} for the {name} set, '
            f'got {img_size}'
        )
    s = SUPERSAMPLE
    canvas = draw_background(rng, img_size * s)
    bird = draw_bird(rng, canvas)
    arr = downsample(canvas, img_size).copy()
    body = _mask([bird.body], img_size, s)
    obj = _mask(bird.outline, img_size, s)
    return arr, bird, body, obj


def render_hard_image(
    rng: np.random.Generator, label: int, img_size: int
) -> Tuple[Image.Image, Dict]:
    """Draw one image of a class of the hard set.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        label (int): 0-based class index, below :data:`MAX_HARD_CLASSES`.
        img_size (int): Width and height of the image in pixels, at least
            :data:`MIN_HARD_IMG_SIZE`.

    Returns:
        tuple[PIL.Image.Image, dict]: The RGB image and its metadata, in
        image pixels: ``part_box`` (the class mark) and ``object_box``
        (x1, y1, x2, y2), ``distractor_boxes``, ``distractor_textures``,
        ``distractor_on_body`` (one entry per distractor) and
        ``keypoints`` (``mark``, ``head``, ``beak``: x, y, visible).
    """
    texture = hard_part_type(label)['texture']
    arr, bird, body, obj = draw_scene(rng, img_size, 'hard')
    s = SUPERSAMPLE
    period = texture_period(img_size)
    lo, hi = mark_side_range(img_size)

    side = int(rng.integers(lo, hi + 1))
    mark = _on_body(rng, bird, side, body, [], min_cover=0.0)
    _paint(arr, mark, texture_pattern(texture, side, period, rng))

    taken: List[Tuple[int, int, int, int]] = [mark]
    num = int(rng.integers(2, 5))
    num_body = int(rng.integers(1, num))
    boxes, textures, on_body = [], [], []
    for k in range(num):
        side = int(rng.integers(lo, hi + 1))
        kind = DISTRACTOR_TEXTURES[int(rng.integers(len(DISTRACTOR_TEXTURES)))]
        box = None
        if k < num_body:
            box = _on_body(rng, bird, side, body, taken, min_cover=0.6)
        placed_on_body = box is not None
        if box is None:
            box = _on_background(rng, side, obj, taken)
        if box is None:  # no free place at all (tiny images only)
            continue
        _paint(arr, box, texture_pattern(kind, side, period, rng))
        taken.append(box)
        boxes.append(tuple(float(v) for v in box))
        textures.append(kind)
        on_body.append(placed_on_body)

    image = add_noise(rng, arr)
    part_box = tuple(float(v) for v in mark)
    covers = [part_box] + boxes
    mark_centre = ((mark[0] + mark[2]) / 2 * s, (mark[1] + mark[3]) / 2 * s)
    meta = dict(
        part_box=part_box,
        object_box=bbox(bird.outline, img_size, s),
        distractor_boxes=boxes,
        distractor_textures=textures,
        distractor_on_body=on_body,
        keypoints=dict(
            mark=keypoint(mark_centre, img_size, s),
            head=keypoint(bird.head, img_size, s, covers),
            beak=keypoint(bird.beak, img_size, s, covers),
        ),
    )
    return image, meta
