# Copyright (c) scrim-mm contributors. All rights reserved.
"""tools/infer.py on a real checkpoint."""

import json
import os.path as osp

import pytest
from PIL import Image

from tests.test_apis.demo_run import (
    NUM_CLASSES,
    TEST_PER_CLASS,
    TRAIN_PER_CLASS,
    load_script,
)
from tests.test_apis.demo_run import demo_run as _demo_run

infer_tool = load_script('tools/infer.py', 'h6_infer_tool')


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    return _demo_run(tmp_path_factory)


def test_infer_folder_to_json(demo_run, tmp_path, capsys):
    folder = osp.dirname(osp.dirname(demo_run['test_images'][0]))
    out = tmp_path / 'out' / 'results.json'
    returned = infer_tool.main(
        [
            demo_run['config'],
            demo_run['checkpoint'],
            folder,
            '--topk',
            '3',
            '--out',
            str(out),
            '--device',
            'cpu',
            '--batch-size',
            '5',
        ]
    )
    with open(out, encoding='utf-8') as f:
        results = json.load(f)
    assert results == returned
    # Every image of the data set (train and test), found recursively.
    assert len(results) == NUM_CLASSES * (TRAIN_PER_CLASS + TEST_PER_CLASS)
    printed = capsys.readouterr().out
    for result in results:
        assert {
            'img_path',
            'pred_label',
            'pred_class',
            'pred_score',
            'topk',
            'regions',
        } <= set(result)
        assert 'pred_scores' not in result
        assert result['img_path'] in printed
        labels = [t['label'] for t in result['topk']]
        scores = [t['score'] for t in result['topk']]
        assert len(set(labels)) == 3 and scores == sorted(scores)[::-1]
        assert result['pred_label'] == labels[0]
        assert result['pred_class'] == demo_run['classes'][labels[0]]
        assert [t['class'] for t in result['topk']] == [
            demo_run['classes'][j] for j in labels
        ]
        with Image.open(result['img_path']) as img:
            w, h = img.size
        assert len(result['regions']) == 4
        for region in result['regions']:
            x1, y1, x2, y2 = region['box']
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert region['stage'] in ('s3', 's4')
    assert f'1. {results[0]["pred_class"]} (label' in printed


def test_infer_single_image_and_errors(demo_run, tmp_path):
    image = demo_run['test_images'][0]
    (result,) = infer_tool.main(
        [demo_run['config'], demo_run['checkpoint'], image, '--topk', '10']
    )
    assert len(result['topk']) == 4  # no more than the classes
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.txt').write_text('no image')
    with pytest.raises(ValueError, match='holds no image'):
        infer_tool.main(
            [demo_run['config'], demo_run['checkpoint'], str(empty)]
        )
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        infer_tool.main(
            [
                demo_run['config'],
                demo_run['checkpoint'],
                str(tmp_path / 'missing.jpg'),
            ]
        )
    with pytest.raises(SystemExit):
        infer_tool.main(
            [demo_run['config'], demo_run['checkpoint'], image, '--topk', '0']
        )


def test_jsonable_turns_nan_into_null():
    value = infer_tool._jsonable({'a': [float('nan'), 1.5, 2], 'b': None})
    assert json.loads(json.dumps(value, allow_nan=False)) == {
        'a': [None, 1.5, 2],
        'b': None,
    }
