# Copyright (c) scrim-mm contributors. All rights reserved.
"""ONNX export of SCRIM: the tool, the graph, onnxruntime parity, errors."""

import contextlib
import io
import json
import sys

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from scrim_mm.deployment import (
    BOX_TOL,
    MIN_OPSET,
    SCORE_TOL,
    ONNXRuntimeSCRIM,
    SCRIMExportWrapper,
    compare_outputs,
    export_onnx,
    latency_ratio,
    parity_ok,
    read_metadata,
    require_deploy_packages,
)
from scrim_mm.models.ops import batched_hard_nms
from tests.test_apis.demo_run import CONFIG, load_script

from .conftest import INPUT_SIZE

export_tool = load_script(
    'tools/deployment/pytorch2onnx.py', 'scrim_pytorch2onnx'
)


@pytest.fixture(scope='module')
def static_onnx(tmp_path_factory, demo_run):
    """The tool's export at batch 1, with its printed check."""
    out = str(tmp_path_factory.mktemp('onnx_static') / 'scrim.onnx')
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = export_tool.main(
            [
                CONFIG,
                demo_run['checkpoint'],
                '--out',
                out,
                '--cfg-options',
                f'test_dataloader.dataset.data_root={demo_run["data_root"]}',
            ]
        )
    return out, status, buf.getvalue()


def test_tool_exports_batch1_and_checks_parity(static_onnx, demo_run):
    path, status, printed = static_onnx
    assert status == 0, printed
    assert 'on 4 test image(s) of the config' in printed
    assert 'batch 1: max |diff| scores' in printed
    assert 'parity OK' in printed
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == [
        'scores',
        'boxes',
        'box_scores',
        'box_stages',
    ]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert model.graph.input[0].name == 'inputs'
    assert [d.dim_value for d in dims] == [1, 3, *INPUT_SIZE]
    assert model.opset_import[0].version == MIN_OPSET
    ops = {node.op_type for node in model.graph.node}
    # Crops, NMS ordering and picks, and the softmax are in the graph.
    assert {'RoiAlign', 'TopK', 'ArgMax', 'Softmax', 'Conv'} <= ops
    meta = read_metadata(path)
    assert meta['classes'] == demo_run['classes']
    assert meta['stage_names'] == ['s3', 's4']
    assert meta['input_size'] == list(INPUT_SIZE)
    assert meta['data_preprocessor']['to_rgb'] is True
    assert meta['test_pipeline'][-1]['type'] == 'PackInputs'
    # All JSON, readable without Python-specific types.
    props = {p.key: p.value for p in model.metadata_props}
    assert all(json.loads(v) is not None for v in props.values())


def test_static_batch_runs_image_by_image(
    static_onnx, demo_model, demo_inputs
):
    runner = ONNXRuntimeSCRIM(static_onnx[0])
    assert runner.batch_size == 1 and runner.input_size == INPUT_SIZE
    diffs = compare_outputs(demo_model, runner, demo_inputs)
    assert diffs['batch'] == 4 and parity_ok(diffs), diffs


@pytest.mark.parametrize('batch', [1, 4])
def test_dynamic_batch_parity(dynamic_onnx, demo_model, demo_inputs, batch):
    runner = ONNXRuntimeSCRIM(dynamic_onnx)
    assert runner.batch_size is None
    inputs = demo_inputs[:batch]
    diffs = compare_outputs(demo_model, runner, inputs)
    assert diffs['scores'] <= SCORE_TOL
    assert diffs['boxes'] <= BOX_TOL
    assert diffs['same_top1'] and diffs['same_stages']
    # The runner's samples against the model's own predict().
    with torch.no_grad():
        expected = demo_model.predict(inputs)
    got = runner(inputs, mode='predict')
    assert len(got) == batch
    for e, g in zip(expected, got):
        assert torch.equal(e.pred_label, g.pred_label)
        torch.testing.assert_close(
            g.pred_score, e.pred_score, atol=SCORE_TOL, rtol=0
        )
        torch.testing.assert_close(
            g.pred_boxes, e.pred_boxes, atol=BOX_TOL, rtol=0
        )
        torch.testing.assert_close(
            g.pred_box_scores, e.pred_box_scores, atol=1e-4, rtol=0
        )
        assert torch.equal(g.pred_box_stages, e.pred_box_stages)
        assert g.pred_box_stages.dtype == torch.int64


class _NMS(nn.Module):
    """Hard NMS on fixed anchors, as the FPL head runs it."""

    def __init__(self, anchors: torch.Tensor, max_num: int) -> None:
        super().__init__()
        self.anchors = anchors
        self.max_num = max_num

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return batched_hard_nms(self.anchors, scores, 0.25, self.max_num)


def test_nms_ties_and_fallback_match_pytorch(tmp_path):
    """Tied scores, NaN and a fallback past the suppression export alike."""
    import onnxruntime as ort
    from torchvision.ops import box_iou

    from scrim_mm.deployment.onnx_export import _sort_stable

    gen = torch.Generator().manual_seed(0)
    xy = torch.randint(0, 40, (8, 2), generator=gen).float()
    wh = torch.randint(8, 40, (8, 2), generator=gen).float()
    anchors = torch.cat([xy, xy + wh], dim=1)
    # All 8 picked: once the survivors run out, suppressed boxes follow.
    # (Each pick is traced on its own: about a second per pick.)
    module = _NMS(anchors, 8).eval()
    path = str(tmp_path / 'nms.onnx')
    torch.onnx.export(
        module,
        (torch.zeros(3, 8),),
        path,
        dynamo=True,
        input_names=['scores'],
        opset_version=MIN_OPSET,
        custom_translation_table={torch.ops.aten.sort.stable: _sort_stable},
        external_data=False,
        verbose=False,
    )
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    # Scores drawn from 3 values: many ties, broken by the lower index.
    scores = torch.randint(0, 3, (3, 8), generator=gen).float()
    scores[1, 5] = float('nan')
    expected = module(scores)
    got = session.run(None, {'scores': scores.numpy()})[0]
    np.testing.assert_array_equal(got, expected.numpy())
    # The case is the intended one: ties, and suppressed boxes picked last.
    assert any(len(set(row.tolist())) < 8 for row in scores)
    picked = anchors[expected[0]]
    overlap = box_iou(picked, picked).triu(diagonal=1)
    assert (overlap >= 0.25).any()


def _cpl_only_classifier_cfg(fpl: bool) -> dict:
    neck = dict(type='CPLNeck', in_channels=(256, 512), embed_dims=32)
    head = dict(
        type='SCRIMHead',
        num_classes=4,
        in_channels=512,
        part_channels=(256, 512),
        fpl_channels=512,
        num_fpl_parts=0,
    )
    backbone = dict(type='ResNet', depth=18, out_indices=(2, 3))
    if not fpl:
        return dict(
            type='ImageClassifier', backbone=backbone, neck=neck, head=head
        )
    return dict(
        type='SCRIMClassifier',
        backbone=backbone,
        neck=neck,
        head=head,
        fpl_head=None,
    )


def test_unsupported_models_are_named(tmp_path):
    plain = MODELS.build(_cpl_only_classifier_cfg(fpl=False))
    assert type(plain) is ImageClassifier
    with pytest.raises(
        TypeError, match='needs a SCRIMClassifier.*' 'got ImageClassifier'
    ):
        export_onnx(plain, str(tmp_path / 'a.onnx'), INPUT_SIZE)
    cpl_only = MODELS.build(_cpl_only_classifier_cfg(fpl=True))
    with pytest.raises(ValueError, match='fpl_head is None'):
        SCRIMExportWrapper(cpl_only)
    assert not (tmp_path / 'a.onnx').exists()


def test_unsupported_options_are_named(tmp_path, demo_model):
    with pytest.raises(ValueError, match=r'opset=17 \(--opset\).*>= 18'):
        export_onnx(demo_model, str(tmp_path / 'a.onnx'), INPUT_SIZE, opset=17)
    with pytest.raises(
        ValueError, match='90x90: the FPL stage strides .* multiples of 32'
    ):
        export_onnx(demo_model, str(tmp_path / 'a.onnx'), (90, 90))
    with pytest.raises(ValueError, match='expected \\(H, W\\)'):
        export_onnx(demo_model, str(tmp_path / 'a.onnx'), (96,))


def test_runner_errors_name_the_fix(dynamic_onnx, tmp_path, monkeypatch):
    runner = ONNXRuntimeSCRIM(dynamic_onnx)
    with pytest.raises(ValueError, match='takes 96x96 inputs.*--input-size'):
        runner.run(torch.zeros(1, 3, 64, 64))
    # A file without SCRIM metadata needs the config.
    bare = onnx.load(dynamic_onnx)
    del bare.metadata_props[:]
    path = str(tmp_path / 'bare.onnx')
    onnx.save(bare, path)
    with pytest.raises(ValueError, match='no SCRIM metadata.*--config'):
        ONNXRuntimeSCRIM(path)
    assert ONNXRuntimeSCRIM(path, config=CONFIG).input_size == INPUT_SIZE
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match=r'pip install -e \.\[deploy\]'):
        require_deploy_packages('onnxruntime')


def test_latency_ratio(dynamic_onnx, demo_model, demo_inputs):
    runner = ONNXRuntimeSCRIM(dynamic_onnx, num_threads=1)
    res = latency_ratio(demo_model, runner, demo_inputs[:1], iters=2, warmup=1)
    assert res['batch'] == 1 and res['iters'] == 2
    assert res['torch_ms'] > 0 and res['onnxruntime_ms'] > 0
    assert res['ratio'] == pytest.approx(
        res['onnxruntime_ms'] / res['torch_ms']
    )


def test_benchmark_tool_onnxruntime(
    demo_model, dynamic_onnx, monkeypatch, tmp_path
):
    """The benchmark's --onnxruntime measurement (scrim_mm.benchmark)."""
    import shutil

    import scrim_mm.deployment
    from scrim_mm.benchmark import BenchmarkOptions
    from scrim_mm.benchmark.onnx_latency import onnxruntime_latency

    exported = {}

    def fake_export(model, path, size, metadata=None):
        # The session's export of the same model stands in (no re-export).
        exported.update(size=size, metadata=metadata)
        return shutil.copy(dynamic_onnx, path)

    monkeypatch.setattr(scrim_mm.deployment, 'export_onnx', fake_export)
    res = onnxruntime_latency(
        demo_model, Config.fromfile(CONFIG), 96, iters=2, warmup=0
    )
    assert exported['size'] == INPUT_SIZE
    assert 'scrim.test_pipeline' in exported['metadata']
    assert res['batch'] == 1 and res['iters'] == 2
    assert res['onnx_mib'] > 40 and res['ratio'] > 0  # ResNet-18 weights
    with pytest.raises(ValueError, match='device="cpu"'):
        BenchmarkOptions(config='x.py', onnxruntime=True, device='cuda')
    bench = load_script('tools/analysis/benchmark.py', 'scrim_bench_onnx')
    assert bench.parse_args(['x.py', '--onnxruntime']).onnxruntime


def test_input_size_from_the_test_pipeline():
    from scrim_mm.deployment import input_size_from_config
    from tests.test_apis.demo_run import REPO

    cub = Config.fromfile(str(REPO / 'configs/scrim/scrim_r50_cub.py'))
    assert input_size_from_config(cub) == (448, 448)
    assert input_size_from_config(Config.fromfile(CONFIG)) == INPUT_SIZE
    keep_ratio = Config(
        dict(
            test_dataloader=dict(
                dataset=dict(pipeline=[dict(type='ResizeEdge', scale=256)])
            )
        )
    )
    with pytest.raises(ValueError, match='give --input-size H W'):
        input_size_from_config(keep_ratio)


@pytest.mark.parametrize('pred_mode', ['fused', 'sum'])
def test_wrapper_matches_predict(pred_mode):
    """The exported function is predict(), in both prediction modes."""
    cfg = Config.fromfile(CONFIG)
    cfg.model.head = dict(cfg.model.get('head', {}), pred_mode=pred_mode)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        scores, boxes, box_scores, stages = SCRIMExportWrapper(model)(inputs)
        expected = model.predict(inputs)
    for i, sample in enumerate(expected):
        torch.testing.assert_close(scores[i], sample.pred_score)
        assert torch.equal(boxes[i], sample.pred_boxes)
        assert torch.equal(box_scores[i], sample.pred_box_scores)
        assert torch.equal(stages[i], sample.pred_box_stages)
