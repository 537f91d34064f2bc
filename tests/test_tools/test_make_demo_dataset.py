# Copyright (c) scrim-mm contributors. All rights reserved.
"""The command line of ``tools/misc/make_demo_dataset.py``.

The generator itself is tested through the package, in
``tests/test_datasets/test_demo.py``.
"""

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from scrim_mm.datasets.demo import LAYOUTS, MANIFEST_FILE, PARTS_FILE

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'misc' / 'make_demo_dataset.py'


def test_command_line(tmp_path):
    """--layout all --difficulty hard writes data/demo/<layout> (cwd)."""
    args = [
        sys.executable,
        str(SCRIPT),
        '--layout',
        'all',
        '--difficulty',
        'hard',
        '--num-classes',
        '2',
        '--train-per-class',
        '2',
        '--test-per-class',
        '1',
        '--img-size',
        '64',
    ]
    run = subprocess.run(
        args, capture_output=True, text=True, cwd=str(tmp_path), check=True
    )
    assert run.stdout.count('wrote 6 images') == 3
    assert run.stdout.count('hard') == 3
    for layout in LAYOUTS:
        root = tmp_path / 'data' / 'demo' / layout
        manifest = json.loads((root / MANIFEST_FILE).read_text())
        assert manifest['complete'] is True
        settings = manifest['settings']
        assert settings['difficulty'] == 'hard'
        assert settings['num_classes'] == 2 and settings['img_size'] == 64
        assert (settings['train_per_class'], settings['test_per_class']) == (
            2,
            1,
        )
        images = [rel for rel in manifest['files'] if rel.endswith('.jpg')]
        assert len(images) == 6
        with Image.open(root / images[0]) as img:
            assert img.size == (64, 64)
        parts = json.loads((root / PARTS_FILE).read_text())
        assert parts['difficulty'] == 'hard'
        assert all(len(it['distractor_boxes']) >= 2 for it in parts['images'])
    cub = tmp_path / 'data' / 'demo' / 'cub'
    assert (cub / 'images.txt').read_text().count('\n') == 6
    assert (cub / 'parts' / 'part_locs.txt').read_text().count('\n') == 18
