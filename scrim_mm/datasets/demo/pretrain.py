# Copyright (c) scrim-mm contributors. All rights reserved.
"""The pretraining set: a stand-in for ImageNet before the hard demo set.

The part benchmark's fine-tuning protocol starts both SCRIM and its plain
backbone from the same pretrained weights, as users start from ImageNet.
This set teaches what ImageNet teaches a backbone that the hard set can use
- oriented edges and periodic patterns, found wherever they lie on a bird on
clutter - without the hard set's classes or marks:

* the class is a grating at one of :data:`PRETRAIN_ANGLES` (never 0, 45, 90
  or 135 degrees, the stripes of the hard set) and one of two periods
  (:data:`PRETRAIN_PERIODS` times the hard set's);
* the grating fills a *disc* (the hard set's marks are squares), in cyan and
  white (theirs are amber and near-black), 14-22 % of the image side (theirs
  8-12 %), on the body or on the background;
* there are no distractor marks.
"""

import math
from typing import Dict, Tuple

import numpy as np

from .drawing import SUPERSAMPLE, add_noise, bbox, keypoint
from .hard import _on_background, _on_body, draw_scene, texture_period

#: Grating angles in degrees (0 = horizontal stripes), 22.5 degrees from
#: every stripe direction of the hard set.
PRETRAIN_ANGLES = (22.5, 67.5, 112.5, 157.5)
#: Grating periods, in units of the hard set's texture period.
PRETRAIN_PERIODS = (1.0, 2.0)
MAX_PRETRAIN_CLASSES = len(PRETRAIN_ANGLES) * len(PRETRAIN_PERIODS)
PRETRAIN_BRIGHT = (235, 245, 245)
PRETRAIN_DARK = (0, 150, 190)
#: The disc's diameter as a fraction of the image side.
PRETRAIN_SIDE = (0.14, 0.22)

_SUBSAMPLE = 4


def pretrain_part_type(label: int) -> Dict[str, str]:
    """Return the mark that tells a class of the pretraining set.

    Args:
        label (int): 0-based class index, below
            :data:`MAX_PRETRAIN_CLASSES`.

    Returns:
        dict: ``shape`` ('disc'), ``colour`` ('cyan') and ``texture``
        (``grating<angle>_x<period>``).
    """
    angle, period = _angle_period(label)
    return dict(
        shape='disc', colour='cyan', texture=f'grating{angle:g}_x{period:g}'
    )


def _angle_period(label: int) -> Tuple[float, float]:
    if not 0 <= label < MAX_PRETRAIN_CLASSES:
        raise ValueError(
            f'label must be in [0, {MAX_PRETRAIN_CLASSES}), got {label}'
        )
    return (
        PRETRAIN_ANGLES[label % len(PRETRAIN_ANGLES)],
        PRETRAIN_PERIODS[label // len(PRETRAIN_ANGLES)],
    )


def grating_disc(
    angle: float, period: float, side: int, rng: np.random.Generator
) -> np.ndarray:
    """Coverage of the bright tone and of the disc over a square.

    Args:
        angle (float): Direction of the stripes in degrees.
        period (float): Period in pixels.
        side (int): Side of the square in pixels.
        rng (np.random.Generator): Draws the grating's phase.

    Returns:
        np.ndarray: ``(2, side, side)`` float32 in [0, 1]: the share of each
        pixel in the bright tone, and the share inside the disc
        (anti-aliased).
    """
    n = side * _SUBSAMPLE
    t = (np.arange(n, dtype=np.float64) + 0.5) / _SUBSAMPLE
    x, y = t[None, :], t[:, None]
    theta = math.radians(angle)
    # Distance across the stripes; stripes run along ``angle``.
    across = -x * math.sin(theta) + y * math.cos(theta)
    phase = rng.uniform(0, period)
    bright = ((across + phase) / period) % 1.0 < 0.5
    inside = (x - side / 2) ** 2 + (y - side / 2) ** 2 <= (side / 2) ** 2
    out = np.stack([bright, inside]).astype(np.float32)
    return out.reshape(2, side, _SUBSAMPLE, side, _SUBSAMPLE).mean(axis=(2, 4))


def render_pretrain_image(
    rng: np.random.Generator, label: int, img_size: int
) -> Tuple['Image.Image', Dict]:  # noqa: F821
    """Draw one image of a class of the pretraining set.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        label (int): 0-based class index, below
            :data:`MAX_PRETRAIN_CLASSES`.
        img_size (int): Width and height in pixels, at least 64.

    Returns:
        tuple[PIL.Image.Image, dict]: The RGB image and its metadata in the
        hard set's format (``part_box`` is the disc's box; no
        distractors).
    """
    angle, period = _angle_period(label)
    arr, bird, body, obj = draw_scene(rng, img_size, 'pretrain')
    s = SUPERSAMPLE
    lo = math.ceil(PRETRAIN_SIDE[0] * img_size)
    hi = max(lo, math.floor(PRETRAIN_SIDE[1] * img_size))
    side = int(rng.integers(lo, hi + 1))
    box = None
    if rng.random() < 0.5:
        box = _on_body(rng, bird, side, body, [], min_cover=0.0)
    if box is None:
        box = _on_background(rng, side, obj, [])
    cover = grating_disc(angle, period * texture_period(img_size), side, rng)
    x0, y0, x1, y1 = box
    tone = cover[0][..., None]
    disc = cover[1][..., None]
    mark = tone * np.asarray(PRETRAIN_BRIGHT, np.float32) + (
        1 - tone
    ) * np.asarray(PRETRAIN_DARK, np.float32)
    arr[y0:y1, x0:x1] = disc * mark + (1 - disc) * arr[y0:y1, x0:x1]
    image = add_noise(rng, arr)
    part_box = tuple(float(v) for v in box)
    centre = ((x0 + x1) / 2 * s, (y0 + y1) / 2 * s)
    meta = dict(
        part_box=part_box,
        object_box=bbox(bird.outline, img_size, s),
        distractor_boxes=[],
        distractor_textures=[],
        distractor_on_body=[],
        keypoints=dict(
            mark=keypoint(centre, img_size, s),
            head=keypoint(bird.head, img_size, s, [part_box]),
            beak=keypoint(bird.beak, img_size, s, [part_box]),
        ),
    )
    return image, meta
