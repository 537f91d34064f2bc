# Copyright (c) scrim-mm contributors. All rights reserved.
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
from mmpretrain.datasets import CUB, FGVCAircraft, StanfordCars
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'misc' / 'make_demo_dataset.py'


def _load_tool():
    spec = importlib.util.spec_from_file_location('make_demo_dataset', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mdd = _load_tool()

SMALL = dict(
    num_classes=3, train_per_class=3, test_per_class=2, img_size=48, seed=0
)
# layout -> (mmpretrain class, train split, test split, all class names)
DATASETS = {
    'cub': (CUB, 'train', 'test', 200),
    'cars': (StanfordCars, 'train', 'test', 196),
    'aircraft': (FGVCAircraft, 'trainval', 'test', 100),
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


@pytest.mark.parametrize('layout', mdd.LAYOUTS)
def test_mmpretrain_reads_every_layout(tmp_path, layout):
    root = mdd.make_dataset(layout, str(tmp_path / layout), **SMALL)
    assert root == str(tmp_path / layout)
    cls, train, test, num_all = DATASETS[layout]
    names = mdd.class_names(layout, SMALL['num_classes'])
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
    mdd.make_dataset('cub', root, **SMALL)
    before = _mtimes(root)
    assert mdd.MANIFEST_FILE in before and mdd.PARTS_FILE in before
    mdd.make_dataset('cub', root, verbose=True, **SMALL)
    assert 'nothing to do' in capsys.readouterr().out
    assert _mtimes(root) == before
    # Age every file, so that a rewrite shows even on a coarse clock.
    for rel in before:
        os.utime(osp.join(root, rel), ns=(10**9, 10**9))
    aged = _mtimes(root)
    mdd.make_dataset('cub', root, force=True, **SMALL)
    after = _mtimes(root)
    assert set(after) == set(before)
    assert all(after[rel] != aged[rel] for rel in after)


def test_other_settings_rewrite_and_clean(tmp_path):
    root = str(tmp_path / 'cub')
    mdd.make_dataset('cub', root, **SMALL)
    assert mdd.is_complete(root, 'cub', **SMALL)
    fewer = dict(SMALL, num_classes=2)
    assert not mdd.is_complete(root, 'cub', **fewer)
    mdd.make_dataset('cub', root, **fewer)
    assert mdd.is_complete(root, 'cub', **fewer)
    # The third class's folder of the previous run is gone.
    assert len(os.listdir(osp.join(root, 'images'))) == 2
    # An incomplete data set is written again.
    os.remove(osp.join(root, 'images.txt'))
    assert not mdd.is_complete(root, 'cub', **fewer)
    mdd.make_dataset('cub', root, **fewer)
    assert mdd.is_complete(root, 'cub', **fewer)


def test_refuses_a_foreign_folder(tmp_path):
    (tmp_path / 'notes.txt').write_text('real data')
    with pytest.raises(FileExistsError, match='not written by this tool'):
        mdd.make_dataset('cub', str(tmp_path), **SMALL)
    mdd.make_dataset('cub', str(tmp_path), force=True, **SMALL)
    assert (tmp_path / 'notes.txt').read_text() == 'real data'


@pytest.mark.parametrize('layout', mdd.LAYOUTS)
def test_deterministic(tmp_path, layout):
    a = mdd.make_dataset(layout, str(tmp_path / 'a'), **SMALL)
    b = mdd.make_dataset(layout, str(tmp_path / 'b'), **SMALL)
    c = mdd.make_dataset(layout, str(tmp_path / 'c'), **dict(SMALL, seed=1))
    files_a, files_b, files_c = _contents(a), _contents(b), _contents(c)
    assert files_a == files_b
    images = [rel for rel in files_a if rel.endswith('.jpg')]
    assert len(images) == 15
    assert all(files_a[rel] != files_c[rel] for rel in images)


def test_classes_differ_only_in_a_local_part():
    size = 64
    num = mdd.MAX_CLASSES
    types = {tuple(mdd.part_type(c).values()) for c in range(num)}
    assert len(types) == num
    first = [mdd.part_type(c) for c in range(4)]
    assert len({t['shape'] for t in first}) == 4
    assert len({t['colour'] for t in first}) == 4
    for seed in range(3):
        # The same random draws with two labels: the same scene, object and
        # pose; only the part is drawn differently.
        img0, meta0 = mdd.render_image(np.random.default_rng(seed), 0, size)
        img1, meta1 = mdd.render_image(np.random.default_rng(seed), 5, size)
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


def test_parts_file(tmp_path):
    root = mdd.make_dataset('cars', str(tmp_path), **SMALL)
    with open(osp.join(root, mdd.PARTS_FILE)) as f:
        parts = json.load(f)
    assert [c['name'] for c in parts['classes']] == mdd.class_names('cars', 3)
    assert len({(c['shape'], c['colour']) for c in parts['classes']}) == 3
    assert len(parts['images']) == 15
    for item in parts['images']:
        assert osp.isfile(osp.join(root, item['file']))
        x1, y1, x2, y2 = item['part_box']
        assert 0 <= x1 < x2 <= 48 and 0 <= y1 < y2 <= 48


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match='layout'):
        mdd.make_dataset('imagenet', str(tmp_path))
    with pytest.raises(ValueError, match=r'\[1, 100\]'):
        mdd.make_dataset('aircraft', str(tmp_path), num_classes=101)
    with pytest.raises(ValueError, match='train_per_class'):
        mdd.make_dataset('cub', str(tmp_path), train_per_class=0)


def test_command_line(tmp_path):
    args = [
        sys.executable,
        str(SCRIPT),
        '--num-classes',
        '2',
        '--train-per-class',
        '2',
        '--test-per-class',
        '1',
        '--img-size',
        '40',
    ]
    out = tmp_path / 'cub'
    run = subprocess.run(
        args + ['--layout', 'cub', '--out', str(out)],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        check=True,
    )
    assert 'wrote 6 images' in run.stdout
    assert (out / 'images.txt').read_text().count('\n') == 6
    run = subprocess.run(
        args + ['--layout', 'cub', '--out', str(out)],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        check=True,
    )
    assert 'nothing to do' in run.stdout
    # --layout all writes one sub-folder per layout; the default --out is
    # data/demo under the working directory.
    subprocess.run(
        args + ['--layout', 'all'],
        capture_output=True,
        cwd=str(tmp_path),
        check=True,
    )
    for layout in mdd.LAYOUTS:
        root = tmp_path / 'data' / 'demo' / layout
        assert (root / mdd.MANIFEST_FILE).is_file()


def test_runner_dataloader_on_demo_cub(tmp_path):
    """The demo data set feeds a class-balanced Runner dataloader."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import scrim_mm  # noqa: F401  (registers the sampler)

    root = mdd.make_dataset('cub', str(tmp_path), **SMALL)
    cfg = dict(
        dataset=dict(
            type='CUB',
            data_root=root,
            split='train',
            classes=mdd.class_names('cub', 3),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')],
        ),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(
            type='SCRIMClassBalancedBatchSampler',
            num_classes_per_batch=2,
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


def test_interrupted_run_is_redone(tmp_path, monkeypatch):
    root = str(tmp_path / 'cars')

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(mdd, '_write_annotations', fail)
        with pytest.raises(KeyboardInterrupt):
            mdd.make_dataset('cars', root, **SMALL)
    assert not mdd.is_complete(root, 'cars', **SMALL)
    mdd.make_dataset('cars', root, **SMALL)  # no --force needed
    assert mdd.is_complete(root, 'cars', **SMALL)
