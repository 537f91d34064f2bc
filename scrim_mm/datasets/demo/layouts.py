# Copyright (c) scrim-mm contributors. All rights reserved.
"""Benchmark folder layouts of the demo sets: names, files, annotations.

``cub`` - CUB-200-2011, read by ``mmpretrain.datasets.CUB`` with
``split='train'`` / ``'test'``::

    data_root/
    ├── images/<NNN.Class_name>/<Class_name>_<NNNN>.jpg
    ├── images.txt              # "<image id> <path relative to images/>"
    ├── image_class_labels.txt  # "<image id> <class id, 1-based>"
    ├── train_test_split.txt    # "<image id> <1 train | 0 test>"
    ├── classes.txt             # "<class id> <NNN.Class_name>"
    ├── bounding_boxes.txt      # "<image id> <x> <y> <width> <height>"
    └── parts/
        ├── parts.txt           # "<part id> <part name>": 1 mark, 2 head,
        │                       # 3 beak
        └── part_locs.txt       # "<image id> <part id> <x> <y> <visible>"

As in CUB-200-2011, ids are 1-based, ``part_locs.txt`` has one line per
image and part (image-major), ``x`` and ``y`` are the part's centre in
image pixels written as whole-pixel floats (``57.0``), and a part that is
not visible (outside the image, or covered by a mark) is ``0.0 0.0 0``.

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
``0 .. num_classes - 1``.
"""

import functools
import importlib
import importlib.util
import io
import os
import os.path as osp
from types import ModuleType
from typing import Dict, List, Sequence

from .drawing import MAX_CLASSES, Box
from .hard import MAX_HARD_CLASSES
from .pretrain import MAX_PRETRAIN_CLASSES

LAYOUTS = ('cub', 'cars', 'aircraft')
DIFFICULTIES = ('easy', 'hard', 'pretrain')
# CUB part ids (1-based) and names of ``parts/parts.txt``.
CUB_PARTS = ('mark', 'head', 'beak')

# Top-level entries each layout owns inside its data root (removed on a
# regeneration, together with the two demo files).
LAYOUT_ENTRIES = {
    'cub': (
        'images',
        'images.txt',
        'image_class_labels.txt',
        'train_test_split.txt',
        'classes.txt',
        'bounding_boxes.txt',
        'parts',
    ),
    'cars': ('car_ims', 'cars_annos.mat'),
    'aircraft': ('data',),
}


def check_layout(layout: str) -> str:
    """Return ``layout`` if it is one of :data:`LAYOUTS`, else raise.

    Args:
        layout (str): The layout name.

    Returns:
        str: ``layout``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    return layout


def check_difficulty(difficulty: str) -> str:
    """Return ``difficulty`` if it is one of :data:`DIFFICULTIES`.

    Args:
        difficulty (str): ``'easy'`` or ``'hard'``.

    Returns:
        str: ``difficulty``.
    """
    if difficulty not in DIFFICULTIES:
        raise ValueError(
            f'difficulty must be one of {DIFFICULTIES}, got {difficulty!r}'
        )
    return difficulty


@functools.lru_cache(maxsize=1)
def _categories_module() -> ModuleType:
    """Load ``mmpretrain/datasets/categories.py`` (pure data) on its own.

    Importing ``mmpretrain.datasets`` would import torch and take seconds;
    the names are all the generator needs from mmpretrain.
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


def _categories(layout: str) -> Sequence[str]:
    """Return the real class names of a benchmark, from mmpretrain."""
    attr = {
        'cub': 'CUB_CATEGORIES',
        'cars': 'STANFORDCARS_CATEGORIES',
        'aircraft': 'FGVCAIRCRAFT_CATEGORIES',
    }[check_layout(layout)]
    return getattr(_categories_module(), attr)


def max_num_classes(layout: str, difficulty: str = 'easy') -> int:
    """Return how many classes the generator can make for a layout.

    Args:
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.
        difficulty (str): ``'easy'`` or ``'hard'``. Defaults to ``'easy'``.

    Returns:
        int: ``min(number of real class names, distinct part types)``.
    """
    limit = {
        'easy': MAX_CLASSES,
        'hard': MAX_HARD_CLASSES,
        'pretrain': MAX_PRETRAIN_CLASSES,
    }[check_difficulty(difficulty)]
    return min(len(_categories(layout)), limit)


def class_names(
    layout: str, num_classes: int, difficulty: str = 'easy'
) -> List[str]:
    """Return the class names the generator uses, in label order.

    They are the first ``num_classes`` names of the benchmark as mmpretrain
    lists them (the last ones for the pretraining set, whose classes are
    not the other sets'), so pass them as ``classes`` to the mmpretrain
    data set to get ``len(dataset.CLASSES) == num_classes``.

    Args:
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.
        num_classes (int): Number of classes.
        difficulty (str): ``'easy'``, ``'hard'`` or ``'pretrain'``.
            Defaults to ``'easy'``.

    Returns:
        list[str]: ``num_classes`` class names.
    """
    limit = max_num_classes(layout, difficulty)
    if not 1 <= num_classes <= limit:
        raise ValueError(
            f'num_classes must be in [1, {limit}] for layout '
            f'{layout!r} ({difficulty}), got {num_classes}'
        )
    names = _categories(layout)
    if difficulty == 'pretrain':
        return list(names[-num_classes:])
    return list(names[:num_classes])


def plan_images(
    layout: str,
    num_classes: int,
    train_per_class: int,
    test_per_class: int,
    difficulty: str = 'easy',
) -> List[Dict]:
    """List the images to draw: id, label, split and relative path.

    Args:
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.
        num_classes (int): Number of classes.
        train_per_class (int): Training images per class.
        test_per_class (int): Test images per class.
        difficulty (str): Picks the class names (:func:`class_names`).
            Defaults to ``'easy'``.

    Returns:
        list[dict]: One dict per image with ``id`` (1-based), ``label``,
        ``split`` (``'train'`` / ``'test'``) and ``file``.
    """
    names = class_names(layout, num_classes, difficulty)
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


def save_jpeg(image, path: str) -> None:
    """Save an image as JPEG (quality 92), creating its folder.

    Args:
        image (PIL.Image.Image): The image.
        path (str): The file to write.
    """
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


def _cub_part_loc(image_id: int, part_id: int, loc: Sequence) -> str:
    x, y, visible = loc
    if not visible:
        x = y = 0.0
    # CUB writes whole pixels as floats: "312.0".
    return f'{image_id} {part_id} {round(x):.1f} {round(y):.1f} {visible}'


def write_annotations(
    layout: str, root: str, items: List[Dict], names: List[str]
) -> List[str]:
    """Write the annotation files of a layout.

    Args:
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.
        root (str): The data root.
        items (list[dict]): The planned images (:func:`plan_images`), each
            with the ``object_box`` and ``keypoints`` it was drawn with.
        names (list[str]): The class names.

    Returns:
        list[str]: The written files, relative to ``root``.
    """
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
        text(
            'parts/parts.txt',
            [f'{i + 1} {name}' for i, name in enumerate(CUB_PARTS)],
        )
        text(
            'parts/part_locs.txt',
            [
                _cub_part_loc(it['id'], i + 1, it['keypoints'][name])
                for it in items
                for i, name in enumerate(CUB_PARTS)
            ],
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
