# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tests of :mod:`scrim_mm.datasets.demo`, the synthetic demo sets."""

import hashlib
import json
import os
import os.path as osp
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
from mmpretrain.datasets import CUB, FGVCAircraft, StanfordCars
from PIL import Image

from scrim_mm.datasets import demo
from scrim_mm.datasets.demo import (
    CLASS_TEXTURES,
    DISTRACTOR_TEXTURES,
    LAYOUTS,
    MANIFEST_FILE,
    MARK_COLOUR,
    MARK_DARK,
    PARTS_FILE,
    class_names,
    hard_part_type,
    is_complete,
    make_dataset,
    mark_side_range,
    part_type,
    render_hard_image,
    render_image,
    texture_pattern,
    texture_period,
)

SMALL = dict(
    num_classes=3, train_per_class=3, test_per_class=2, img_size=48, seed=0
)
HARD = dict(
    num_classes=3,
    train_per_class=3,
    test_per_class=2,
    img_size=64,
    seed=0,
    difficulty='hard',
)
# layout -> (mmpretrain class, train split, test split, all class names)
DATASETS = {
    'cub': (CUB, 'train', 'test', 200),
    'cars': (StanfordCars, 'train', 'test', 196),
    'aircraft': (FGVCAircraft, 'trainval', 'test', 100),
}
# Pixel hashes and boxes of easy images drawn by the generator before it
# moved into the package (tools/misc/make_demo_dataset.py at 98a6c2b):
# (seed, label, img_size) -> (sha1 of the RGB bytes, part_box, object_box).
EASY_REFERENCE = {
    (0, 0, 32): (
        '1108101186fe7032b1cf5abbcfe086214bbec0a2',
        (10.5, 16.2, 14.2, 20.0),
        (4.6, 13.8, 26.3, 27.0),
    ),
    (1, 5, 40): (
        'd88d69471dba246a568ca49454a061336cd3bdb2',
        (12.0, 10.2, 17.2, 15.4),
        (1.9, 1.4, 24.1, 28.8),
    ),
    (7, 100, 48): (
        'deaaa066a9bd18d04ce206220db5e4e0c12ef0fe',
        (30.0, 14.2, 34.7, 19.0),
        (15.8, 10.1, 43.6, 25.5),
    ),
}


def _mtimes(root: str) -> Dict[str, int]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            out[osp.relpath(path, root)] = os.stat(path).st_mtime_ns
    return out


def _contents(root: str) -> Dict[str, bytes]:
    return {rel: Path(root, rel).read_bytes() for rel in _mtimes(root)}


def _read_json(root: str, name: str) -> Dict:
    with open(osp.join(root, name), encoding='utf-8') as f:
        return json.load(f)


def _off_tone(pixels: np.ndarray) -> np.ndarray:
    """Distance of RGB pixels from the segment between the mark's tones."""
    dark = np.asarray(MARK_DARK, np.float64)
    axis = np.asarray(MARK_COLOUR, np.float64) - dark
    rel = pixels.reshape(-1, 3).astype(np.float64) - dark
    t = np.clip(rel @ axis / (axis @ axis), 0, 1)
    return np.linalg.norm(rel - t[:, None] * axis, axis=1)


def _bright_fraction(pixels: np.ndarray) -> float:
    """Mean position of RGB pixels from the dark (0) to the bright tone."""
    dark = np.asarray(MARK_DARK, np.float64)
    axis = np.asarray(MARK_COLOUR, np.float64) - dark
    rel = pixels.reshape(-1, 3).astype(np.float64) - dark
    return float(np.mean(rel @ axis / (axis @ axis)))


def _crop(image: Image.Image, box) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in box)
    return np.asarray(image)[y1:y2, x1:x2]


def _disjoint(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


@pytest.fixture(scope='module')
def hard_cub(tmp_path_factory) -> str:
    """A small hard set in the CUB layout (3 classes, 5 images each)."""
    root = str(tmp_path_factory.mktemp('hard') / 'cub')
    return make_dataset('cub', root, **HARD)


# --------------------------------------------------------------------------
# Both difficulties: layouts, manifest, idempotency
# --------------------------------------------------------------------------


@pytest.mark.parametrize('layout', LAYOUTS)
def test_mmpretrain_reads_every_layout(tmp_path, layout):
    root = make_dataset(layout, str(tmp_path / layout), **SMALL)
    assert root == str(tmp_path / layout)
    cls, train, test, num_all = DATASETS[layout]
    names = class_names(layout, SMALL['num_classes'])
    for split, per_class in ((train, 3), (test, 2)):
        dataset = cls(data_root=root, split=split, lazy_init=False)
        assert len(dataset) == 3 * per_class
        # The default metainfo lists every class of the benchmark; the
        # generated ones are its first names, labels 0 .. num_classes - 1.
        assert len(dataset.CLASSES) == num_all
        assert list(dataset.CLASSES[:3]) == names
        counts = Counter(dataset.get_gt_labels().tolist())
        assert counts == {0: per_class, 1: per_class, 2: per_class}
        for i in range(len(dataset)):
            path = dataset.get_data_info(i)['img_path']
            with Image.open(path) as img:
                assert img.size == (48, 48)
                assert img.mode == 'RGB'
        narrowed = cls(data_root=root, split=split, classes=names)
        assert len(narrowed.CLASSES) == 3
        assert len(narrowed) == 3 * per_class
    if layout == 'aircraft':
        halves = [
            cls(data_root=root, split=s, lazy_init=False)
            for s in ('train', 'val')
        ]
        assert sum(map(len, halves)) == 3 * 3


def test_idempotent_and_force(tmp_path, capsys):
    root = str(tmp_path / 'cub')
    make_dataset('cub', root, **SMALL)
    before = _mtimes(root)
    assert MANIFEST_FILE in before and PARTS_FILE in before
    make_dataset('cub', root, verbose=True, **SMALL)
    assert 'nothing to do' in capsys.readouterr().out
    assert _mtimes(root) == before
    # Age every file, so that a rewrite shows even on a coarse clock.
    for rel in before:
        os.utime(osp.join(root, rel), ns=(10**9, 10**9))
    aged = _mtimes(root)
    make_dataset('cub', root, force=True, **SMALL)
    after = _mtimes(root)
    assert set(after) == set(before)
    assert all(after[rel] != aged[rel] for rel in after)


def test_other_settings_rewrite_and_clean(tmp_path):
    root = str(tmp_path / 'cub')
    make_dataset('cub', root, **SMALL)
    assert is_complete(root, 'cub', **SMALL)
    fewer = dict(SMALL, num_classes=2)
    assert not is_complete(root, 'cub', **fewer)
    make_dataset('cub', root, **fewer)
    assert is_complete(root, 'cub', **fewer)
    # The third class's folder of the previous run is gone.
    assert len(os.listdir(osp.join(root, 'images'))) == 2
    # An incomplete data set is written again.
    os.remove(osp.join(root, 'images.txt'))
    assert not is_complete(root, 'cub', **fewer)
    make_dataset('cub', root, **fewer)
    assert is_complete(root, 'cub', **fewer)


def test_difficulty_is_a_setting(tmp_path):
    root = str(tmp_path / 'cub')
    easy = dict(HARD, difficulty='easy')
    make_dataset('cub', root, **easy)
    assert _read_json(root, MANIFEST_FILE)['settings']['difficulty'] == 'easy'
    assert not is_complete(root, 'cub', **HARD)
    before = _contents(root)
    make_dataset('cub', root, **HARD)  # no force needed: other settings
    assert is_complete(root, 'cub', **HARD)
    assert not is_complete(root, 'cub', **easy)
    assert _read_json(root, MANIFEST_FILE)['settings']['difficulty'] == 'hard'
    assert _read_json(root, PARTS_FILE)['difficulty'] == 'hard'
    after = _contents(root)
    assert set(after) == set(before)
    images = [rel for rel in after if rel.endswith('.jpg')]
    assert all(after[rel] != before[rel] for rel in images)


def test_defaults_depend_on_difficulty():
    easy = demo.resolve_settings('cub')
    hard = demo.resolve_settings('cub', difficulty='hard')
    assert (easy['num_classes'], easy['img_size']) == (4, 96)
    assert (hard['num_classes'], hard['img_size']) == (6, 128)
    assert hard['train_per_class'] == 60 and hard['test_per_class'] == 20


def test_refuses_a_foreign_folder(tmp_path):
    (tmp_path / 'notes.txt').write_text('real data')
    with pytest.raises(FileExistsError, match='not written by this tool'):
        make_dataset('cub', str(tmp_path), **SMALL)
    make_dataset('cub', str(tmp_path), force=True, **SMALL)
    assert (tmp_path / 'notes.txt').read_text() == 'real data'


def test_interrupted_run_is_redone(tmp_path, monkeypatch):
    root = str(tmp_path / 'cars')

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(demo.generate, 'write_annotations', fail)
        with pytest.raises(KeyboardInterrupt):
            make_dataset('cars', root, **SMALL)
    assert not is_complete(root, 'cars', **SMALL)
    make_dataset('cars', root, **SMALL)  # no force needed
    assert is_complete(root, 'cars', **SMALL)


@pytest.mark.parametrize('layout', LAYOUTS)
def test_deterministic(tmp_path, layout):
    a = make_dataset(layout, str(tmp_path / 'a'), **SMALL)
    b = make_dataset(layout, str(tmp_path / 'b'), **SMALL)
    c = make_dataset(layout, str(tmp_path / 'c'), **dict(SMALL, seed=1))
    files_a, files_b, files_c = _contents(a), _contents(b), _contents(c)
    assert files_a == files_b
    images = [rel for rel in files_a if rel.endswith('.jpg')]
    assert len(images) == 15
    assert all(files_a[rel] != files_c[rel] for rel in images)


def test_hard_deterministic(tmp_path, hard_cub):
    again = make_dataset('cub', str(tmp_path / 'again'), **HARD)
    other = make_dataset('cub', str(tmp_path / 'other'), **dict(HARD, seed=1))
    first, second, third = (_contents(r) for r in (hard_cub, again, other))
    assert first == second
    images = [rel for rel in first if rel.endswith('.jpg')]
    assert len(images) == 15
    assert all(first[rel] != third[rel] for rel in images)


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match='layout'):
        make_dataset('imagenet', str(tmp_path))
    with pytest.raises(ValueError, match=r'\[1, 100\]'):
        make_dataset('aircraft', str(tmp_path), num_classes=101)
    with pytest.raises(ValueError, match='train_per_class'):
        make_dataset('cub', str(tmp_path), train_per_class=0)
    with pytest.raises(ValueError, match='difficulty'):
        make_dataset('cub', str(tmp_path), difficulty='medium')
    limit = len(CLASS_TEXTURES)
    with pytest.raises(ValueError, match=rf'\[1, {limit}\]'):
        make_dataset('cub', str(tmp_path), num_classes=9, difficulty='hard')
    with pytest.raises(ValueError, match='img_size'):
        make_dataset('cub', str(tmp_path), img_size=48, difficulty='hard')
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------
# Easy set
# --------------------------------------------------------------------------


@pytest.mark.parametrize('key', sorted(EASY_REFERENCE))
def test_easy_images_unchanged(key):
    seed, label, size = key
    digest, part_box, object_box = EASY_REFERENCE[key]
    image, meta = render_image(np.random.default_rng(seed), label, size)
    assert hashlib.sha1(np.asarray(image).tobytes()).hexdigest() == digest
    assert meta['part_box'] == part_box
    assert meta['object_box'] == object_box
    assert meta['distractor_boxes'] == []


def test_easy_classes_differ_only_in_a_local_part():
    size = 64
    num = demo.MAX_CLASSES
    types = {tuple(part_type(c).values()) for c in range(num)}
    assert len(types) == num
    first = [part_type(c) for c in range(4)]
    assert len({t['shape'] for t in first}) == 4
    assert len({t['colour'] for t in first}) == 4
    for seed in range(3):
        # The same random draws with two labels: the same scene, object and
        # pose; only the part is drawn differently.
        img0, meta0 = render_image(np.random.default_rng(seed), 0, size)
        img1, meta1 = render_image(np.random.default_rng(seed), 5, size)
        assert meta0['object_box'] == meta1['object_box']
        diff = np.abs(
            np.asarray(img0, np.int16) - np.asarray(img1, np.int16)
        ).max(-1)
        x1, y1, x2, y2 = meta0['part_box']
        # One pixel of margin for the anti-aliasing of the edges.
        box = np.zeros_like(diff, dtype=bool)
        box[
            max(int(y1) - 1, 0) : int(y2) + 2,
            max(int(x1) - 1, 0) : int(x2) + 2,
        ] = True
        assert diff[~box].max() == 0
        assert diff[box].mean() > 20
        # The part is small and lies on the object.
        assert (x2 - x1) * (y2 - y1) < 0.05 * size * size
        ox1, oy1, ox2, oy2 = meta0['object_box']
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        assert ox1 <= cx <= ox2 and oy1 <= cy <= oy2


def test_easy_parts_file(tmp_path):
    root = make_dataset('cars', str(tmp_path), **SMALL)
    parts = _read_json(root, PARTS_FILE)
    assert parts['difficulty'] == 'easy'
    assert [c['name'] for c in parts['classes']] == class_names('cars', 3)
    assert len({(c['shape'], c['colour']) for c in parts['classes']}) == 3
    assert len(parts['images']) == 15
    for item in parts['images']:
        assert osp.isfile(osp.join(root, item['file']))
        x1, y1, x2, y2 = item['part_box']
        assert 0 <= x1 < x2 <= 48 and 0 <= y1 < y2 <= 48
        assert item['distractor_boxes'] == []
        mx, my, visible = item['keypoints']['mark']
        assert visible == 1 and x1 <= mx <= x2 and y1 <= my <= y2


def test_runner_dataloader_on_demo_cub(tmp_path):
    """The demo data set feeds a class-balanced Runner dataloader."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import scrim_mm  # noqa: F401  (registers the sampler)

    root = make_dataset('cub', str(tmp_path), **SMALL)
    cfg = dict(
        dataset=dict(
            type='CUB',
            data_root=root,
            split='train',
            classes=class_names('cub', 3),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')],
        ),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(
            type='SCRIMClassBalancedBatchSampler',
            num_samples_per_class=2,
        ),
        batch_size=4,
        num_workers=0,
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loader = Runner.build_dataloader(cfg, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) >= 3
    for batch in batches:
        assert tuple(batch['inputs'][0].shape) == (3, 48, 48)
        labels = [int(s.gt_label) for s in batch['data_samples']]
        assert labels[0] == labels[1] != labels[2] == labels[3]


# --------------------------------------------------------------------------
# Hard set
# --------------------------------------------------------------------------


def test_hard_class_textures_are_distinct():
    assert len(CLASS_TEXTURES) >= 8
    assert not set(CLASS_TEXTURES) & set(DISTRACTOR_TEXTURES)
    types = [hard_part_type(c) for c in range(len(CLASS_TEXTURES))]
    assert len({(t['shape'], t['colour']) for t in types}) == 1
    assert [t['texture'] for t in types] == list(CLASS_TEXTURES)
    # Every pair of textures (class and distractor) differs on a pixel grid
    # for any phase, and no texture is a flat tone but ``solid``.
    side, period = 14, texture_period(128)
    kinds = CLASS_TEXTURES + DISTRACTOR_TEXTURES
    for kind in CLASS_TEXTURES:
        # About as much of both tones in every class texture, so that the
        # mean colour of a mark does not give its class away.
        means = [
            texture_pattern(kind, n, period, np.random.default_rng(s)).mean()
            for n in mark_side_range(128)
            for s in range(10)
        ]
        assert 0.42 <= np.mean(means) <= 0.58, kind
    for seed in range(3):
        patterns = {
            k: texture_pattern(k, side, period, np.random.default_rng(seed))
            for k in kinds
        }
        for i, a in enumerate(kinds):
            assert patterns[a].shape == (side, side)
            assert (patterns[a].std() > 0.3) == (a != 'solid')
            for b in kinds[i + 1 :]:
                assert np.abs(patterns[a] - patterns[b]).mean() > 0.15, (a, b)


def test_hard_classes_differ_only_in_the_texture():
    size = 128
    for seed in range(3):
        images, metas = zip(
            *(
                render_hard_image(np.random.default_rng(seed), c, size)
                for c in range(len(CLASS_TEXTURES))
            )
        )
        # The same draws with any label: the same scene, mark box and
        # distractors; only the pixels of the mark differ.
        box = metas[0]['part_box']
        assert all(m['part_box'] == box for m in metas)
        assert all(
            m['distractor_boxes'] == metas[0]['distractor_boxes']
            for m in metas
        )
        inside = np.zeros((size, size), dtype=bool)
        x1, y1, x2, y2 = (int(v) for v in box)
        inside[y1:y2, x1:x2] = True
        arrays = [np.asarray(img, np.int16) for img in images]
        for arr, img in zip(arrays, images):
            assert np.array_equal(arr[~inside], arrays[0][~inside])
            # Only the two tones of the mark (and their anti-aliased mixes,
            # plus the pixel noise), about half bright for every class.
            crop = _crop(img, box)
            assert np.percentile(_off_tone(crop), 99) < 20
            assert 0.35 < _bright_fraction(crop) < 0.7
        for i in range(len(arrays)):
            for j in range(i + 1, len(arrays)):
                diff = np.abs(arrays[i] - arrays[j]).max(-1)[inside]
                assert diff.mean() > 40


def test_hard_marks_and_distractors():
    on_body, off_body = 0, 0
    for seed in range(25):
        size = (64, 96, 128, 160)[seed % 4]
        label = seed % len(CLASS_TEXTURES)
        rng = np.random.default_rng(seed)
        image, meta = render_hard_image(rng, label, size)
        lo, hi = mark_side_range(size)
        assert 0.08 * size <= lo <= hi <= 0.12 * size
        assert texture_period(size) >= 3
        boxes = [meta['part_box']] + meta['distractor_boxes']
        for x1, y1, x2, y2 in boxes:
            # Squares of 8-12 % of the image side, inside the image, under
            # one cell of a stride-32 feature map.
            assert x2 - x1 == y2 - y1
            assert 0.08 <= (x2 - x1) / size <= 0.12
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
            assert x2 - x1 < 32
        for box in meta['distractor_boxes']:
            assert _disjoint(box, meta['part_box'])
            assert np.percentile(_off_tone(_crop(image, box)), 99) < 20
        for i, a in enumerate(boxes):
            assert all(_disjoint(a, b) for b in boxes[i + 1 :])
        assert 2 <= len(meta['distractor_boxes']) <= 4
        assert len(meta['distractor_textures']) == len(
            meta['distractor_boxes']
        )
        assert set(meta['distractor_textures']) <= set(DISTRACTOR_TEXTURES)
        assert not set(meta['distractor_textures']) & set(CLASS_TEXTURES)
        # The class mark lies on the body, inside the object box.
        ox1, oy1, ox2, oy2 = meta['object_box']
        mx, my, visible = meta['keypoints']['mark']
        assert visible == 1 and ox1 <= mx <= ox2 and oy1 <= my <= oy2
        on_body += sum(meta['distractor_on_body'])
        off_body += len(meta['distractor_on_body']) - sum(
            meta['distractor_on_body']
        )
    assert on_body >= 20 and off_body >= 20


def test_hard_cub_part_files(hard_cub):
    root = Path(hard_cub)
    lines = (root / 'parts' / 'parts.txt').read_text().splitlines()
    assert lines == ['1 mark', '2 head', '3 beak']
    ids = {}
    for line in (root / 'images.txt').read_text().splitlines():
        idx, rel = line.split(' ')
        ids['images/' + rel] = int(idx)
    assert sorted(ids.values()) == list(range(1, 16))
    parts = _read_json(hard_cub, PARTS_FILE)
    by_id = {ids[item['file']]: item for item in parts['images']}
    locs = (root / 'parts' / 'part_locs.txt').read_text().splitlines()
    # One line per image and part, image-major, as in CUB-200-2011.
    assert len(locs) == 15 * 3
    pattern = re.compile(r'^(\d+) ([123]) (\d+\.0) (\d+\.0) ([01])$')
    for k, line in enumerate(locs):
        match = pattern.match(line)
        assert match, line
        idx, part, x, y, visible = match.groups()
        assert (int(idx), int(part)) == (k // 3 + 1, k % 3 + 1)
        x, y, visible = float(x), float(y), int(visible)
        if not visible:
            assert x == y == 0.0
        if part == '1':
            x1, y1, x2, y2 = by_id[int(idx)]['part_box']
            assert visible == 1
            assert x1 <= x <= x2 and y1 <= y <= y2
        elif visible:
            ox1, oy1, ox2, oy2 = by_id[int(idx)]['object_box']
            assert ox1 - 1 <= x <= ox2 + 1 and oy1 - 1 <= y <= oy2 + 1
    boxes = (root / 'bounding_boxes.txt').read_text().splitlines()
    for line in boxes:
        idx, x, y, w, h = line.split(' ')
        ox1, oy1, ox2, oy2 = by_id[int(idx)]['object_box']
        assert float(x) == pytest.approx(ox1, abs=0.051)
        assert float(w) == pytest.approx(ox2 - ox1, abs=0.11)


@pytest.mark.parametrize('split,per_class', [('train', 3), ('test', 2)])
def test_mmpretrain_reads_the_hard_cub_set(hard_cub, split, per_class):
    dataset = CUB(data_root=hard_cub, split=split, lazy_init=False)
    assert len(dataset) == 3 * per_class
    parts = _read_json(hard_cub, PARTS_FILE)
    assert [c['texture'] for c in parts['classes']] == list(CLASS_TEXTURES[:3])
    by_file = {
        osp.normpath(osp.join(hard_cub, item['file'])): item
        for item in parts['images']
    }
    labels: List[Tuple[int, int]] = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        item = by_file[osp.normpath(info['img_path'])]
        assert item['split'] == split
        labels.append((int(info['gt_label']), item['label']))
        with Image.open(info['img_path']) as img:
            assert img.size == (64, 64)
    assert all(read == written for read, written in labels)
    assert Counter(r for r, _ in labels) == {
        0: per_class,
        1: per_class,
        2: per_class,
    }


def test_pretrain_set_shares_no_class_or_mark_with_the_hard_set():
    from scrim_mm.datasets.demo.hard import CLASS_TEXTURES, hard_part_type
    from scrim_mm.datasets.demo.layouts import class_names
    from scrim_mm.datasets.demo.pretrain import (
        MAX_PRETRAIN_CLASSES,
        pretrain_part_type,
        render_pretrain_image,
    )

    assert MAX_PRETRAIN_CLASSES == 8
    marks = {tuple(pretrain_part_type(i).values()) for i in range(8)}
    assert len(marks) == 8
    hard = {tuple(hard_part_type(i).values()) for i in range(6)}
    assert not marks & hard
    assert all(
        pretrain_part_type(i)['texture'] not in CLASS_TEXTURES
        for i in range(8)
    )
    assert not set(class_names('cub', 8, 'pretrain')) & set(
        class_names('cub', 6, 'hard')
    )
    image, meta = render_pretrain_image(np.random.default_rng(0), 3, 128)
    assert image.size == (128, 128)
    x1, y1, x2, y2 = meta['part_box']
    assert 0.14 * 128 - 1 <= x2 - x1 <= 0.22 * 128 + 1
    assert meta['distractor_boxes'] == []
    with pytest.raises(ValueError, match='>= 64 for the pretrain set, got 32'):
        render_pretrain_image(np.random.default_rng(0), 0, 32)
    with pytest.raises(ValueError, match=r'label must be in \[0, 8\), got 8'):
        pretrain_part_type(8)
