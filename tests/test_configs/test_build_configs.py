# Copyright (c) scrim-mm contributors. All rights reserved.
"""Every config loads, builds its model and runs a loss and a predict step.

The real architectures are kept; only what sets the compute is shrunk:
64 px inputs, batch 2, 32 px FPL crops. Nothing is downloaded: pretrained
``init_cfg`` are removed and the weights are never initialised from files.
The mixing configs run in ``test_mixing.py``.
"""

import math

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from scrim_mm.analysis.part_benchmark import plain_config

from ._shared import (
    CONFIG_DIR,
    CPL_ONLY_LOSSES,
    MIXING,
    SCRIM_CONFIG_DIR,
    SCRIM_LOSSES,
    metafile_models,
)

ALL_CONFIGS = sorted(CONFIG_DIR.rglob('*.py'))
MODEL_CONFIGS = sorted(
    p for p in SCRIM_CONFIG_DIR.glob('*.py') if p.stem not in MIXING
)
IMG = 64
BATCH = 2


def _rel(path) -> str:
    return str(path.relative_to(CONFIG_DIR))


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=_rel)
def test_config_loads(path):
    cfg = Config.fromfile(str(path))
    if path.parent == SCRIM_CONFIG_DIR:
        # A complete config: the plugin is imported and the scope set.
        assert cfg.custom_imports == dict(
            imports=['scrim_mm'], allow_failed_imports=False
        )
        assert cfg.default_scope == 'mmpretrain'
        # Fine-grained data; the mixing configs keep their recipe's.
        datasets = ('CUB', 'StanfordCars', 'FGVCAircraft')
        if path.stem in MIXING:
            datasets += ('ImageNet',)
        for loader in ('train_dataloader', 'val_dataloader'):
            assert cfg[loader].dataset.type in datasets


def _small_model_cfg(cfg: Config) -> dict:
    """The model config, unchanged but for inputs, crops and weights."""
    model = cfg.model
    model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model.backbone.init_cfg = None
    model.pop('init_cfg', None)
    if model.backbone.type == 'SwinTransformer':
        # Swin-L's 12x12 windows need 384 px; padding the small maps to
        # the window lets the same network (same weights, same window
        # size) run on a 64 px input.
        model.backbone.pad_small_map = True
    if (
        model.type == 'SCRIMClassifier'
        and model.get('fpl_head', {}) is not None
    ):
        model.setdefault('fpl_head', {})['crop_size'] = 32
    return model


def _num_classes(cfg: Config) -> int:
    """The class count of a config, the same wherever it is given."""
    model = cfg.model
    preprocessor = model.get('data_preprocessor') or cfg.get(
        'data_preprocessor'
    )
    sizes = {
        model.get('num_classes'),
        (model.get('head') or {}).get('num_classes'),
        (model.get('fpl_head') or {}).get('num_classes'),
        preprocessor.get('num_classes'),
    }
    classes = cfg.train_dataloader.dataset.get('classes')
    if classes is not None:
        sizes.add(len(classes))
    sizes.discard(None)
    assert len(sizes) == 1, f'num_classes disagree: {sizes}'
    return sizes.pop()


@pytest.mark.parametrize('path', MODEL_CONFIGS, ids=_rel)
def test_config_builds_and_runs(path):
    cfg = Config.fromfile(str(path))
    num_classes = _num_classes(cfg)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(_small_model_cfg(cfg))

    # The metafile's parameter count is that of the built model.
    meta = metafile_models()[path.stem]
    num_params = sum(p.numel() for p in model.parameters())
    assert meta['Metadata']['Parameters'] == num_params

    label = num_classes - 1
    data = dict(
        inputs=[
            torch.randint(0, 256, (3, IMG, IMG), dtype=torch.uint8)
            for _ in range(BATCH)
        ],
        data_samples=[DataSample().set_gt_label(label) for _ in range(BATCH)],
    )
    # The wiring a config gives is checked against the backbone when the
    # model is built (above); here the shapes flow through every module.
    model.train()
    batch = model.data_preprocessor(data, training=True)
    losses = model(**batch, mode='loss')
    is_scrim = cfg.model.type == 'SCRIMClassifier'
    assert set(losses) == (SCRIM_LOSSES if is_scrim else CPL_ONLY_LOSSES)
    for key, value in losses.items():
        assert math.isfinite(float(value.detach())), key

    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(data, training=False)
        preds = model(**batch, mode='predict')
    assert len(preds) == BATCH
    for pred in preds:
        assert pred.pred_score.shape == (num_classes,)
        torch.testing.assert_close(
            pred.pred_score.sum(), torch.tensor(1.0), atol=1e-4, rtol=0
        )
        if is_scrim:
            fpl = model.fpl_head
            num_boxes = fpl.num_stages * fpl.num_test_parts
            assert pred.pred_boxes.shape == (num_boxes, 4)
            assert pred.pred_boxes.min() >= 0
            assert pred.pred_boxes.max() <= IMG
        else:
            assert 'pred_boxes' not in pred


@pytest.mark.parametrize(
    'name', ['scrim_r18_demo.py', 'scrim_r18_hard-demo.py']
)
def test_from_scratch_configs_keep_part_losses_off_the_backbone(name):
    """The from-scratch settings measured by the part benchmark: the metric
    loss trains OSME only, the diversity loss at 0.2 (0.3 on stage 3 of
    the part benchmark's config); the recipes keep the method's
    defaults."""
    DefaultScope.get_instance(f'test-scratch-{name}', scope_name='mmpretrain')
    cfg = Config.fromfile(str(SCRIM_CONFIG_DIR / name))
    model = MODELS.build(cfg.model)
    assert model.neck.metric_loss_trains_backbone is False
    assert model.neck.diversity_loss_trains_backbone == (True, True)
    weights = [
        model.head.diversity_module.loss_weight * w
        for w in model.head.diversity_weights
    ]
    expected = [0.3, 0.2] if 'hard' in name else [0.2, 0.2]
    assert weights == pytest.approx(expected)
    assert model.fpl_head.crops_train_backbone is False
    assert model.fpl_head.rank_cap_at_chance is True
    recipe = Config.fromfile(str(SCRIM_CONFIG_DIR / 'scrim_r50_cub.py'))
    assert 'metric_loss_trains_backbone' not in recipe.model.get('neck', {})
    assert 'rank_cap_at_chance' not in recipe.model.get('fpl_head', {})
    recipe_model = MODELS.build(recipe.model)
    assert recipe_model.fpl_head.rank_cap_at_chance is False
    assert recipe_model.head.diversity_weights == (1.0, 1.0)
    assert recipe_model.neck.diversity_loss_trains_backbone == (True, True)


def test_hard_demo_navigators_learn_at_a_third_of_the_rate():
    """The part benchmark's config trains the navigators at 0.3x the
    learning rate and every other parameter at the full rate; its plain
    twin, which has no navigator, keeps one rate for all."""
    DefaultScope.get_instance('test-hard-nav-lr', scope_name='mmpretrain')
    cfg = Config.fromfile(str(SCRIM_CONFIG_DIR / 'scrim_r18_hard-demo.py'))
    base_lr = cfg.optim_wrapper.optimizer.lr
    for config, expect_navigators in ((cfg, True), (plain_config(cfg), False)):
        model = MODELS.build(config.model)
        wrapper = build_optim_wrapper(model, config.optim_wrapper)
        lr_of = {
            id(p): group['lr']
            for group in wrapper.optimizer.param_groups
            for p in group['params']
        }
        navigators = 0
        for name, param in model.named_parameters():
            if name.startswith('fpl_head.navigators.'):
                navigators += 1
                assert lr_of[id(param)] == pytest.approx(0.3 * base_lr), name
            else:
                assert lr_of[id(param)] == pytest.approx(base_lr), name
        assert (navigators > 0) is expect_navigators


def test_hard_demo_anchors_fit_a_128px_image():
    """The part benchmark's regions: stage 3 of 30-76 px, stage 4 of
    40-51 px (square root of the box area), none as large as the image."""
    DefaultScope.get_instance('test-hard-anchors', scope_name='mmpretrain')
    cfg = Config.fromfile(str(SCRIM_CONFIG_DIR / 'scrim_r18_hard-demo.py'))
    head = MODELS.build(cfg.model).fpl_head
    for stage, (low, high) in enumerate(((30, 76), (40, 51))):
        anchors = head.get_anchors(stage, (128, 128), torch.device('cpu'))
        sides = (
            (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
        ).sqrt()
        assert sides.min() == pytest.approx(low, abs=1)
        assert sides.max() == pytest.approx(high, abs=1)
