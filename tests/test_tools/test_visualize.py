# Copyright (c) scrim-mm contributors. All rights reserved.
"""Region pictures: box mapping, draw_regions, the hook and the tools."""

import glob
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.visualization import Visualizer
from mmpretrain.registry import HOOKS, TRANSFORMS
from mmpretrain.structures import DataSample
from PIL import Image

from scrim_mm.structures import boxes_to_original, input_region, input_view
from scrim_mm.visualization import (
    SCRIMAttentionRecorder,
    draw_regions,
    stage_name,
)
from tests.test_apis.demo_run import REPO, load_script
from tests.test_apis.demo_run import demo_run as _demo_run

visualize_tool = load_script('tools/visualize_regions.py', 'h6_vis_tool')
test_tool = load_script('tools/test.py', 'h6_test_tool')


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    return _demo_run(tmp_path_factory)


def _run_pipeline(steps, img):
    pipeline = Compose([TRANSFORMS.build(t) for t in steps])
    return pipeline(
        dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
    )


def test_resize_then_centre_crop_by_hand():
    # 200 x 100 (w x h) -> Resize to 120 x 60 (scale 0.6) -> CenterCrop 50:
    # mmcv crops x from round((120 - 50) / 2) = 35, y from 5.
    img = np.zeros((100, 200, 3), np.uint8)
    out = _run_pipeline(
        [
            dict(type='Resize', scale=(120, 60)),
            dict(type='CenterCrop', crop_size=50),
            dict(type='PackInputs'),
        ],
        img,
    )
    meta = out['data_samples'].metainfo
    assert tuple(meta['img_shape']) == (50, 50)
    assert tuple(meta['scale_factor']) == (0.6, 0.6)
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 50.0, 50.0]])
    mapped = boxes_to_original(boxes, meta)
    expected = torch.tensor(
        [
            [45 / 0.6, 25 / 0.6, 65 / 0.6, 45 / 0.6],
            [35 / 0.6, 5 / 0.6, 85 / 0.6, 55 / 0.6],
        ]
    )
    torch.testing.assert_close(mapped, expected)
    torch.testing.assert_close(input_region(meta), expected[1])
    # A horizontal flip of the input mirrors the boxes first.
    flipped = dict(meta, flip=True, flip_direction='horizontal')
    torch.testing.assert_close(
        boxes_to_original(boxes[:1], flipped),
        torch.tensor([[55 / 0.6, 25 / 0.6, 75 / 0.6, 45 / 0.6]]),
    )


def test_box_mapping_matches_the_pixels():
    """A white square in the original lands where the mapping says."""
    img = np.zeros((90, 160, 3), np.uint8)
    img[30:70, 60:100] = 255  # x 60..100, y 30..70
    steps = [
        dict(type='ResizeEdge', scale=72, edge='short'),
        dict(type='CenterCrop', crop_size=64),
        dict(type='PackInputs'),
    ]
    out = _run_pipeline(steps, img)
    meta = out['data_samples'].metainfo
    net = out['inputs'].permute(1, 2, 0).numpy()
    ys, xs = np.nonzero(net[..., 0] > 127)
    found = torch.tensor(
        [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float
    )
    mapped = boxes_to_original(found, meta)[0]
    assert torch.allclose(mapped, torch.tensor([60.0, 30, 100, 70]), atol=2)
    # input_view re-creates the network input from the original image.
    view = input_view(img, meta)
    assert view.shape == net.shape
    assert np.abs(view.astype(int) - net.astype(int)).mean() < 8


def test_box_mapping_errors():
    with pytest.raises(KeyError, match="'ori_shape'"):
        boxes_to_original(torch.zeros(1, 4), dict(img_shape=(8, 8)))
    with pytest.raises(ValueError, match=r'shape \(N, 4\)'):
        boxes_to_original(
            torch.zeros(4), dict(img_shape=(8, 8), ori_shape=(8, 8))
        )
    with pytest.raises(ValueError, match='scale_factor'):
        boxes_to_original(
            torch.zeros(1, 4),
            dict(img_shape=(8, 8), ori_shape=(8, 8), scale_factor=(0, 1)),
        )


def test_box_mapping_reexported_from_visualization():
    # docs/deployment.md names scrim_mm.visualization.boxes_to_original;
    # the box mapping lives in scrim_mm.structures and is re-exported.
    import scrim_mm.structures as structures
    import scrim_mm.visualization as visualization

    for name in structures.__all__:
        assert getattr(visualization, name) is getattr(structures, name)
        assert name in visualization.__all__


def _sample(with_boxes: bool = True) -> DataSample:
    sample = DataSample(
        metainfo=dict(
            ori_shape=(100, 200), img_shape=(50, 50), scale_factor=(0.6, 0.6)
        )
    )
    sample.set_pred_score(torch.tensor([0.1, 0.7, 0.2]))
    sample.set_gt_label(2)
    if with_boxes:
        sample.set_field(
            torch.tensor([[10.0, 20, 30, 40], [0, 0, 25, 25], [5, 5, 45, 45]]),
            'pred_boxes',
        )
        sample.set_field(torch.tensor([1.5, 0.5, -0.25]), 'pred_box_scores')
        sample.set_field(torch.tensor([0, 0, 1]), 'pred_box_stages')
    return sample


def test_draw_regions(tmp_path):
    image = np.random.randint(0, 255, (100, 200, 3), dtype=np.uint8)
    sample = _sample()
    maps = [torch.rand(2, 4, 4), torch.rand(2, 2, 2)]
    out_file = str(tmp_path / 'sub' / 'a.png')
    info = draw_regions(
        image,
        sample,
        classes=['x', 'y', 'z'],
        attention_maps=maps,
        out_file=out_file,
    )
    torch.testing.assert_close(
        info['boxes'], boxes_to_original(sample.pred_boxes, sample.metainfo)
    )
    assert info['stages'] == ['s3', 's3', 's4']
    assert stage_name(('s3',), 1) == 'stage 1'
    torch.testing.assert_close(info['scores'], sample.pred_box_scores)
    assert info['pred_label'] == 1 and np.isclose(info['pred_score'], 0.7)
    assert info['num_heatmaps'] == 4
    with Image.open(out_file) as png:
        assert png.format == 'PNG'
        assert png.size == info['image'].shape[1::-1]
        assert png.size[0] > png.size[1] > 200
    # The drawing never replaces mmengine's current (the runner's)
    # visualizer.
    assert not Visualizer.check_instance_created('scrim_region_visualizer')
    # Without regions or attention maps: only the image and the title.
    bare = draw_regions(image, _sample(with_boxes=False))
    assert len(bare['boxes']) == 0 and bare['num_heatmaps'] == 0
    assert bare['image'].shape[1] < info['image'].shape[1]
    with pytest.raises(ValueError, match='display_size=8'):
        draw_regions(image, sample, display_size=8)
    with pytest.raises(ValueError, match='RGB uint8'):
        draw_regions(image.astype(np.float32), sample)
    with pytest.raises(ValueError, match=r'\(P, H, W\)'):
        draw_regions(image, sample, attention_maps=[torch.rand(4, 4)])


def test_attention_recorder_on_demo_model(demo_run):
    from mmpretrain.apis import get_model

    model = get_model(demo_run['config'], pretrained=demo_run['checkpoint'])
    x = torch.rand(3, 3, 96, 96) * 255
    data = dict(inputs=list(x.byte()), data_samples=None)
    recorder = SCRIMAttentionRecorder(model)
    assert recorder.available and recorder.stage_names == ('s3', 's4')
    model.test_step(data)
    assert recorder.pop() is None  # not attached yet
    with recorder:
        model.test_step(data)
        maps = recorder.pop()
    assert [tuple(m.shape) for m in maps] == [(3, 2, 6, 6), (3, 2, 3, 3)]
    model.test_step(data)
    assert recorder.pop() is None  # detached again
    assert not SCRIMAttentionRecorder(torch.nn.Linear(2, 2)).available


def test_visualize_regions_tool(demo_run, tmp_path):
    folder = osp.dirname(demo_run['test_images'][0])
    results = visualize_tool.main(
        [
            demo_run['config'],
            demo_run['checkpoint'],
            folder,
            '--out-dir',
            str(tmp_path / 'vis'),
            '--device',
            'cpu',
        ]
    )
    stems = sorted(
        osp.splitext(osp.basename(p))[0]
        for p in glob.glob(osp.join(folder, '*.jpg'))
    )
    written = sorted(glob.glob(str(tmp_path / 'vis' / '*.png')))
    assert [osp.splitext(osp.basename(p))[0] for p in written] == stems
    for result in results:
        assert len(result['regions']) == 4  # K = 2 per stage, 2 stages
        with Image.open(result['visualization']) as png:
            assert png.format == 'PNG' and png.size[0] > 400
    with pytest.raises(FileNotFoundError, match='nowhere'):
        visualize_tool.main(
            [
                demo_run['config'],
                demo_run['checkpoint'],
                str(tmp_path / 'nowhere'),
                '--out-dir',
                'x',
            ]
        )


def test_test_tool_show_dir_with_resize_and_crop(demo_run, tmp_path):
    """tools/test.py --show-dir: one picture per test image (the hook)."""
    config = tmp_path / 'crop_cfg.py'
    config.write_text(
        f'_base_ = [{demo_run["config"]!r}]\n'
        'test_pipeline = [\n'
        "    dict(type='LoadImageFromFile'),\n"
        "    dict(type='Resize', scale=(112, 112)),\n"
        "    dict(type='CenterCrop', crop_size=96),\n"
        "    dict(type='PackInputs'),\n"
        ']\n'
        f'test_dataloader = dict(batch_size=3, dataset=dict('
        f'data_root={demo_run["data_root"]!r}, pipeline=test_pipeline))\n'
    )
    show_dir = tmp_path / 'show'
    metrics = test_tool.main(
        [
            str(config),
            demo_run['checkpoint'],
            '--show-dir',
            str(show_dir),
            '--work-dir',
            str(tmp_path / 'work'),
        ]
    )
    assert 'accuracy/top1' in metrics
    pictures = sorted(show_dir.glob('*.png'))
    assert len(pictures) == demo_run['num_test']
    stems = sorted(
        osp.splitext(osp.basename(p))[0] for p in demo_run['test_images']
    )
    assert [p.stem for p in pictures] == stems
    for picture in pictures:
        with Image.open(picture) as png:
            assert png.format == 'PNG' and png.size[0] > 400


def test_hook_interval_and_arguments(demo_run, tmp_path):
    from mmpretrain.apis import get_model

    model = get_model(demo_run['config'], pretrained=demo_run['checkpoint'])
    hook = HOOKS.build(
        dict(
            type='SCRIMRegionVisualizationHook',
            out_dir=str(tmp_path / 'v'),
            interval=2,
        )
    )
    runner = SimpleNamespace(
        model=model,
        test_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(metainfo=dict(classes=demo_run['classes']))
        ),
    )
    hook.before_test(runner)
    # Images without files: the network input itself is drawn.
    data = dict(
        inputs=list((torch.rand(2, 3, 96, 96) * 255).byte()), data_samples=None
    )
    for batch_idx in range(2):
        outputs = model.test_step(data)
        hook.after_test_iter(runner, batch_idx, data, outputs)
    hook.after_test(runner)
    written = sorted(p.name for p in (tmp_path / 'v').glob('*.png'))
    assert written == ['000000.png', '000002.png']
    assert not model.neck._forward_hooks  # the recorder was removed
    with pytest.raises(ValueError, match='interval=0'):
        HOOKS.build(
            dict(type='SCRIMRegionVisualizationHook', out_dir='x', interval=0)
        )


def test_committed_region_figure():
    # The architecture diagram is Mermaid text in the docs, checked by
    # tests/test_docs/test_architecture_diagram.py.
    path = REPO / 'docs' / 'figures' / 'regions_demo.png'
    assert path.is_file(), f'{path} missing'
    assert path.stat().st_size < 200 * 1024, f'{path} over 200 KB'
