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
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

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
    """The from-scratch settings measured by the part benchmark are the
    class defaults: the metric loss trains OSME only, the diversity loss
    at 0.3 on stage 3 and 0.2 on stage 4. The demo configs and the recipe
    state none of them and build the same modules."""
    DefaultScope.get_instance(f'test-scratch-{name}', scope_name='mmpretrain')
    cfg = Config.fromfile(str(SCRIM_CONFIG_DIR / name))
    for key in ('neck', 'head', 'fpl_head'):
        # at most the type, so that --cfg-options can reach the module
        assert set(cfg.model.get(key, {})) <= {'type'}, key
    recipe = Config.fromfile(str(SCRIM_CONFIG_DIR / 'scrim_r50_cub.py'))
    assert 'diversity_weights' not in recipe.model.get('head', {})
    for config in (cfg, recipe):
        model = MODELS.build(config.model)
        weights = [
            model.head.diversity_module.loss_weight * w
            for w in model.head.diversity_weights
        ]
        assert weights == pytest.approx([0.3, 0.2])


def test_hard_demo_anchors_fit_a_128px_image():
    """The part benchmark's regions, fitted to its 128 px input: stage 3
    keeps its first anchor level (30-38 px, square root of the box area),
    stage 4 its first level shrunk to 40-51 px; no box is wider than 0.4
    of the side (times the square root of the widest ratio, 1.5)."""
    DefaultScope.get_instance('test-hard-anchors', scope_name='mmpretrain')
    cfg = Config.fromfile(str(SCRIM_CONFIG_DIR / 'scrim_r18_hard-demo.py'))
    head = MODELS.build(cfg.model).fpl_head
    limit = 0.4 * 128 * math.sqrt(1.5) + 1e-3
    for stage, (low, high) in enumerate(((30, 38), (40, 51))):
        anchors = head.get_anchors(stage, (128, 128), torch.device('cpu'))
        num = anchors.shape[0]
        assert anchors.shape == (num, 4)
        assert num >= head.num_train_parts
        widths = anchors[:, 2] - anchors[:, 0]
        heights = anchors[:, 3] - anchors[:, 1]
        assert torch.maximum(widths, heights).max() <= limit
        sides = (widths * heights).sqrt()
        assert sides.min() == pytest.approx(low, abs=1)
        assert sides.max() == pytest.approx(high, abs=1)


# (config stem, key, value) differences from the class defaults that a
# config may have because its backbone forces them. None so far.
ALLOWED_BEHAVIOUR_DIFFERENCES = set()
# Configs without FPL: the CPL-only model (mmpretrain's ImageClassifier
# with SCRIM's neck and head, or a SCRIMClassifier with fpl_head=None), a
# different model, not compared.
CPL_ONLY = {'cpl_resnet50_8xb8_cub', 'cpl_swin-large_8xb8_cub-384px'}


def _behaviour(model) -> dict:
    """The method settings of a built SCRIMClassifier (no sizes)."""
    fpl, neck, head = model.fpl_head, model.neck, model.head
    contrastive = head.contrastive_module
    settings = {
        f'fpl_head.{key}': getattr(fpl, key)
        for key in (
            'num_train_parts',
            'num_test_parts',
            'crop_size',
            'nms_iou',
            'explore',
        )
    }
    for i, cfg in enumerate(fpl.anchor_cfgs):
        for key in ('scales', 'ratios'):
            settings[f'fpl_head.anchor_cfgs[{i}].{key}'] = repr(cfg[key])
    settings.update(
        {
            'neck.num_parts': neck.num_parts,
            'head.contrastive_weights': tuple(head.contrastive_weights),
            'head.diversity_weights': tuple(head.diversity_weights),
            'head.pred_mode': head.pred_mode,
            'head.contrastive_loss.type': type(contrastive).__name__,
            'head.contrastive_loss.mode': getattr(contrastive, 'mode', None),
            'head.contrastive_loss.temperature': getattr(
                contrastive, 'temperature', None
            ),
            'channels_last': model.channels_last,
        }
    )
    return settings


def test_every_shipped_config_builds_the_same_behaviour():
    """Every shipped SCRIM config builds modules with the class defaults'
    behaviour settings (one set of defaults): only the sizes follow the
    backbone, the input and the data. The CPL-only configs (no FPL) are a
    different model and are skipped (CPL_ONLY)."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        default = _behaviour(
            MODELS.build(
                dict(
                    type='SCRIMClassifier',
                    num_classes=4,
                    backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
                )
            )
        )
    assert default['head.contrastive_loss.temperature'] == pytest.approx(0.1)
    differences, skipped = set(), set()
    for path in sorted(SCRIM_CONFIG_DIR.glob('*.py')):
        cfg = Config.fromfile(str(path))
        model_type = cfg.model.get('type', 'ImageClassifier')
        if model_type != 'SCRIMClassifier' or (
            cfg.model.get('fpl_head', {}) is None
        ):
            skipped.add(path.stem)
            continue
        model_cfg = cfg.model
        model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
        model_cfg.backbone.init_cfg = None
        model_cfg.pop('init_cfg', None)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            settings = _behaviour(MODELS.build(model_cfg))
        assert settings.keys() == default.keys()
        for key, value in settings.items():
            if value != default[key]:
                differences.add((path.stem, key, value, default[key]))
    assert skipped == CPL_ONLY
    unexpected = sorted(
        d for d in differences if d[:3] not in ALLOWED_BEHAVIOUR_DIFFERENCES
    )
    assert not unexpected, (
        '(config, key, value, default) differences from the class '
        f'defaults: {unexpected}'
    )
