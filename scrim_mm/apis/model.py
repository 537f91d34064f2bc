# Copyright (c) scrim-mm contributors. All rights reserved.
"""Build a model for inference with the right class names."""

from typing import List, Optional, Union

import torch
from mmengine.config import Config
from mmengine.fileio import list_from_file
from mmengine.model import BaseModel
from mmpretrain.apis import get_model
from mmpretrain.registry import DATASETS

__all__ = ['config_classes', 'get_scrim_model']


def config_classes(config: Config) -> Optional[List[str]]:
    """The class names the config's test dataset is given, if any.

    Args:
        config (Config): A model config with a ``test_dataloader``.

    Returns:
        list[str] | None: ``classes`` or ``metainfo.classes`` of the test
        dataset (a file is read, one name per line); None when the config
        gives none (the dataset class's own list applies).

    Raises:
        FileNotFoundError: ``classes`` names a file that does not exist.
    """
    loader = config.get('test_dataloader') or {}
    dataset = loader.get('dataset') or {}
    # RepeatDataset / ClassBalancedDataset keep the real one in `dataset`.
    while isinstance(dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    metainfo = dataset.get('metainfo') or {}
    classes = dataset.get('classes', metainfo.get('classes'))
    if classes is None:
        return None
    if isinstance(classes, str):
        try:
            return [c for c in list_from_file(classes) if c.strip()]
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'test_dataloader.dataset.classes={classes!r}: the class '
                'name file does not exist (expected a list of names or a '
                'file with one name per line).'
            ) from err
    return [str(c) for c in classes]


def get_scrim_model(
    model: Union[str, Config],
    pretrained: Union[str, bool, None] = None,
    device: Union[str, torch.device, None] = None,
    **kwargs,
) -> BaseModel:
    """:func:`mmpretrain.apis.get_model` with the config's class names.

    mmpretrain's ``get_model`` takes the class names from the checkpoint's
    ``meta.dataset_meta`` (every checkpoint mmengine's Runner writes has
    them); without it (no checkpoint, or a bare state dict) it falls back to
    the dataset class's full list (e.g. all 200 CUB classes), even when the
    config narrows it with ``classes=``. This function then uses the
    config's classes instead.

    Args:
        model (str | Config): A model name (see
            ``mmpretrain.list_models('scrim*')``), a config file or a
            config.
        pretrained (str | bool, optional): A checkpoint path or URL; True
            for the model's published weights; None / False for none.
            Defaults to None.
        device (str | torch.device, optional): Where to put the model.
            Defaults to None (the CPU).
        **kwargs: Overrides of the model config.

    Returns:
        BaseModel: The model in eval mode, with ``_dataset_meta`` (its
        ``classes``) and ``_config`` set as mmpretrain's inferencers expect.
    """
    net = get_model(
        model, pretrained=pretrained or False, device=device, **kwargs
    )
    dataset_type = (
        net._config.get('test_dataloader', {}).get('dataset', {}).get('type')
    )
    dataset_class = DATASETS.get(dataset_type) if dataset_type else None
    fallback = getattr(dataset_class, 'METAINFO', None)
    # get_model hands over the class attribute itself when the checkpoint
    # had no dataset_meta.
    if not net._dataset_meta or net._dataset_meta is fallback:
        classes = config_classes(net._config)
        if classes is not None:
            net._dataset_meta = dict(classes=classes)
    return net
