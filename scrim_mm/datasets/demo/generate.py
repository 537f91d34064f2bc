# Copyright (c) scrim-mm contributors. All rights reserved.
"""Write a demo set: images, annotations, part boxes and a manifest.

Two more files are written in every layout:

* ``demo_parts.json``: ``difficulty``, the part type (shape, colour,
  texture) of every class, ``distractor_textures`` (hard set) and per image
  its ``file``, ``split``, ``label`` and, in image pixels, the boxes
  ``part_box`` (the class's mark) and ``object_box`` (x1, y1, x2, y2),
  ``distractor_boxes`` with their ``distractor_textures`` and
  ``distractor_on_body`` (empty lists in the easy set) and ``keypoints``
  (``mark``, ``head``, ``beak``: x, y, visible) - for checking that a model
  attends to the right region;
* ``demo_manifest.json``: the settings (difficulty included), the list of
  files written and ``complete: true`` once the run has finished. A second
  run with the same settings does nothing; other settings, an unfinished
  run or ``force`` remove the files of the previous run and write the data
  set again. A non-empty folder without this file (e.g. a real data set) is
  refused unless ``force``, which then only writes over same-named files.
"""

import json
import os
import os.path as osp
import shutil
from typing import Dict, Optional

import numpy as np

from .drawing import part_type, render_image
from .hard import DISTRACTOR_TEXTURES, hard_part_type, render_hard_image
from .layouts import (
    LAYOUT_ENTRIES,
    check_difficulty,
    check_layout,
    class_names,
    plan_images,
    save_jpeg,
    write_annotations,
)
from .pretrain import pretrain_part_type, render_pretrain_image

GENERATOR_VERSION = 1
MANIFEST_FILE = 'demo_manifest.json'
PARTS_FILE = 'demo_parts.json'
# Settings that depend on the difficulty when not given.
DIFFICULTY_DEFAULTS = {
    'easy': dict(num_classes=4, img_size=96),
    'hard': dict(num_classes=6, img_size=128),
    'pretrain': dict(num_classes=8, img_size=128),
}
_IMAGE_KEYS = (
    'file',
    'split',
    'label',
    'part_box',
    'object_box',
    'distractor_boxes',
    'distractor_textures',
    'distractor_on_body',
    'keypoints',
)


def resolve_settings(
    layout: str,
    num_classes: Optional[int] = None,
    train_per_class: int = 60,
    test_per_class: int = 20,
    img_size: Optional[int] = None,
    seed: int = 0,
    difficulty: str = 'easy',
) -> Dict:
    """Check the settings of a demo set and fill in the defaults.

    Args:
        layout (str): One of ``'cub'``, ``'cars'``, ``'aircraft'``.
        num_classes (int, optional): Number of classes; 4 (easy) or 6
            (hard) if None. Defaults to None.
        train_per_class (int): Training images per class. Defaults to 60.
        test_per_class (int): Test images per class. Defaults to 20.
        img_size (int, optional): Image side in pixels; 96 (easy) or 128
            (hard) if None. Defaults to None.
        seed (int): Random seed. Defaults to 0.
        difficulty (str): ``'easy'`` or ``'hard'``. Defaults to ``'easy'``.

    Returns:
        dict: The settings as recorded in the manifest.
    """
    check_layout(layout)
    defaults = DIFFICULTY_DEFAULTS[check_difficulty(difficulty)]
    num_classes = (
        defaults['num_classes'] if num_classes is None else num_classes
    )
    img_size = defaults['img_size'] if img_size is None else img_size
    for name, value in (
        ('train_per_class', train_per_class),
        ('test_per_class', test_per_class),
    ):
        if value < 1:
            raise ValueError(f'{name} must be >= 1, got {value}')
    min_size = 32 if difficulty == 'easy' else 64
    if img_size < min_size:
        raise ValueError(
            f'img_size must be >= {min_size} for the {difficulty} set, '
            f'got {img_size}'
        )
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    class_names(layout, num_classes, difficulty)  # checks num_classes
    return dict(
        layout=layout,
        num_classes=num_classes,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        img_size=img_size,
        seed=seed,
        difficulty=difficulty,
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
            ``img_size``, ``seed`` and ``difficulty`` as given to
            :func:`make_dataset`.

    Returns:
        bool: True when its manifest marks a finished run with the same
        settings and every file it lists exists.
    """
    return _complete(out_dir, resolve_settings(layout, **kwargs))


def _complete(root: str, settings: Dict) -> bool:
    manifest = _read_manifest(root)
    if manifest is None:
        return False
    if not manifest.get('complete') or manifest.get('settings') != settings:
        return False
    return all(osp.isfile(osp.join(root, rel)) for rel in manifest['files'])


def _clear(root: str, layout: str) -> None:
    """Remove what a previous run of the generator wrote into ``root``.

    Only a folder with a manifest is cleared: a forced run into a folder of
    other origin writes over same-named files and deletes nothing.
    """
    manifest = _read_manifest(root)
    if manifest is None:
        return
    old_layout = manifest.get('settings', {}).get('layout', layout)
    entries = (
        set(LAYOUT_ENTRIES.get(old_layout, ()))
        | set(LAYOUT_ENTRIES[layout])
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
    num_classes: Optional[int] = None,
    train_per_class: int = 60,
    test_per_class: int = 20,
    img_size: Optional[int] = None,
    seed: int = 0,
    force: bool = False,
    verbose: bool = False,
    difficulty: str = 'easy',
) -> str:
    """Write a synthetic fine-grained data set in a benchmark layout.

    Nothing is written when ``out_dir`` already holds a complete data set
    made with the same settings, unless ``force``. A folder with files but
    without the manifest of the generator (e.g. a real data set) is refused
    unless ``force``; even then nothing in it is deleted.

    Args:
        layout (str): ``'cub'`` (CUB-200-2011), ``'cars'`` (Stanford Cars)
            or ``'aircraft'`` (FGVC-Aircraft).
        out_dir (str): The data root to write, created if missing.
        num_classes (int, optional): Number of classes; 4 (easy) or 6
            (hard) if None. Defaults to None.
        train_per_class (int): Training (trainval) images per class.
            Defaults to 60.
        test_per_class (int): Test images per class. Defaults to 20.
        img_size (int, optional): Width and height of every image; 96
            (easy) or 128 (hard) if None. Defaults to None.
        seed (int): Random seed; the output is a function of the settings.
            Defaults to 0.
        force (bool): Write again even when the data set is complete.
            Defaults to False.
        verbose (bool): Print what is done. Defaults to False.
        difficulty (str): ``'easy'``: classes differ in the shape, colour
            and texture of a mark (:func:`render_image`); ``'hard'``: only
            in the texture of a mark among look-alike distractors
            (:func:`render_hard_image`); ``'pretrain'``: gratings on discs,
            the part benchmark's stand-in for ImageNet pretraining
            (:func:`render_pretrain_image`). Defaults to ``'easy'``.

    Returns:
        str: ``out_dir``, the ``data_root`` of the mmpretrain data set.
    """
    settings = resolve_settings(
        layout,
        num_classes=num_classes,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        img_size=img_size,
        seed=seed,
        difficulty=difficulty,
    )
    num_classes, img_size = settings['num_classes'], settings['img_size']
    names = class_names(layout, num_classes, difficulty)
    out_dir = str(out_dir)
    if not force and _complete(out_dir, settings):
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
    _write_manifest(out_dir, dict(settings=settings))

    render, ptype = {
        'easy': (render_image, part_type),
        'hard': (render_hard_image, hard_part_type),
        'pretrain': (render_pretrain_image, pretrain_part_type),
    }[difficulty]
    items = plan_images(
        layout, num_classes, train_per_class, test_per_class, difficulty
    )
    for it in items:
        # One generator per image: any image can be re-drawn on its own.
        rng = np.random.default_rng([seed, it['id']])
        image, meta = render(rng, it['label'], img_size)
        save_jpeg(image, osp.join(out_dir, it['file']))
        it.update(meta)
    files = [it['file'] for it in items]
    files += write_annotations(layout, out_dir, items, names)

    parts = dict(
        difficulty=difficulty,
        classes=[dict(name=n, **ptype(i)) for i, n in enumerate(names)],
        distractor_textures=list(
            DISTRACTOR_TEXTURES if difficulty == 'hard' else ()
        ),
        images=[{k: it[k] for k in _IMAGE_KEYS} for it in items],
    )
    with open(osp.join(out_dir, PARTS_FILE), 'w', encoding='utf-8') as f:
        json.dump(parts, f, indent=1)
    files.append(PARTS_FILE)
    # Written last: ``complete`` marks a finished data set.
    manifest = dict(
        settings=settings,
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
            f'{num_classes} classes, {difficulty}) to {out_dir}'
        )
    return out_dir
