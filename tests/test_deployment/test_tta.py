# Copyright (c) scrim-mm contributors. All rights reserved.
"""tools/test.py --tta and SCRIMAverageClsScoreTTA."""

import copy
import glob
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from scrim_mm.utils import default_tta_pipeline, use_tta
from tests.test_apis.demo_run import CONFIG, REPO, load_script

test_tool = load_script('tools/test.py', 'scrim_test_tta')


def test_tool_tta_one_prediction_per_image(demo_run, tmp_path):
    out = tmp_path / 'pred.pkl'
    metrics = test_tool.main(
        [
            CONFIG,
            demo_run['checkpoint'],
            '--tta',
            '--work-dir',
            str(tmp_path / 'work'),
            '--out',
            str(out),
            '--show-dir',
            str(tmp_path / 'vis'),
            '--cfg-options',
            f'test_dataloader.dataset.data_root={demo_run["data_root"]}',
        ]
    )
    assert 'accuracy/top1' in metrics
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == demo_run['num_test']
    assert sorted(p['img_path'] for p in preds) == sorted(
        demo_run['test_images']
    )
    for pred in preds:
        # Regions and metainfo of the un-flipped view; label of the mean.
        assert pred['flip'] is False
        assert pred['pred_boxes'].shape == (4, 4)
        assert int(pred['pred_label']) == int(pred['pred_score'].argmax())
    # --show-dir draws the merged prediction of every test image.
    assert len(glob.glob(str(tmp_path / 'vis' / '*.png'))) == len(preds)


def _sample(flip: bool, score, box: float) -> DataSample:
    sample = DataSample(metainfo=dict(flip=flip, img_shape=(8, 8)))
    sample.set_pred_score(torch.tensor(score))
    sample.set_pred_label(torch.tensor([0]))
    sample.set_field(torch.full((2, 4), box), 'pred_boxes')
    return sample


def test_merge_keeps_the_unflipped_view():
    tta = MODELS.build(
        dict(
            type='SCRIMAverageClsScoreTTA',
            module=dict(
                type='ImageClassifier',
                backbone=dict(type='ResNet', depth=18),
                head=dict(type='LinearClsHead', num_classes=3, in_channels=1),
            ),
        )
    )
    flipped = _sample(True, [0.6, 0.1, 0.3], 1.0)
    plain = _sample(False, [0.0, 0.5, 0.5], 2.0)
    (merged,) = tta.merge_preds([[flipped, plain]])
    torch.testing.assert_close(
        merged.pred_score, torch.tensor([0.3, 0.3, 0.4])
    )
    assert merged.pred_label.tolist() == [2]  # not view 0's label
    assert merged.flip is False
    assert torch.equal(merged.pred_boxes, plain.pred_boxes)


def test_use_tta_defaults_for_a_config_without_them():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(64, 64)),
        dict(type='PackInputs'),
    ]
    cfg = Config(
        dict(
            model=dict(type='ImageClassifier'),
            test_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset',
                    dataset=dict(type='CUB', pipeline=pipeline),
                    times=1,
                )
            ),
        )
    )
    use_tta(cfg)
    assert cfg.model.type == 'SCRIMAverageClsScoreTTA'
    assert cfg.model.module.type == 'ImageClassifier'
    tta = cfg.test_dataloader.dataset.dataset.pipeline
    assert tta[0]['type'] == 'SCRIMLoadImageFromFile'
    flips = tta[-1]['transforms'][0]
    assert [f['prob'] for f in flips] == [0.0, 1.0]
    assert tta[1:] == default_tta_pipeline(pipeline)[1:]
    with pytest.raises(ValueError, match='test pipeline is empty'):
        default_tta_pipeline([])


@pytest.mark.parametrize(
    'name',
    sorted(
        osp.basename(p)
        for p in glob.glob(str(REPO / 'configs' / 'scrim' / 'scrim_*.py'))
    ),
)
def test_scrim_configs_define_tta(name):
    cfg = Config.fromfile(str(REPO / 'configs' / 'scrim' / name))
    if 'tta_model' not in cfg:
        # The few-line mixing configs rely on --tta's defaults.
        assert name.endswith(('_in1k.py', '_cub.py', '_cub-384px.py'))
        test = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
        use_tta(cfg)
        assert cfg.model.type == 'SCRIMAverageClsScoreTTA'
        assert cfg.tta_pipeline == default_tta_pipeline(test)
        return
    assert cfg.tta_model.type == 'SCRIMAverageClsScoreTTA'
    tta = cfg.tta_pipeline[-1]
    assert tta['type'] == 'TestTimeAug'
    trains_flipped = any(
        t['type'] == 'RandomFlip'
        for t in cfg.train_dataloader.dataset.pipeline
    )
    if trains_flipped:
        assert [f['prob'] for f in tta['transforms'][0]] == [0.0, 1.0]
    else:
        # A set whose classes are mirror images (the hard demo's diagonal
        # marks) must not average a flipped view into the score.
        assert all(
            f['type'] != 'RandomFlip' for f in tta['transforms'][0]
        ), name
    # The views see what the test pipeline gives, minus its PackInputs.
    test = cfg.test_dataloader.dataset.pipeline
    assert cfg.tta_pipeline[:-1] == test[:-1]
