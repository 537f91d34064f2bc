# Copyright (c) scrim-mm contributors. All rights reserved.
"""SCRIM mixes into mmpretrain's own configs in a few lines.

Each mixing config (``MIXING``) inherits one of mmpretrain's configs and
turns its model into a full SCRIM (CPL + FPL + fusion) in at most five
lines beyond ``_base_``, ``custom_imports`` and the two lines that take
SCRIM's batch sampler and clipping from the runtime base
(``configs/_base_/scrim_runtime.py``); the wiring follows the backbone.
Every config that mixes SCRIM into one of mmpretrain's (``MIXED_INTO``)
has that base. Each builds with its real architecture and runs one loss step
and one predict step on small random inputs: 64 px, batch 2, 32 px crops.
Swin-L is built for real (about 2 s) and run with batch 1 at 32 px (the
smallest input its stage strides allow) and one region per FPL stage:
its 12x12 windows make even small maps costly on a CPU.

Two configs also train for one epoch (two iterations) and validate
through ``tools/train.py`` on demo CUB data, with ``--cfg-options`` only
(a ResNet-18 in place of the ResNet-50): the plain ``ImageClassifier``
with SCRIM's coarse parts, and the full SCRIM.
"""

import ast
import json
import math
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ._shared import (
    CONFIG_DIR,
    CPL_ONLY_LOSSES,
    MIXED_INTO,
    MIXING,
    RUNTIME_BASE,
    RUNTIME_LINES,
    SCRIM_CONFIG_DIR,
    SCRIM_LOSSES,
    config_bases,
    load_script,
    metafile_models,
)

train_tool = load_script('tools/train.py', 'scrim_test_train_tool_mixing')

MAX_BODY_LINES = 5
# stem -> input size, batch size and regions per stage (M, K) of the small
# run; the others run at 64 px, batch 2, with the class defaults (M = 4,
# K = 2).
SMALL = {'scrim_swin-large_8xb8_cub-384px': (32, 1, 1, 1)}
# The FPL regions in the fusion of the configs' models: S = 2 stages x
# K = 2 regions (FPLHead's default num_test_parts).
FUSED_REGIONS = 2 * 2


def body_lines(path) -> list:
    """The code lines of a config beyond ``_base_``, ``custom_imports`` and
    the two lines of the runtime base.

    Comments and blank lines do not count; a statement counts with all its
    lines.

    Args:
        path (Path): The config file.

    Returns:
        list[str]: The lines.
    """
    text = path.read_text(encoding='utf-8')
    lines = text.splitlines()
    skipped = set()
    for node in ast.parse(text).body:
        targets = getattr(node, 'targets', [])
        names = {getattr(t, 'id', None) for t in targets}
        if names & {'_base_', 'custom_imports'}:
            skipped.update(range(node.lineno, node.end_lineno + 1))
    return [
        line
        for number, line in enumerate(lines, start=1)
        if number not in skipped
        and line.strip()
        and not line.strip().startswith('#')
        and line not in RUNTIME_LINES
    ]


def _literal(path, name: str):
    """The value a config file assigns to ``name``: literals and dict()."""
    for node in ast.parse(path.read_text(encoding='utf-8')).body:
        targets = getattr(node, 'targets', [])
        if name in {getattr(t, 'id', None) for t in targets}:
            code = compile(ast.Expression(node.value), str(path), 'eval')
            return eval(code, {'__builtins__': {}, 'dict': dict})
    raise KeyError(name)


@pytest.mark.parametrize('stem', sorted(MIXING))
def test_mixing_config_is_a_few_lines(stem, tmp_path):
    path = SCRIM_CONFIG_DIR / f'{stem}.py'
    body = body_lines(path)
    assert 0 < len(body) <= MAX_BODY_LINES, body
    assert all(line.startswith(('model', ' ')) for line in body), body
    assert config_bases(path) == [MIXING[stem], RUNTIME_BASE]
    assert _literal(path, 'custom_imports') == dict(
        imports=['scrim_mm'], allow_failed_imports=False
    )
    cfg = Config.fromfile(str(path))
    assert cfg.model.type == 'SCRIMClassifier'
    # The data and the schedule are mmpretrain's, but for the batch
    # sampler, the constructor and the clipping of the runtime base.
    base_path = tmp_path / 'base.py'
    base_path.write_text(f'_base_ = [{MIXING[stem]!r}]\n', encoding='utf-8')
    base = Config.fromfile(str(base_path))
    loader = cfg.train_dataloader.to_dict()
    assert loader.pop('batch_sampler') == cfg.scrim_batch_sampler
    assert loader == base.train_dataloader.to_dict()
    optim = cfg.optim_wrapper.to_dict()
    assert optim.pop('constructor') == 'SCRIMOptimWrapperConstructor'
    # mmengine's merge drops _delete_ where the recipe had a clip_grad.
    clip = optim.pop('clip_grad')
    assert clip in (dict(max_norm=5.0), dict(_delete_=True, max_norm=5.0))
    base_optim = base.optim_wrapper.to_dict()
    base_optim.pop('clip_grad', None)
    assert optim == base_optim


def _mixes_into_mmpretrain(path) -> bool:
    """Whether a config inherits one of mmpretrain's model configs."""
    return any(
        base.startswith('mmpretrain::') and '_base_/' not in base
        for base in config_bases(path)
    )


def test_every_mixing_config_is_known():
    found = {
        path.stem
        for path in SCRIM_CONFIG_DIR.glob('*.py')
        if _mixes_into_mmpretrain(path)
    }
    assert found == set(MIXED_INTO)


@pytest.mark.parametrize('stem', sorted(MIXED_INTO))
def test_mixing_config_has_the_runtime_base(stem):
    path = SCRIM_CONFIG_DIR / f'{stem}.py'
    assert config_bases(path) == [MIXED_INTO[stem], RUNTIME_BASE]
    lines = path.read_text(encoding='utf-8').splitlines()
    assert all(line in lines for line in RUNTIME_LINES)
    cfg = Config.fromfile(str(path))
    runtime = Config.fromfile(str(CONFIG_DIR / '_base_' / 'scrim_runtime.py'))
    batch_sampler = cfg.train_dataloader.batch_sampler
    assert batch_sampler.type == 'SCRIMClassBalancedBatchSampler'
    assert batch_sampler == runtime.scrim_batch_sampler
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
    # P = batch_size // K classes per batch.
    k = batch_sampler.num_samples_per_class
    assert cfg.train_dataloader.batch_size % k == 0
    optim = cfg.optim_wrapper
    assert optim.constructor == 'SCRIMOptimWrapperConstructor'
    # The recipe's own clipping (none, None or a global one) is replaced.
    clip = {key: v for key, v in optim.clip_grad.items() if key != '_delete_'}
    assert clip == dict(max_norm=5.0)


@pytest.mark.parametrize('stem', sorted(MIXING))
def test_mixing_config_builds_and_runs(stem):
    cfg = Config.fromfile(str(SCRIM_CONFIG_DIR / f'{stem}.py'))
    size, batch, train_parts, test_parts = SMALL.get(stem, (64, 2, 4, 2))
    model_cfg = cfg.model
    # The Runner gives the model the top-level data preprocessor.
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model_cfg.backbone.init_cfg = None
    # Crops of half the input (the default), fewer regions only where
    # SMALL says so.
    if stem in SMALL:
        model_cfg.fpl_head = dict(
            num_train_parts=train_parts, num_test_parts=test_parts
        )
    if model_cfg.backbone.type == 'SwinTransformer':
        # Windows larger than the small maps: pad them (same weights).
        model_cfg.backbone.pad_small_map = True
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    num_classes = model.head.num_classes
    fpl = model.fpl_head
    assert (fpl.num_train_parts, fpl.num_test_parts) == (
        train_parts,
        test_parts,
    )
    assert fpl.crop_size is None
    # The fusion takes the global feature, the P coarse parts of every
    # stage and the K regions of each of the S stages.
    head = model.head
    assert head.num_fpl_parts == fpl.num_stages * test_parts
    assert head.fc.in_features == (
        head.in_channels
        + head.num_parts * sum(head.part_channels)
        + head.num_fpl_parts * head.fpl_channels
    )
    # One teacher per stage on the fpl_channels image feature.
    assert len(fpl.teacher_fcs) == fpl.num_stages
    assert all(t.in_features == head.fpl_channels for t in fpl.teacher_fcs)
    # The metafile's parameter count is that of the config's model: the
    # crop size has no parameters, and each region fewer than the
    # FUSED_REGIONS of the defaults takes fpl_channels x num_classes
    # weights off the fused classifier.
    meta = metafile_models()[stem]['Metadata']['Parameters']
    fewer = FUSED_REGIONS - head.num_fpl_parts
    num_params = sum(p.numel() for p in model.parameters())
    assert num_params + fewer * head.fpl_channels * num_classes == meta
    assert num_classes == cfg.data_preprocessor.num_classes

    data = dict(
        inputs=[
            torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
            for _ in range(batch)
        ],
        data_samples=[
            DataSample().set_gt_label(i % num_classes) for i in range(batch)
        ],
    )
    model.train()
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    assert set(losses) == SCRIM_LOSSES
    for key, value in losses.items():
        assert math.isfinite(float(value.detach())), key

    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(data, False), mode='predict')
    assert len(preds) == batch
    for pred in preds:
        assert pred.pred_score.shape == (num_classes,)
        assert pred.pred_boxes.shape == (2 * test_parts, 4)


# config stem -> (model overrides, expected loss keys)
TRAINED = {
    'cpl_resnet50_8xb8_cub': (
        [
            'model.backbone.depth=18',
            'model.neck.in_channels=[256,512]',
            'model.neck.embed_dims=64',
            'model.head.part_channels=[256,512]',
        ],
        CPL_ONLY_LOSSES,
    ),
    'scrim_resnet50_8xb8_cub': (
        [
            'model.backbone.depth=18',
            'model.neck.embed_dims=64',
            'model.fpl_head.crop_size=32',
            'model.fpl_head.num_train_parts=2',
            'model.fpl_head.num_test_parts=1',
            # ResNet-50's 2048 channels of the recipe's linear head.
            'model.head.in_channels=512',
        ],
        SCRIM_LOSSES,
    ),
}


def _data_options(cfg: Config, data_root: str, classes: list) -> list:
    """Options that point the CUB loaders at small demo data."""
    names = '[' + ','.join(classes) + ']'
    options = []
    for loader in ('train_dataloader', 'val_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        # The option indices below address these two steps.
        assert pipeline[1].type == 'Resize'
        assert pipeline[2].type in ('RandomCrop', 'CenterCrop')
        options += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.classes={names}',
            f'{loader}.dataset.pipeline.1.scale=80',
            f'{loader}.dataset.pipeline.2.crop_size=64',
            f'{loader}.num_workers=0',
        ]
    return options


def _read_scalars(work_dir) -> list:
    (path,) = work_dir.glob('*/vis_data/scalars.json')
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize('name', sorted(TRAINED))
def test_mixing_config_trains(name, tmp_path, demo_data, demo_classes):
    overrides, loss_keys = TRAINED[name]
    config = str(SCRIM_CONFIG_DIR / f'{name}.py')
    cfg = Config.fromfile(config)
    num_classes = len(demo_classes('cub'))
    work_dir = tmp_path / 'work'
    options = _data_options(cfg, demo_data['cub'], demo_classes('cub'))
    options += overrides + [
        'model.backbone.init_cfg=None',
        f'model.head.num_classes={num_classes}',
        f'data_preprocessor.num_classes={num_classes}',
        'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.save_last=False',
        f'experiment_name={name}_{uuid.uuid4().hex}',
        'randomness.seed=0',
    ]
    train_tool.main(
        [config, '--work-dir', str(work_dir), '--cfg-options', *options]
    )

    records = _read_scalars(work_dir)
    train = [r for r in records if 'loss' in r]
    # 16 training images, batches of 8: two iterations, each logged.
    assert [r['iter'] for r in train] == [1, 2]
    for record in train:
        assert loss_keys <= set(record)
        for key in loss_keys:
            assert math.isfinite(record[key]), key
    (val,) = [r for r in records if 'accuracy/top1' in r]
    assert 0.0 <= val['accuracy/top1'] <= 100.0
