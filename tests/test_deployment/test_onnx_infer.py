# Copyright (c) scrim-mm contributors. All rights reserved.
"""tools/infer.py --backend onnxruntime against the PyTorch backend."""

import json
import os.path as osp

import pytest

from tests.test_apis.demo_run import CONFIG, load_script

infer_tool = load_script('tools/infer.py', 'scrim_infer_onnx')


def _same_json(got: list, expected: list) -> None:
    """Equal JSON, floats up to the parity tolerances."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert set(g) == set(e)
        for key in ('img_path', 'pred_label', 'pred_class'):
            assert g[key] == e[key]
        assert g['pred_score'] == pytest.approx(e['pred_score'], abs=1e-4)
        assert [(t['label'], t['class']) for t in g['topk']] == [
            (t['label'], t['class']) for t in e['topk']
        ]
        for tg, te in zip(g['topk'], e['topk']):
            assert tg['score'] == pytest.approx(te['score'], abs=1e-4)
        assert len(g['regions']) == len(e['regions']) == 4
        for rg, re in zip(g['regions'], e['regions']):
            assert rg['stage'] == re['stage']
            # Original-image pixels (64 px images, 96 px input): 0.5 input
            # px is 1/3 px here, plus the JSON's rounding to 0.01.
            assert rg['box'] == pytest.approx(re['box'], abs=0.35)
            assert rg['score'] == pytest.approx(re['score'], abs=1e-4)


@pytest.fixture(scope='module')
def pytorch_json(demo_run, tmp_path_factory):
    folder = osp.dirname(osp.dirname(demo_run['test_images'][0]))
    out = tmp_path_factory.mktemp('infer') / 'pytorch.json'
    infer_tool.main(
        [
            CONFIG,
            demo_run['checkpoint'],
            folder,
            '--device',
            'cpu',
            '--batch-size',
            '5',
            '--out',
            str(out),
        ]
    )
    with open(out, encoding='utf-8') as f:
        return folder, json.load(f)


def test_onnxruntime_json_equals_pytorch(pytorch_json, dynamic_onnx, tmp_path):
    folder, expected = pytorch_json
    out = tmp_path / 'onnx.json'
    returned = infer_tool.main(
        [
            '--backend',
            'onnxruntime',
            dynamic_onnx,
            folder,
            '--batch-size',
            '5',
            '--out',
            str(out),
        ]
    )
    with open(out, encoding='utf-8') as f:
        got = json.load(f)
    assert got == returned
    assert len(got) == 20  # train and test images of the demo set
    _same_json(got, expected)


def test_onnxruntime_with_config(pytorch_json, dynamic_onnx):
    """CONFIG MODEL.onnx: the config's pipeline instead of the metadata."""
    folder, expected = pytorch_json
    got = infer_tool.main(
        ['--backend', 'onnxruntime', CONFIG, dynamic_onnx, folder]
    )
    _same_json(got, expected)


def test_backend_arguments(dynamic_onnx):
    with pytest.raises(SystemExit):  # PyTorch needs three positionals
        infer_tool.main([CONFIG, dynamic_onnx])
    with pytest.raises(SystemExit):
        infer_tool.main(['--backend', 'tensorrt', dynamic_onnx, 'x.jpg'])
