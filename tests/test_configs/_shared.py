# Copyright (c) scrim-mm contributors. All rights reserved.
"""Helpers shared by the config tests (paths, tools, small pipelines)."""

import ast
import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import List, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs'
SCRIM_CONFIG_DIR = CONFIG_DIR / 'scrim'
METAFILE = SCRIM_CONFIG_DIR / 'metafile.yml'

# Demo data written per layout: 4 classes is the P of the configs'
# class-balanced sampler (4 classes x 2 images per batch).
DEMO = dict(num_classes=4, train_per_class=4, test_per_class=2, img_size=64)
# layout of make_demo_dataset -> (mmpretrain class, dataset base config)
LAYOUTS = {
    'cub': ('CUB', 'scrim_cub_448.py'),
    'cars': ('StanfordCars', 'scrim_cars_448.py'),
    'aircraft': ('FGVCAircraft', 'scrim_aircraft_448.py'),
}
# The three recipes: config stem -> (layout, data_root, num_classes).
RECIPES = {
    'scrim_r50_cub': ('cub', 'data/CUB_200_2011', 200),
    'scrim_r50_cars': ('cars', 'data/stanfordcars', 196),
    'scrim_r50_aircraft': ('aircraft', 'data/fgvc-aircraft-2013b', 100),
}
# The mixing configs: full SCRIM in one of mmpretrain's own configs, in a
# few lines. config stem -> the mmpretrain config it inherits.
MIXING = {
    'scrim_resnet50_8xb8_cub': 'mmpretrain::resnet/resnet50_8xb8_cub.py',
    'scrim_swin-large_8xb8_cub-384px': (
        'mmpretrain::swin_transformer/swin-large_8xb8_cub-384px.py'
    ),
    'scrim_convnext-tiny_32xb128_in1k': (
        'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py'
    ),
    'scrim_swin-tiny_16xb64_in1k': (
        'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'
    ),
    'scrim_resnet18_8xb32_in1k': 'mmpretrain::resnet/resnet18_8xb32_in1k.py',
}
# The configs that put SCRIM's neck and heads onto one of mmpretrain's own
# configs (MIXING, the CPL-only ones, ConvNeXt-T on the CUB recipe); each
# takes SCRIM's training needs from the runtime base.
RUNTIME_BASE = '../_base_/scrim_runtime.py'
RUNTIME_LINES = (
    'train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)',
    'optim_wrapper = _base_.scrim_optim_wrapper',
)
MIXED_INTO = dict(
    MIXING,
    **{
        'cpl_resnet50_8xb8_cub': 'mmpretrain::resnet/resnet50_8xb8_cub.py',
        'cpl_swin-large_8xb8_cub-384px': (
            'mmpretrain::swin_transformer/swin-large_8xb8_cub-384px.py'
        ),
        'scrim_convnext-tiny_cub': 'mmpretrain::resnet/resnet50_8xb8_cub.py',
    },
)
SCRIM_LOSSES = {
    'loss_fused',
    'loss_raw',
    'loss_cpl_s3',
    'loss_cpl_s4',
    'loss_contrast_s3',
    'loss_contrast_s4',
    'loss_diversity_s3',
    'loss_diversity_s4',
    'loss_teacher_s3',
    'loss_teacher_s4',
    'loss_rank_s3',
    'loss_rank_s4',
}
CPL_ONLY_LOSSES = {
    'loss_fused',
    'loss_raw',
    'loss_cpl_s3',
    'loss_cpl_s4',
    'loss_contrast_s3',
    'loss_contrast_s4',
    'loss_diversity_s3',
    'loss_diversity_s4',
}


def load_script(rel_path: str, name: str) -> ModuleType:
    """Import a script of the repository (e.g. ``tools/train.py``).

    Args:
        rel_path (str): Path relative to the repository root.
        name (str): Module name to give it.

    Returns:
        ModuleType: The imported module.
    """
    spec = importlib.util.spec_from_file_location(name, REPO / rel_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_bases(path: Path) -> list:
    """The ``_base_`` list a config file states itself (not inherited).

    Args:
        path (Path): The config file.

    Returns:
        list[str]: Its ``_base_`` entries; empty without any.
    """
    for node in ast.parse(path.read_text(encoding='utf-8')).body:
        names = {getattr(t, 'id', None) for t in getattr(node, 'targets', [])}
        if '_base_' in names:
            bases = ast.literal_eval(node.value)
            return [bases] if isinstance(bases, str) else list(bases)
    return []


def metafile_models() -> dict:
    """The ``Models`` of ``configs/scrim/metafile.yml`` by name."""
    with open(METAFILE, encoding='utf-8') as f:
        meta = yaml.safe_load(f)
    return {m['Name']: m for m in meta['Models']}


def mmpretrain_weights(metafile: str, name: str) -> str:
    """The ``Weights`` address of a model in an mmpretrain metafile.

    Args:
        metafile (str): Path under mmpretrain's ``.mim/configs``.
        name (str): The model name.

    Returns:
        str: Its checkpoint address.
    """
    import mmpretrain

    path = Path(mmpretrain.__file__).parent / '.mim' / 'configs' / metafile
    with open(path, encoding='utf-8') as f:
        meta = yaml.safe_load(f)
    for model in meta['Models']:
        if model['Name'] == name:
            return model['Weights']
    raise KeyError(f'{name} is not in {path}')


def shrink_pipeline(
    pipeline: Sequence[dict], resize: int = 80, crop: int = 64
) -> List[dict]:
    """The same transforms with small sizes.

    Args:
        pipeline (Sequence[dict]): A data pipeline config.
        resize (int): Size for ``Resize``. Defaults to 80.
        crop (int): Size for ``RandomCrop`` / ``CenterCrop``.
            Defaults to 64.

    Returns:
        list[dict]: A copy with the sizes replaced.
    """
    out = copy.deepcopy(list(pipeline))
    for step in out:
        if step['type'] == 'Resize':
            step['scale'] = resize
        elif step['type'] in ('RandomCrop', 'CenterCrop'):
            step['crop_size'] = crop
    return out
