# Copyright (c) scrim-mm contributors. All rights reserved.
"""Switch a test config to test-time augmentation (``tools/test.py --tta``)."""

import copy
from typing import List

from mmengine.config import Config, ConfigDict

from .config_check import dataset_levels
from .run_config import use_scrim_image_loader

__all__ = ['default_tta_pipeline', 'use_tta']

#: The TTA model used when a config has no ``tta_model``.
DEFAULT_TTA_MODEL = dict(type='SCRIMAverageClsScoreTTA')


def default_tta_pipeline(test_pipeline: List[dict]) -> List[dict]:
    """The test pipeline with two views: as it is, and flipped.

    The last transform (``PackInputs``) runs on every view; the un-flipped
    view comes first.

    Args:
        test_pipeline (list[dict]): The test pipeline, ending with
            ``PackInputs``.

    Returns:
        list[dict]: The TTA pipeline.
    """
    pipeline = copy.deepcopy(list(test_pipeline))
    if not pipeline:
        raise ValueError('--tta: the test pipeline is empty.')
    pack = pipeline.pop()
    flips = [
        dict(type='RandomFlip', prob=0.0, direction='horizontal'),
        dict(type='RandomFlip', prob=1.0, direction='horizontal'),
    ]
    return pipeline + [dict(type='TestTimeAug', transforms=[flips, [pack]])]


def use_tta(cfg: Config) -> None:
    """Test with ``tta_model`` and ``tta_pipeline``, as mmpretrain does.

    The model becomes ``tta_model`` wrapping ``model``; the test dataset
    (the innermost one of a wrapped dataset) gets ``tta_pipeline``. A
    config without them gets :class:`SCRIMAverageClsScoreTTA` and
    :func:`default_tta_pipeline` of its test pipeline (horizontal flip).
    The SCRIM configs define both.

    Args:
        cfg (Config): The test config, changed in place. Run the start-up
            checks (``check_config``) before: they expect the bare model.
    """
    loader = cfg.get('test_dataloader') or {}
    levels = list(dataset_levels(loader.get('dataset')))
    dataset = levels[-1] if levels else {}
    if 'pipeline' not in dataset:
        raise ValueError('--tta: the config has no test_dataloader pipeline.')
    if not cfg.get('tta_model'):
        cfg.tta_model = ConfigDict(DEFAULT_TTA_MODEL)
    if not cfg.get('tta_pipeline'):
        cfg.tta_pipeline = default_tta_pipeline(dataset['pipeline'])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    dataset['pipeline'] = copy.deepcopy(cfg.tta_pipeline)
    use_scrim_image_loader(cfg)
