# Copyright (c) scrim-mm contributors. All rights reserved.
"""Write a small synthetic fine-grained data set in a real benchmark layout.

The images are made to be *fine-grained* the way CUB, Stanford Cars and
FGVC-Aircraft are: every image shows the same kind of object, a bird-like
body (ellipse body with a darker wing, head with an eye and a beak, tail) at a
random pose, size and position, with a random dull body colour drawn from one
distribution shared by all classes, on a cluttered background (colour
gradient, low-frequency texture, random ellipses, boxes, polygons and
branches, pixel noise). What tells the classes apart is **only** a small
local part drawn on the body - a mark whose shape (circle, square, triangle,
stripes, cross, ring, diamond, star), saturated colour and texture (solid,
dotted, hatched) depend on the class - at a random position, scale and
rotation on the body. Class ``c`` (0-based) gets shape ``c % 8``, colour
``(c % 8 + c // 8) % 9`` and texture ``c // 72``, so up to 216 classes are
distinct, and any few first classes differ in both shape and colour. The
generator is deterministic given ``seed`` (numpy + Pillow only).

Layouts (``data_root`` is the folder this module writes; the train split of
each mmpretrain class reads ``train_per_class`` images per class, its test
split ``test_per_class``):

``cub`` - CUB-200-2011, read by ``mmpretrain.datasets.CUB`` with
``split='train'`` / ``'test'``::

    data_root/
    ├── images/<NNN.Class_name>/<Class_name>_<NNNN>.jpg
    ├── images.txt              # "<image id> <path relative to images/>"
    ├── image_class_labels.txt  # "<image id> <class id, 1-based>"
    ├── train_test_split.txt    # "<image id> <1 train | 0 test>"
    ├── classes.txt             # "<class id> <NNN.Class_name>"
    └── bounding_boxes.txt      # "<image id> <x> <y> <width> <height>"

``cars`` - Stanford Cars in its ``car_ims`` + ``cars_annos.mat`` form, read
by ``mmpretrain.datasets.StanfordCars`` with ``split='train'`` / ``'test'``::

    data_root/
    ├── car_ims/<NNNNNN>.jpg
    └── cars_annos.mat  # annotations: relative_im_path ('car_ims/...'),
                        # bbox_x1, bbox_y1, bbox_x2, bbox_y2, class
                        # (1-based), test (0 | 1); class_names

``aircraft`` - FGVC-Aircraft 2013b, read by
``mmpretrain.datasets.FGVCAircraft`` with ``split='trainval'`` (or
``'train'``, ``'val'``, half of trainval each) / ``'test'``::

    data_root/
    └── data/
        ├── images/<NNNNNNN>.jpg
        ├── images_variant_{train,val,trainval,test}.txt  # "<id> <variant>"
        ├── images_box.txt  # "<id> <xmin> <ymin> <xmax> <ymax>"
        └── variants.txt

The class names are the first ``num_classes`` names of the real benchmark
(mmpretrain's ``CUB_CATEGORIES``, ``STANFORDCARS_CATEGORIES``,
``FGVCAIRCRAFT_CATEGORIES``), so the labels the mmpretrain classes read are
``0 .. num_classes - 1``. Their ``metainfo['classes']`` still lists all
200 / 196 / 100 names unless the data set is given ``classes=`` the list
:func:`class_names` returns (for ``aircraft`` also the file
``data_root/data/variants.txt``; CUB's ``classes.txt`` holds ids as well and
does not fit).

Two more files are written in every layout:

* ``demo_parts.json``: per image its file, split, label and the boxes
  ``part_box`` and ``object_box`` (x1, y1, x2, y2 in image pixels), plus the
  part type (shape, colour, texture) of every class - for checking that a
  model attends to the right region;
* ``demo_manifest.json``: the settings, the list of files written and
  ``complete: true`` once the run has finished. A second run with the same
  settings does nothing; other settings, an unfinished run or ``--force``
  remove the files of the previous run and write the data set again. A
  non-empty folder without this file (e.g. a real data set) is refused
  unless ``--force``, which then only writes over same-named files.

Example::

    python tools/misc/make_demo_dataset.py --layout all --out data/demo
    # -> data/demo/cub, data/demo/cars, data/demo/aircraft
"""

import argparse
import colorsys
import functools
import importlib
import importlib.util
import io
import json
import math
import os
import os.path as osp
import shutil
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

LAYOUTS = ('cub', 'cars', 'aircraft')
GENERATOR_VERSION = 1
MANIFEST_FILE = 'demo_manifest.json'
PARTS_FILE = 'demo_parts.json'

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

# Top-level entries each layout owns inside its data root (removed on a
# regeneration, together with the two demo files).
_LAYOUT_ENTRIES = {
    'cub': (
        'images',
        'images.txt',
        'image_class_labels.txt',
        'train_test_split.txt',
        'classes.txt',
        'bounding_boxes.txt',
    ),
    'cars': ('car_ims', 'cars_annos.mat'),
    'aircraft': ('data',),
}
# Supersampling factor of the drawing canvas (anti-aliased edges).
_SUPERSAMPLE = 2

Box = Tuple[float, float, float, float]


def _categories(layout: str) -> Sequence[str]:
    """Return the real class names of a benchmark, from mmpretrain."""
    attr = {
        'cub': 'CUB_CATEGORIES',
        'cars': 'STANFORDCARS_CATEGORIES',
        'aircraft': 'FGVCAIRCRAFT_CATEGORIES',
    }[_check_layout(layout)]
    return getattr(_categories_module(), attr)


@functools.lru_cache(maxsize=1)
def _categories_module() -> ModuleType:
    """Load ``mmpretrain/datasets/categories.py`` (pure data) on its own.

    Importing ``mmpretrain.datasets`` would import torch and take seconds;
    the names are all this tool needs from mmpretrain.
    """
    spec = importlib.util.find_spec('mmpretrain')
    if spec is not None and spec.submodule_search_locations:
        path = osp.join(
            spec.submodule_search_locations[0], 'datasets', 'categories.py'
        )
        if osp.isfile(path):
            file_spec = importlib.util.spec_from_file_location(
                '_mmpretrain_categories', path
            )
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            return module
    return importlib.import_module('mmpretrain.datasets.categories')


def _check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    return layout


def max_num_classes(layout: str) -> int:
    """Return how many classes the generator can make for a layout.

    Args:
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.

    Returns:
        int: ``min(number of real class names, distinct part types)``.
    """
    return min(len(_categories(layout)), MAX_CLASSES)


def class_names(layout: str, num_classes: int) -> List[str]:
    """Return the class names the generator uses, in label order.

    They are the first ``num_classes`` names of the benchmark as mmpretrain
    lists them, so pass them as ``classes`` to the mmpretrain data set to get
    ``len(dataset.CLASSES) == num_classes``.

    Args:
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.
        num_classes (int): Number of classes.

    Returns:
        list[str]: ``num_classes`` class names.
    """
    limit = max_num_classes(layout)
    if not 1 <= num_classes <= limit:
        raise ValueError(
            f'num_classes must be in [1, {limit}] for layout '
            f'{layout!r}, got {num_classes}'
        )
    return list(_categories(layout)[:num_classes])


def part_type(label: int) -> Dict[str, str]:
    """Return the part type that marks a class.

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


# --------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------


def _transform(
    points: np.ndarray, centre: Tuple[float, float], scale: float, angle: float
) -> List[Tuple[float, float]]:
    """Scale, rotate by ``angle`` (radians) and move local 2D points."""
    cos, sin = math.cos(angle), math.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    out = points * scale @ rot.T + np.asarray(centre)
    return [(float(x), float(y)) for x, y in out]


def _ellipse(rx: float, ry: float, num: int = 32) -> np.ndarray:
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
        return [_ellipse(1, 1)], []
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
        return [_ellipse(1, 1)], [_ellipse(0.5, 0.5)]
    if shape == 'diamond':
        return [np.array([[0, -1], [0.6, 0], [0, 1], [-0.6, 0]])], []
    if shape == 'star':
        return [_star()], []
    raise ValueError(f'unknown part shape {shape!r}')


def _texture(
    kind: str, colour: np.ndarray, size: int, period: float, angle: float
) -> np.ndarray:
    """Return an H x W x 3 uint8 fill pattern of a part texture."""
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


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """Draw a cluttered background: gradient, texture, random shapes."""
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
            pts = _ellipse(r, r * rng.uniform(0.3, 1.0), 24)
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
        poly = _transform(pts, (cx, cy), 1.0, rng.uniform(0, 2 * np.pi))
        draw.polygon(poly, fill=colour)
    return canvas


def _bbox(
    polys: Sequence[Sequence[Tuple[float, float]]], size: int, factor: float
) -> Box:
    """Return the clipped (x1, y1, x2, y2) box of polygons, rescaled."""
    pts = np.concatenate([np.asarray(p) for p in polys], axis=0) / factor
    x1, y1 = np.clip(pts.min(axis=0), 0, size)
    x2, y2 = np.clip(pts.max(axis=0), 0, size)
    return tuple(round(float(v), 1) for v in (x1, y1, x2, y2))


def render_image(
    rng: np.random.Generator, label: int, img_size: int
) -> Tuple[Image.Image, Dict]:
    """Draw one image of a class.

    Args:
        rng (np.random.Generator): The random generator to draw from.
        label (int): 0-based class index.
        img_size (int): Width and height of the image in pixels.

    Returns:
        tuple[PIL.Image.Image, dict]: The RGB image and its metadata:
        ``part_box`` and ``object_box`` (x1, y1, x2, y2, image pixels).
    """
    ptype = part_type(label)
    s = _SUPERSAMPLE
    size = img_size * s
    canvas = _background(rng, size)
    draw = ImageDraw.Draw(canvas)

    # The object: a bird-like body; pose, size, position and colour are drawn
    # from the same distribution for every class.
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

    def place(pts: np.ndarray) -> List[Tuple[float, float]]:
        return _transform(pts * [1, flip], centre, 1.0, angle)

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
    body_poly = place(_ellipse(a, b))
    head_poly = place(_ellipse(head_r, head_r, 24) + head_c * [1, flip])
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
        _transform(
            _ellipse(0.55 * a, 0.45 * b) + wing_c,
            centre,
            1.0,
            angle + rng.uniform(-0.2, 0.2),
        ),
        fill=tuple(int(c) for c in wing),
    )
    eye = head_c * [1, flip] + [0.35 * head_r, 0]
    draw.polygon(
        place(_ellipse(0.18 * head_r, 0.18 * head_r, 12) + eye),
        fill=(15, 15, 15),
    )

    # The discriminative part: a small mark at a random place on the body.
    part_r = b * rng.uniform(0.42, 0.58)
    u = rng.uniform(-0.5, 0.45) * a
    v = rng.uniform(-0.35, 0.35) * b
    part_centre = _transform(np.array([[u, v]]), centre, 1.0, angle)[0]
    part_angle = angle + rng.uniform(-0.6, 0.6)
    fill, cut = _shape_polygons(ptype['shape'])
    fill = [_transform(p, part_centre, part_r, part_angle) for p in fill]
    cut = [_transform(p, part_centre, part_r, part_angle) for p in cut]
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

    canvas = canvas.resize((img_size, img_size), Image.Resampling.BOX)
    arr = np.asarray(canvas, dtype=np.float32)
    arr = arr + rng.normal(0, 5, arr.shape)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    meta = dict(
        part_box=_bbox(fill, img_size, s),
        object_box=_bbox([tail, body_poly, head_poly, beak], img_size, s),
    )
    return image, meta


# --------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------


def _save_jpeg(image: Image.Image, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    image.save(path, format='JPEG', quality=92)


def _save_mat(path: str, data: Dict) -> None:
    """Save a MAT-file with mat4py, with a fixed (timestamp-free) header."""
    import mat4py

    class _KeepOpen(io.BytesIO):
        def close(self) -> None:  # mat4py closes the file it writes.
            pass

    buf = _KeepOpen()
    mat4py.savemat(buf, data)
    raw = bytearray(buf.getvalue())
    header = b'MATLAB 5.0 MAT-file, created by scrim-mm make_demo_dataset'
    raw[:116] = header.ljust(116, b' ')
    with open(path, 'wb') as f:
        f.write(bytes(raw))


def _write_text(path: str, lines: Sequence[str]) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(''.join(f'{line}\n' for line in lines))


def _plan(
    layout: str, num_classes: int, train_per_class: int, test_per_class: int
) -> List[Dict]:
    """List the images to draw: label, split and relative path."""
    names = class_names(layout, num_classes)
    items = []
    for label in range(num_classes):
        for k in range(train_per_class + test_per_class):
            idx = len(items) + 1  # 1-based image id, as in the benchmarks
            split = 'train' if k < train_per_class else 'test'
            if layout == 'cub':
                folder = f'{label + 1:03d}.{names[label]}'
                rel = f'images/{folder}/{names[label]}_{idx:04d}.jpg'
            elif layout == 'cars':
                rel = f'car_ims/{idx:06d}.jpg'
            else:
                rel = f'data/images/{idx:07d}.jpg'
            items.append(dict(id=idx, label=label, split=split, file=rel))
    return items


def _write_annotations(
    layout: str, root: str, items: List[Dict], names: List[str]
) -> List[str]:
    """Write the annotation files of a layout; return their paths."""
    written = []

    def text(rel: str, lines: Sequence[str]) -> None:
        _write_text(osp.join(root, rel), lines)
        written.append(rel)

    def xywh(box: Box) -> str:
        x1, y1, x2, y2 = box
        return f'{x1:.1f} {y1:.1f} {x2 - x1:.1f} {y2 - y1:.1f}'

    if layout == 'cub':
        text(
            'images.txt',
            [f'{it["id"]} {it["file"][len("images/"):]}' for it in items],
        )
        text(
            'image_class_labels.txt',
            [f'{it["id"]} {it["label"] + 1}' for it in items],
        )
        text(
            'train_test_split.txt',
            [f'{it["id"]} {int(it["split"] == "train")}' for it in items],
        )
        text(
            'classes.txt',
            [f'{i + 1} {i + 1:03d}.{n}' for i, n in enumerate(names)],
        )
        text(
            'bounding_boxes.txt',
            [f'{it["id"]} {xywh(it["object_box"])}' for it in items],
        )
    elif layout == 'cars':
        boxes = [[int(round(v)) for v in it['object_box']] for it in items]
        annotations = dict(
            relative_im_path=[it['file'] for it in items],
            bbox_x1=[b[0] for b in boxes],
            bbox_y1=[b[1] for b in boxes],
            bbox_x2=[b[2] for b in boxes],
            bbox_y2=[b[3] for b in boxes],
            # ``class`` is 1-based, ``test`` is 1 for test images.
            **{'class': [it['label'] + 1 for it in items]},
            test=[int(it['split'] == 'test') for it in items],
        )
        _save_mat(
            osp.join(root, 'cars_annos.mat'),
            dict(annotations=annotations, class_names=list(names)),
        )
        written.append('cars_annos.mat')
    else:
        ids = {it['id']: f'{it["id"]:07d}' for it in items}
        trainval = [it for it in items if it['split'] == 'train']
        # The official train / val halves of trainval: alternate images.
        splits = dict(
            trainval=trainval,
            train=trainval[0::2],
            val=trainval[1::2],
            test=[it for it in items if it['split'] == 'test'],
        )
        for split, members in splits.items():
            text(
                f'data/images_variant_{split}.txt',
                [f'{ids[it["id"]]} {names[it["label"]]}' for it in members],
            )
        text('data/variants.txt', names)
        text(
            'data/images_box.txt',
            [
                f'{ids[it["id"]]} '
                + ' '.join(str(int(round(v))) for v in it['object_box'])
                for it in items
            ],
        )
    return written


def _settings(
    layout: str,
    num_classes: int,
    train_per_class: int,
    test_per_class: int,
    img_size: int,
    seed: int,
) -> Dict:
    return dict(
        layout=layout,
        num_classes=num_classes,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        img_size=img_size,
        seed=seed,
        version=GENERATOR_VERSION,
    )


def _read_manifest(root: str) -> Optional[Dict]:
    path = osp.join(root, MANIFEST_FILE)
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_manifest(root: str, manifest: Dict) -> None:
    with open(osp.join(root, MANIFEST_FILE), 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=1)


def is_complete(out_dir: str, layout: str, **kwargs) -> bool:
    """Tell whether ``out_dir`` already holds a complete data set.

    Args:
        out_dir (str): The data root.
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.
        **kwargs: ``num_classes``, ``train_per_class``, ``test_per_class``,
            ``img_size`` and ``seed`` as given to :func:`make_dataset`.

    Returns:
        bool: True when its manifest marks a finished run with the same
        settings and every file it lists exists.
    """
    manifest = _read_manifest(out_dir)
    if manifest is None:
        return False
    settings = _settings(layout, **kwargs)
    if not manifest.get('complete') or manifest.get('settings') != settings:
        return False
    return all(osp.isfile(osp.join(out_dir, rel)) for rel in manifest['files'])


def _clear(root: str, layout: str) -> None:
    """Remove what a previous run of this tool wrote into ``root``.

    Only a folder with a manifest is cleared: a forced run into a folder of
    other origin writes over same-named files and deletes nothing.
    """
    manifest = _read_manifest(root)
    if manifest is None:
        return
    old_layout = manifest.get('settings', {}).get('layout', layout)
    entries = (
        set(_LAYOUT_ENTRIES.get(old_layout, ()))
        | set(_LAYOUT_ENTRIES[layout])
        | {MANIFEST_FILE, PARTS_FILE}
    )
    for entry in entries:
        path = osp.join(root, entry)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        elif osp.lexists(path):
            os.remove(path)


def make_dataset(
    layout: str,
    out_dir: str,
    num_classes: int = 4,
    train_per_class: int = 60,
    test_per_class: int = 20,
    img_size: int = 96,
    seed: int = 0,
    force: bool = False,
    verbose: bool = False,
) -> str:
    """Write a synthetic fine-grained data set in a benchmark layout.

    Nothing is written when ``out_dir`` already holds a complete data set
    made with the same settings, unless ``force``. A folder with files but
    without the manifest of this tool (e.g. a real data set) is refused
    unless ``force``; even then nothing in it is deleted.

    Args:
        layout (str): ``'cub'`` (CUB-200-2011), ``'cars'`` (Stanford Cars)
            or ``'aircraft'`` (FGVC-Aircraft).
        out_dir (str): The data root to write, created if missing.
        num_classes (int): Number of classes. Defaults to 4.
        train_per_class (int): Training (trainval) images per class.
            Defaults to 60.
        test_per_class (int): Test images per class. Defaults to 20.
        img_size (int): Width and height of every image. Defaults to 96.
        seed (int): Random seed; the output is a function of the settings.
            Defaults to 0.
        force (bool): Write again even when the data set is complete.
            Defaults to False.
        verbose (bool): Print what is done. Defaults to False.

    Returns:
        str: ``out_dir``, the ``data_root`` of the mmpretrain data set.
    """
    _check_layout(layout)
    for name, value in (
        ('train_per_class', train_per_class),
        ('test_per_class', test_per_class),
    ):
        if value < 1:
            raise ValueError(f'{name} must be >= 1, got {value}')
    if img_size < 32:
        raise ValueError(f'img_size must be >= 32, got {img_size}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    names = class_names(layout, num_classes)
    out_dir = str(out_dir)
    kwargs = dict(
        num_classes=num_classes,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        img_size=img_size,
        seed=seed,
    )
    if not force and is_complete(out_dir, layout, **kwargs):
        if verbose:
            print(
                f'{layout}: {out_dir} is complete with the same settings; '
                'nothing to do (use --force to write it again).'
            )
        return out_dir
    if (
        osp.isdir(out_dir)
        and os.listdir(out_dir)
        and _read_manifest(out_dir) is None
        and not force
    ):
        raise FileExistsError(
            f'{out_dir} is not empty and was not written by this tool (no '
            f'{MANIFEST_FILE}); choose another folder or use force=True '
            '(--force) to write into it anyway.'
        )
    os.makedirs(out_dir, exist_ok=True)
    _clear(out_dir, layout)
    # Claims the folder at once (so an interrupted run is cleared by the
    # next one); marked complete only at the end.
    _write_manifest(out_dir, dict(settings=_settings(layout, **kwargs)))

    items = _plan(layout, num_classes, train_per_class, test_per_class)
    for it in items:
        # One generator per image: any image can be re-drawn on its own.
        rng = np.random.default_rng([seed, it['id']])
        image, meta = render_image(rng, it['label'], img_size)
        _save_jpeg(image, osp.join(out_dir, it['file']))
        it.update(meta)
    files = [it['file'] for it in items]
    files += _write_annotations(layout, out_dir, items, names)

    parts = dict(
        classes=[dict(name=n, **part_type(i)) for i, n in enumerate(names)],
        images=[
            {
                k: it[k]
                for k in ('file', 'split', 'label', 'part_box', 'object_box')
            }
            for it in items
        ],
    )
    with open(osp.join(out_dir, PARTS_FILE), 'w', encoding='utf-8') as f:
        json.dump(parts, f, indent=1)
    files.append(PARTS_FILE)
    # Written last: ``complete`` marks a finished data set.
    manifest = dict(
        settings=_settings(layout, **kwargs),
        complete=True,
        classes=names,
        num_train=num_classes * train_per_class,
        num_test=num_classes * test_per_class,
        files=files,
    )
    _write_manifest(out_dir, manifest)
    if verbose:
        print(
            f'{layout}: wrote {len(items)} images '
            f'({manifest["num_train"]} train, {manifest["num_test"]} test, '
            f'{num_classes} classes) to {out_dir}'
        )
    return out_dir


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Write a small synthetic fine-grained data set in the '
        'folder layout of CUB-200-2011, Stanford Cars or FGVC-Aircraft.'
    )
    parser.add_argument(
        '--layout',
        choices=LAYOUTS + ('all',),
        default='cub',
        help='the benchmark layout to write (default: cub)',
    )
    parser.add_argument(
        '--out',
        default=None,
        help='the data root for one layout; with --layout all, the folder '
        'that receives cub/, cars/ and aircraft/ (default: data/demo/<layout>'
        ' and data/demo)',
    )
    parser.add_argument('--num-classes', type=int, default=4)
    parser.add_argument(
        '--train-per-class',
        type=int,
        default=60,
        help='training (trainval) images per class',
    )
    parser.add_argument(
        '--test-per-class', type=int, default=20, help='test images per class'
    )
    parser.add_argument('--img-size', type=int, default=96)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--force',
        action='store_true',
        help='write the data set again even when it is complete',
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command line tool.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.
    """
    args = parse_args(argv)
    if args.layout == 'all':
        parent = args.out or osp.join('data', 'demo')
        targets = [(layout, osp.join(parent, layout)) for layout in LAYOUTS]
    else:
        targets = [
            (args.layout, args.out or osp.join('data', 'demo', args.layout))
        ]
    for layout, out in targets:
        make_dataset(
            layout,
            out,
            num_classes=args.num_classes,
            train_per_class=args.train_per_class,
            test_per_class=args.test_per_class,
            img_size=args.img_size,
            seed=args.seed,
            force=args.force,
            verbose=True,
        )


if __name__ == '__main__':
    main()
