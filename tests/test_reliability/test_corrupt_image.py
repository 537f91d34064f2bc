# Copyright (c) scrim-mm contributors. All rights reserved.
"""An unreadable image stops the run with an error naming the file."""

import io
import os

import numpy as np
import pytest
from mmpretrain.datasets import CUB
from mmpretrain.registry import TRANSFORMS
from PIL import Image

import tools.train as train_tool
from scrim_mm.datasets.demo import class_names, make_dataset
from scrim_mm.datasets.transforms import truncation_reason

from .conftest import data_options


def encoded(fmt: str, size: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def broken_cub(tmp_path):
    """A demo CUB set and the path of one of its training images."""
    root = make_dataset(
        'cub',
        str(tmp_path / 'cub'),
        num_classes=4,
        train_per_class=2,
        test_per_class=1,
        img_size=32,
    )
    dataset = CUB(root, split='train', classes=class_names('cub', 4))
    return root, dataset.get_data_info(3)['img_path']


def load(path: str, **kwargs):
    loader = TRANSFORMS.build(dict(type='SCRIMLoadImageFromFile', **kwargs))
    return loader(dict(img_path=path))


@pytest.mark.parametrize(
    'content, reason',
    [
        (encoded('JPEG')[:-300], 'truncated JPEG'),
        (encoded('PNG')[:-300], 'truncated PNG'),
        (b'<html>not an image</html>', 'not a decodable image'),
        (b'', 'the file is empty'),
    ],
)
def test_loader_names_file_and_reason(tmp_path, content, reason):
    path = str(tmp_path / 'bad.jpg')
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(OSError) as info:
        load(path)
    assert f'Cannot load image {path}: {reason}' in str(info.value)
    assert load(path, ignore_empty=True) is None


def test_loader_names_missing_file(tmp_path):
    path = str(tmp_path / 'gone.jpg')
    with pytest.raises(FileNotFoundError, match=f'Image {path} does not'):
        load(path)


def test_loader_reads_good_images(tmp_path):
    for fmt in ('JPEG', 'PNG'):
        path = str(tmp_path / f'good.{fmt.lower()}')
        with open(path, 'wb') as f:
            f.write(encoded(fmt))
        assert load(path)['img'].shape == (48, 48, 3)


def test_truncation_check_does_not_depend_on_the_decoder():
    jpeg, png = encoded('JPEG'), encoded('PNG')
    assert truncation_reason(jpeg) is None
    assert truncation_reason(png) is None
    # Data after the end marker (e.g. an appended video) is fine ...
    assert truncation_reason(jpeg + b'\xff\xda' + bytes(64)) is None
    assert truncation_reason(png + b'trailer') is None
    # ... while every cut inside the image is found, even of 2 bytes.
    for cut in (2, 10, len(jpeg) // 2):
        assert 'truncated JPEG' in truncation_reason(jpeg[:-cut])
    assert 'truncated PNG' in truncation_reason(png[: len(png) // 2])
    assert truncation_reason(b'BM' + bytes(10)) is None  # left to decoder


def test_training_stops_naming_the_corrupt_image(
    broken_cub, demo_config, tmp_path
):
    root, bad = broken_cub
    with open(bad, 'rb') as f:
        data = f.read()
    with open(bad, 'wb') as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(OSError) as info:
        train_tool.main(
            [
                demo_config,
                '--work-dir',
                str(tmp_path / 'work'),
                '--cfg-options',
                'train_dataloader.dataset.pipeline.0.type='
                'SCRIMLoadImageFromFile',
                *data_options(root),
            ]
        )
    assert f'Cannot load image {bad}: truncated JPEG' in str(info.value)
    assert not any(
        name.endswith('.pth') for name in os.listdir(tmp_path / 'work')
    )
