# Copyright (c) scrim-mm contributors. All rights reserved.
"""The scene of every demo image and the part marks of the easy set.

Every image shows the same kind of object, a bird-like body (ellipse body
with a darker wing, head with an eye and a beak, tail) at a random pose,
size and position, with a random dull body colour drawn from one
distribution shared by all classes, on a cluttered background (colour
gradient, low-frequency texture, random ellipses, boxes, polygons and
branches, pixel noise).

In the *easy* set, what tells the classes apart is only a small local part
drawn on the body - a mark whose shape (circle, square, triangle, stripes,
cross, ring, diamond, star), saturated colour and texture (solid, dotted,
hatched) depend on the class - at a random position, scale and rotation on
the body. Class ``c`` (0-based) gets shape ``c % 8``, colour
``(c % 8 + c // 8) % 9`` and texture ``c // 72``, so up to 216 classes are
distinct, and any few first classes differ in both shape and colour.
"""

import colorsys
import math
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

PART_SHAPES = (
    'circle',
    'square',
    'triangle',
    'stripes',
    'cross',
    'ring',
    'diamond',
    'star',
)
PART_COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (235, 25, 25),
    'green': (20, 205, 40),
    'blue': (25, 70, 240),
    'yellow': (245, 225, 15),
    'magenta': (225, 25, 225),
    'cyan': (15, 225, 225),
    'orange': (250, 135, 10),
    'white': (250, 250, 250),
    'black': (10, 10, 10),
}
PART_TEXTURES = ('solid', 'dotted', 'hatched')
MAX_CLASSES = len(PART_SHAPES) * len(PART_COLOURS) * len(PART_TEXTURES)
# Supersampling factor of the drawing canvas (anti-aliased edges).
SUPERSAMPLE = 2

Box = Tuple[float, float, float, float]
Point = Tuple[float, float]


class BirdPose(NamedTuple):
    """Where :func:`draw_bird` put the object, in canvas pixels.

    Attributes:
        centre (tuple[float, float]): Centre of the body ellipse.
        a (float): Semi-major axis of the body.
        b (float): Semi-minor axis of the body.
        angle (float): Rotation of the body in radians.
        body (list): Polygon of the body ellipse.
        outline (list[list]): Polygons of tail, body, head and beak.
        head (tuple[float, float]): Centre of the head.
        beak (tuple[float, float]): Centroid of the beak.
    """

    centre: Point
    a: float
    b: float
    angle: float
    body: List[Point]
    outline: List[List[Point]]
    head: Point
    beak: Point


def part_type(label: int) -> Dict[str, str]:
    """Return the part type that marks a class of the easy set.

    Args:
        label (int): 0-based class index, below :data:`MAX_CLASSES`.

    Returns:
        dict: ``shape``, ``colour`` and ``texture`` of the class's part.
    """
    if not 0 <= label < MAX_CLASSES:
        raise ValueError(f'label must be in [0, {MAX_CLASSES}), got {label}')
    num_shapes = len(PART_SHAPES)
    shape = label % num_shapes
    # Shifting the colour by the shape index keeps the mapping one-to-one
    # while the first classes differ in shape *and* colour.
    colour = (shape + label // num_shapes) % len(PART_COLOURS)
    texture = label // (num_shapes * len(PART_COLOURS))
    return dict(
        shape=PART_SHAPES[shape],
        colour=list(PART_COLOURS)[colour],
        texture=PART_TEXTURES[texture],
    )


def transform(
    points: np.ndarray, centre: Point, scale: float, angle: float
) -> List[Point]:
    """Scale, rotate and move local 2D points.

    Args:
        points (np.ndarray): N x 2 local coordinates.
        centre (tuple[float, float]): Where the local origin goes.
        scale (float): Scale factor.
        angle (float): Rotation in radians.

    Returns:
        list[tuple[float, float]]: The moved points.
    """
    cos, sin = math.cos(angle), math.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    out = points * scale @ rot.T + np.asarray(centre)
    return [(float(x), float(y)) for x, y in out]


def ellipse(rx: float, ry: float, num: int = 32) -> np.ndarray:
    """Return ``num`` points of an axis-aligned ellipse around the origin.

    Args:
        rx (float): Semi-axis along x.
        ry (float): Semi-axis along y.
        num (int): Number of points. Defaults to 32.

    Returns:
        np.ndarray: ``num`` x 2 points.
    """
    t = np.linspace(0, 2 * np.pi, num, endpoint=False)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)


def _star(num: int = 5, inner: float = 0.45) -> np.ndarray:
    t = np.arange(2 * num) * np.pi / num - np.pi / 2
    r = np.where(np.arange(2 * num) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _shape_polygons(shape: str) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Return (filled, cut-out) polygons of a part shape in a unit box."""
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    if shape == 'circle':
        return [ellipse(1, 1)], []
    if shape == 'square':
        return [square * 0.85], []
    if shape == 'triangle':
        return [np.array([[0, -1], [1, 0.8], [-1, 0.8]], dtype=float)], []
    if shape == 'stripes':
        bars = [
            np.array(
                [[-1, y - 0.2], [1, y - 0.2], [1, y + 0.2], [-1, y + 0.2]]
            )
            for y in (-0.75, 0.0, 0.75)
        ]
        return bars, []
    if shape == 'cross':
        w = 0.33
        cross = np.array(
            [
                [-w, -1],
                [w, -1],
                [w, -w],
                [1, -w],
                [1, w],
                [w, w],
                [w, 1],
                [-w, 1],
                [-w, w],
                [-1, w],
                [-1, -w],
                [-w, -w],
            ]
        )
        return [cross], []
    if shape == 'ring':
        return [ellipse(1, 1)], [ellipse(0.5, 0.5)]
    if shape == 'diamond':
        return [np.array([[0, -1], [0.6, 0], [0, 1], [-0.6, 0]])], []
    if shape == 'star':
        return [_star()], []
    raise ValueError(f'unknown part shape {shape!r}')


def _texture(
    kind: str, colour: np.ndarray, size: int, period: float, angle: float
) -> np.ndarray:
    """Return an H x W x 3 uint8 fill pattern of an easy part texture."""
    canvas = np.empty((size, size, 3), dtype=np.float32)
    canvas[:] = colour
    if kind == 'solid':
        return canvas.astype(np.uint8)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    # A contrasting second colour: dark on light colours and vice versa.
    other = np.full(3, 20.0 if colour.mean() > 110 else 235.0)
    if kind == 'hatched':
        mask = (u / period) % 1.0 < 0.5
    elif kind == 'dotted':
        du = (u / period) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        mask = du * du + dv * dv < 0.09
    else:
        raise ValueError(f'unknown part texture {kind!r}')
    canvas[mask] = other
    return canvas.astype(np.uint8)


def _random_colour(
    rng: np.random.Generator,
    sat: Tuple[float, float],
    val: Tuple[float, float],
) -> Tuple[int, int, int]:
    rgb = colorsys.hsv_to_rgb(
        rng.random(), rng.uniform(*sat), rng.uniform(*val)
    )
    return tuple(int(round(255 * c)) for c in rgb)


def draw_background(rng: np.random.Generator, size: int) -> Image.Image:
    """Draw a cluttered background: gradient, texture, random shapes.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        size (int): Width and height of the canvas in pixels.

    Returns:
        PIL.Image.Image: The RGB canvas.
    """
    c0 = np.array(_random_colour(rng, (0.1, 0.7), (0.3, 0.9)), np.float32)
    c1 = np.array(_random_colour(rng, (0.1, 0.7), (0.3, 0.9)), np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = (xx * math.cos(theta) + yy * math.sin(theta) + 1.5) / 3.0
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    # Low-frequency texture ("foliage"), bilinearly upsampled.
    grid = rng.integers(6, 12)
    blobs = rng.normal(0, 28, (grid, grid, 3)).astype(np.float32)
    blobs = np.stack(
        [
            np.asarray(
                Image.fromarray(blobs[..., k]).resize(
                    (size, size), Image.Resampling.BILINEAR
                )
            )
            for k in range(3)
        ],
        axis=-1,
    )
    img = np.clip(img + blobs, 0, 255).astype(np.uint8)
    canvas = Image.fromarray(img)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(6, 14))):
        colour = _random_colour(rng, (0.0, 0.8), (0.1, 1.0))
        kind = rng.integers(4)
        cx, cy = rng.uniform(0, size, 2)
        r = rng.uniform(0.06, 0.3) * size
        if kind == 0:
            pts = ellipse(r, r * rng.uniform(0.3, 1.0), 24)
        elif kind == 1:
            pts = np.array([[-r, -r], [r, -r], [r, r], [-r, r]]) * [
                1,
                rng.uniform(0.2, 1.0),
            ]
        elif kind == 2:
            n = int(rng.integers(3, 7))
            t_ = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = r * rng.uniform(0.5, 1.0, n)
            pts = np.stack([rad * np.cos(t_), rad * np.sin(t_)], axis=1)
        else:
            # A "branch": a long thin bar across the scene.
            pts = np.array(
                [
                    [-2 * r, -0.04 * r - 1],
                    [2 * r, -0.04 * r - 1],
                    [2 * r, 0.04 * r + 1],
                    [-2 * r, 0.04 * r + 1],
                ]
            )
        poly = transform(pts, (cx, cy), 1.0, rng.uniform(0, 2 * np.pi))
        draw.polygon(poly, fill=colour)
    return canvas


def bbox(polys: Sequence[Sequence[Point]], size: int, factor: float) -> Box:
    """Return the clipped (x1, y1, x2, y2) box of polygons, rescaled.

    Args:
        polys (Sequence): Polygons in canvas pixels.
        size (int): Image size to clip to, in output pixels.
        factor (float): Canvas pixels per output pixel.

    Returns:
        tuple[float, float, float, float]: The box, rounded to 0.1 px.
    """
    pts = np.concatenate([np.asarray(p) for p in polys], axis=0) / factor
    x1, y1 = np.clip(pts.min(axis=0), 0, size)
    x2, y2 = np.clip(pts.max(axis=0), 0, size)
    return tuple(round(float(v), 1) for v in (x1, y1, x2, y2))


def draw_bird(rng: np.random.Generator, canvas: Image.Image) -> BirdPose:
    """Draw the bird-like object, the same for every class.

    Pose, size, position and colour are drawn from one distribution shared
    by all classes.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        canvas (PIL.Image.Image): The square RGB canvas, drawn on in place.

    Returns:
        BirdPose: Where the object is, in canvas pixels.
    """
    size = canvas.size[0]
    draw = ImageDraw.Draw(canvas)
    a = rng.uniform(0.2, 0.29) * size  # semi-major axis of the body
    b = a * rng.uniform(0.45, 0.6)  # semi-minor axis
    angle = rng.uniform(0, 2 * np.pi)
    flip = 1.0 if rng.random() < 0.5 else -1.0
    margin = 1.15 * a
    centre = tuple(rng.uniform(margin, size - margin, 2))
    body_hsv = (rng.random(), rng.uniform(0.15, 0.5), rng.uniform(0.35, 0.75))
    body = np.array(colorsys.hsv_to_rgb(*body_hsv)) * 255
    wing = body * rng.uniform(0.6, 0.8)
    head_r = b * rng.uniform(0.55, 0.7)
    head_c = np.array([a * 0.95, -flip * b * 0.35])

    def place(pts: np.ndarray) -> List[Point]:
        return transform(pts * [1, flip], centre, 1.0, angle)

    tail = place(
        np.array(
            [
                [-0.8 * a, -0.25 * b],
                [-1.35 * a, -0.7 * b],
                [-1.35 * a, 0.55 * b],
                [-0.8 * a, 0.25 * b],
            ]
        )
    )
    body_poly = place(ellipse(a, b))
    head_poly = place(ellipse(head_r, head_r, 24) + head_c * [1, flip])
    beak = place(
        np.array(
            [
                [head_c[0] + 0.8 * head_r, head_c[1] * flip - 0.3 * head_r],
                [head_c[0] + 1.9 * head_r, head_c[1] * flip],
                [head_c[0] + 0.8 * head_r, head_c[1] * flip + 0.3 * head_r],
            ]
        )
    )
    colour = tuple(int(c) for c in body)
    draw.polygon(tail, fill=tuple(int(c) for c in wing))
    draw.polygon(body_poly, fill=colour)
    draw.polygon(head_poly, fill=colour)
    draw.polygon(beak, fill=(200, 160, 60))
    # The wing and the eye are local details shared by all classes.
    wing_c = np.array([-0.15 * a, 0.15 * b * flip])
    draw.polygon(
        transform(
            ellipse(0.55 * a, 0.45 * b) + wing_c,
            centre,
            1.0,
            angle + rng.uniform(-0.2, 0.2),
        ),
        fill=tuple(int(c) for c in wing),
    )
    eye = head_c * [1, flip] + [0.35 * head_r, 0]
    draw.polygon(
        place(ellipse(0.18 * head_r, 0.18 * head_r, 12) + eye),
        fill=(15, 15, 15),
    )
    beak_centre = np.mean(np.asarray(beak), axis=0)
    return BirdPose(
        centre=centre,
        a=a,
        b=b,
        angle=angle,
        body=body_poly,
        outline=[tail, body_poly, head_poly, beak],
        head=place((head_c * [1, flip])[None])[0],
        beak=(float(beak_centre[0]), float(beak_centre[1])),
    )


def keypoint(
    point: Point, img_size: int, factor: float, covers: Sequence[Box] = ()
) -> Tuple[float, float, int]:
    """Return a part location in output pixels and its visibility.

    Args:
        point (tuple[float, float]): The location in canvas pixels.
        img_size (int): Image size in output pixels.
        factor (float): Canvas pixels per output pixel.
        covers (Sequence[tuple]): Boxes drawn over the object; a point
            inside one of them is hidden. Defaults to ().

    Returns:
        tuple[float, float, int]: ``(x, y, visible)``, ``visible`` 1 when
        the point lies in the image and is not covered, else 0.
    """
    x, y = point[0] / factor, point[1] / factor
    visible = 0 <= x < img_size and 0 <= y < img_size
    for x1, y1, x2, y2 in covers:
        if x1 <= x <= x2 and y1 <= y <= y2:
            visible = False
    return round(x, 1), round(y, 1), int(visible)


def downsample(canvas: Image.Image, img_size: int) -> np.ndarray:
    """Downsample the canvas to the output size (box filter).

    Args:
        canvas (PIL.Image.Image): The supersampled canvas.
        img_size (int): Output width and height.

    Returns:
        np.ndarray: H x W x 3 float32 image.
    """
    canvas = canvas.resize((img_size, img_size), Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.float32)


def add_noise(rng: np.random.Generator, arr: np.ndarray) -> Image.Image:
    """Add Gaussian pixel noise (sigma 5) and convert to an image.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        arr (np.ndarray): H x W x 3 float image.

    Returns:
        PIL.Image.Image: The RGB image.
    """
    arr = arr + rng.normal(0, 5, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render_image(
    rng: np.random.Generator, label: int, img_size: int
) -> Tuple[Image.Image, Dict]:
    """Draw one image of a class of the easy set.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        label (int): 0-based class index.
        img_size (int): Width and height of the image in pixels.

    Returns:
        tuple[PIL.Image.Image, dict]: The RGB image and its metadata, in
        image pixels: ``part_box`` and ``object_box`` (x1, y1, x2, y2),
        ``distractor_boxes``, ``distractor_textures`` and
        ``distractor_on_body`` (empty lists in the easy set) and
        ``keypoints`` (``mark``, ``head``, ``beak``: x, y, visible).
    """
    ptype = part_type(label)
    s = SUPERSAMPLE
    size = img_size * s
    canvas = draw_background(rng, size)
    bird = draw_bird(rng, canvas)
    a, b, angle = bird.a, bird.b, bird.angle

    # The discriminative part: a small mark at a random place on the body.
    part_r = b * rng.uniform(0.42, 0.58)
    u = rng.uniform(-0.5, 0.45) * a
    v = rng.uniform(-0.35, 0.35) * b
    part_centre = transform(np.array([[u, v]]), bird.centre, 1.0, angle)[0]
    part_angle = angle + rng.uniform(-0.6, 0.6)
    fill, cut = _shape_polygons(ptype['shape'])
    fill = [transform(p, part_centre, part_r, part_angle) for p in fill]
    cut = [transform(p, part_centre, part_r, part_angle) for p in cut]
    mask = Image.new('L', (size, size), 0)
    mdraw = ImageDraw.Draw(mask)
    for poly in fill:
        mdraw.polygon(poly, fill=255)
    for poly in cut:
        mdraw.polygon(poly, fill=0)
    jitter = rng.integers(-15, 16, 3)
    part_colour = np.clip(
        np.array(PART_COLOURS[ptype['colour']]) + jitter, 0, 255
    )
    pattern = _texture(
        ptype['texture'],
        part_colour,
        size,
        max(2.0, 0.45 * part_r),
        part_angle,
    )
    canvas = Image.composite(Image.fromarray(pattern), canvas, mask)
    image = add_noise(rng, downsample(canvas, img_size))
    part_box = bbox(fill, img_size, s)
    meta = dict(
        part_box=part_box,
        object_box=bbox(bird.outline, img_size, s),
        distractor_boxes=[],
        distractor_textures=[],
        distractor_on_body=[],
        keypoints=dict(
            mark=keypoint(part_centre, img_size, s),
            head=keypoint(bird.head, img_size, s, [part_box]),
            beak=keypoint(bird.beak, img_size, s, [part_box]),
        ),
    )
    return image, meta
