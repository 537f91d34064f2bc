# Copyright (c) scrim-mm contributors. All rights reserved.
"""mmpretrain's inference API and SCRIMInferencer on a real checkpoint."""

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmpretrain.apis import (
    ImageClassificationInferencer,
    ModelHub,
    get_model,
    list_models,
)
from mmpretrain.datasets import remove_transform
from mmpretrain.registry import TRANSFORMS

from scrim_mm.apis import (
    SCRIMInferencer,
    config_classes,
    find_metafile,
    get_scrim_model,
    register_scrim_models,
)
from scrim_mm.structures import input_region

from .demo_run import REPO

# Every SCRIM config is in the model index under its file stem.
SCRIM_NAMES = sorted(p.stem for p in (REPO / 'configs' / 'scrim').glob('*.py'))


def test_list_models_after_import():
    assert {'scrim_r50_cub', 'scrim_r18_demo', 'cpl_resnet50_8xb8_cub'} <= (
        set(SCRIM_NAMES)
    )
    # conftest imports scrim_mm, which registers the SCRIM model index.
    listed = list_models('scrim*') + list_models('cpl*')
    assert sorted(listed) == SCRIM_NAMES
    assert sorted(register_scrim_models()) == SCRIM_NAMES  # idempotent


@pytest.mark.parametrize('name', SCRIM_NAMES)
def test_every_named_config_is_ready_for_inference(name):
    """get_model by name builds every config; its pipeline maps boxes."""
    cfg = ModelHub.get(name).config
    assert osp.basename(cfg.filename) == f'{name}.py'
    model = get_model(name)
    assert type(model).__name__ == cfg.model.type
    assert not model.training
    # The class names (config's, else the dataset class's) fit the head.
    classes = get_scrim_model(name)._dataset_meta['classes']
    assert len(classes) == model.head.num_classes
    del model
    # The inferencer's pipeline: the test pipeline without image loading.
    dataset = cfg.test_dataloader.dataset
    steps = remove_transform(dataset.pipeline, 'LoadImageFromFile')
    pipeline = Compose([TRANSFORMS.build(t) for t in steps])
    img = np.random.randint(0, 255, (300, 400, 3), dtype=np.uint8)
    out = pipeline(
        dict(img=img, img_shape=img.shape[:2], ori_shape=(300, 400))
    )
    meta = out['data_samples'].metainfo
    assert meta['ori_shape'] == (300, 400)
    assert tuple(out['inputs'].shape[1:]) == tuple(meta['img_shape'][:2])
    # The network input maps back onto a part of the original image.
    x1, y1, x2, y2 = input_region(meta).tolist()
    assert 0 <= x1 < x2 <= 400 and 0 <= y1 < y2 <= 300
    assert (x2 - x1) * (y2 - y1) > 0.25 * 400 * 300


def test_metafile_found_in_clone_and_installed_layout(tmp_path):
    assert find_metafile() == (
        str(REPO / 'configs' / 'scrim' / 'metafile.yml'),
        str(REPO),
    )
    # An installed package carries the configs in scrim_mm/.mim/configs.
    pkg = tmp_path / 'site-packages' / 'scrim_mm'
    meta = pkg / '.mim' / 'configs' / 'scrim' / 'metafile.yml'
    meta.parent.mkdir(parents=True)
    meta.write_text('Models: []\n')
    assert find_metafile(str(pkg)) == (str(meta), str(pkg / '.mim'))
    assert find_metafile(str(tmp_path / 'elsewhere' / 'scrim_mm')) is None


def test_register_warns_on_missing_config(tmp_path, monkeypatch):
    monkeypatch.setattr(ModelHub, '_models_dict', {})
    monkeypatch.setattr(ModelHub, '_ModelHub__mmpretrain_registered', True)
    meta = tmp_path / 'configs' / 'scrim' / 'metafile.yml'
    meta.parent.mkdir(parents=True)
    meta.write_text(
        'Models:\n  - Name: h6_missing\n    Config: configs/scrim/nope.py\n'
    )
    with pytest.warns(UserWarning, match=r"'h6_missing'.*nope\.py"):
        assert register_scrim_models(str(meta)) == ['h6_missing']
    assert list_models('h6_') == ['h6_missing']
    with pytest.raises(FileNotFoundError, match='not_there.yml'):
        register_scrim_models(str(tmp_path / 'not_there.yml'))


def test_mmpretrain_inferencer_with_config(demo_run):
    inferencer = ImageClassificationInferencer(
        model=demo_run['config'],
        pretrained=demo_run['checkpoint'],
        device='cpu',
    )
    images = demo_run['test_images'][:3]
    results = inferencer(images, batch_size=2)
    assert len(results) == 3
    for result in results:
        assert result['pred_scores'].shape == (4,)
        assert np.isclose(result['pred_scores'].sum(), 1.0, atol=1e-4)
        assert (
            result['pred_class'] == demo_run['classes'][result['pred_label']]
        )
    # The classes come from the checkpoint: the 4 demo names, not CUB's 200.
    assert list(inferencer.classes) == demo_run['classes']


def test_get_model_by_config_and_by_name(demo_run):
    by_path = get_model(demo_run['config'], pretrained=demo_run['checkpoint'])
    by_name = get_model('scrim_r18_demo', pretrained=demo_run['checkpoint'])
    for model in (by_path, by_name):
        assert list(model._dataset_meta['classes']) == demo_run['classes']
        assert not model.training
    x = torch.rand(2, 3, 96, 96) * 255
    with torch.no_grad():
        a = by_path(by_path.data_preprocessor({'inputs': x})['inputs'])
        b = by_name(by_name.data_preprocessor({'inputs': x})['inputs'])
    assert a.shape == (2, 4)
    torch.testing.assert_close(a, b)


def test_get_scrim_model_classes_without_checkpoint_meta(demo_run, tmp_path):
    ckpt = torch.load(
        demo_run['checkpoint'], map_location='cpu', weights_only=False
    )
    bare = str(tmp_path / 'bare.pth')
    torch.save(ckpt['state_dict'], bare)
    # mmpretrain falls back to the dataset class's full list ...
    assert (
        len(
            get_model(demo_run['config'], pretrained=bare)._dataset_meta[
                'classes'
            ]
        )
        == 200
    )
    # ... get_scrim_model to the classes the config gives.
    model = get_scrim_model(demo_run['config'], pretrained=bare)
    assert model._dataset_meta['classes'] == demo_run['classes']
    state = model.state_dict()
    for key, value in ckpt['state_dict'].items():
        torch.testing.assert_close(state[key], value)


def test_config_classes_from_file(tmp_path):
    names = tmp_path / 'names.txt'
    names.write_text('a\nb\n\nc\n')
    cfg = Config(
        dict(
            test_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset',
                    dataset=dict(type='CUB', classes=str(names)),
                )
            )
        )
    )
    assert config_classes(cfg) == ['a', 'b', 'c']
    cfg.test_dataloader.dataset.dataset.classes = str(tmp_path / 'x.txt')
    with pytest.raises(FileNotFoundError, match='x.txt'):
        config_classes(cfg)
    assert (
        config_classes(
            Config(dict(test_dataloader=dict(dataset=dict(type='CUB'))))
        )
        is None
    )


def test_scrim_inferencer_results(demo_run, tmp_path):
    inferencer = SCRIMInferencer(
        demo_run['config'], pretrained=demo_run['checkpoint'], device='cpu'
    )
    images = demo_run['test_images'][:2]
    results = inferencer(images, batch_size=2, topk=3)
    assert len(results) == 2
    for path, result in zip(images, results):
        assert result['img_path'] == path
        scores = [t['score'] for t in result['topk']]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        best = result['topk'][0]
        assert best['label'] == result['pred_label']
        assert best['class'] == demo_run['classes'][best['label']]
        assert np.isclose(best['score'], result['pred_score'])
        # K = 2 test regions per stage, both stages, in original pixels
        # (the 64 px image was resized to the 96 px input).
        regions = result['regions']
        assert [r['stage'] for r in regions] == ['s3'] * 2 + ['s4'] * 2
        boxes = np.array([r['box'] for r in regions])
        assert (boxes >= 0).all() and (boxes <= 64).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
    # Array inputs (BGR, as mmcv loads them) give the same prediction.
    import mmcv

    again = inferencer([mmcv.imread(images[0])], topk=1)[0]
    assert again['pred_label'] == results[0]['pred_label']
    assert 'img_path' not in again
    with pytest.raises(ValueError, match='topk=0'):
        inferencer(images[:1], topk=0)
