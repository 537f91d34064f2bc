# Copyright (c) scrim-mm contributors. All rights reserved.
"""Make the SCRIM configs known to mmpretrain's model index by name.

``configs/scrim/metafile.yml`` lists the SCRIM configs in OpenMMLab's
model-index format, with ``Config`` paths relative to the folder that holds
``configs/``. Registering it into :class:`mmpretrain.apis.ModelHub` makes
``mmpretrain.list_models('scrim*')``, ``get_model('scrim_r50_cub', ...)``
and ``ImageClassificationInferencer('scrim_r50_cub', ...)`` work.

Where the configs are:

* in a clone (also ``pip install -e .``): ``<repo>/configs/...``, beside the
  ``scrim_mm`` package folder;
* in an installed package: ``scrim_mm/.mim/configs/...``, the place
  OpenMMLab packages (and ``mim``) ship their configs in; ``setup.py``
  copies ``configs/`` there when the package is built.
"""

import os.path as osp
import warnings
from typing import List, Optional, Tuple

from mmpretrain.apis import ModelHub

__all__ = ['find_metafile', 'register_scrim_models', 'METAFILE']

#: The metafile, relative to the folder that holds ``configs/``.
METAFILE = osp.join('configs', 'scrim', 'metafile.yml')

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def find_metafile(
    package_dir: str = _PACKAGE_DIR,
) -> Optional[Tuple[str, str]]:
    """Find the SCRIM metafile of an installed package or a clone.

    Args:
        package_dir (str): The ``scrim_mm`` package folder.
            Defaults to the one of this module.

    Returns:
        tuple[str, str] | None: ``(metafile, config_prefix)``, the folder
        its ``Config`` paths are relative to; None when there is none.
    """
    # The clone comes first: an editable install also has a (possibly
    # older) copy in .mim, written when setup.py last ran.
    for prefix in (
        osp.dirname(package_dir),  # clone / editable install
        osp.join(package_dir, '.mim'),  # installed package
    ):
        path = osp.join(prefix, METAFILE)
        if osp.isfile(path):
            return path, prefix
    return None


def register_scrim_models(
    metafile: Optional[str] = None, config_prefix: Optional[str] = None
) -> List[str]:
    """Register the models of a SCRIM metafile into mmpretrain's ModelHub.

    Idempotent: models already registered are left as they are.

    Args:
        metafile (str, optional): The metafile. Defaults to the one
            :func:`find_metafile` finds.
        config_prefix (str, optional): The folder its ``Config`` paths are
            relative to. Defaults to the one :func:`find_metafile` gives, or
            the folder of ``metafile``'s ``configs/`` when it is given.

    Returns:
        list[str]: The (lower-case) model names of the metafile; empty when
        no metafile was found (a warning says where it was looked for).

    Raises:
        ValueError: A model name of the metafile is already registered by
            another model index (e.g. one of mmpretrain's).
    """
    from modelindex.load_model_index import load

    if metafile is None:
        found = find_metafile()
        if found is None:
            warnings.warn(
                'scrim_mm: no SCRIM model index found (looked for '
                f'{osp.join(_PACKAGE_DIR, ".mim", METAFILE)} and '
                f'{osp.join(osp.dirname(_PACKAGE_DIR), METAFILE)}); '
                'mmpretrain.list_models() will not list the SCRIM configs. '
                'Use config paths instead of names.'
            )
            return []
        metafile, default_prefix = found
    else:
        if not osp.isfile(metafile):
            raise FileNotFoundError(f'SCRIM metafile {metafile} not found.')
        # .../configs/scrim/metafile.yml -> ...
        default_prefix = osp.dirname(osp.dirname(osp.dirname(metafile)))
    prefix = config_prefix if config_prefix is not None else default_prefix

    index = load(metafile)
    index.build_models_with_collections()
    names = [model.name.lower() for model in index.models]
    for model in index.models:
        config = model.config
        if config and not osp.isabs(config):
            config = osp.join(prefix, config)
        if config and not osp.isfile(config):
            warnings.warn(
                f'{metafile}: model {model.name!r} names the config '
                f'{model.config!r}, which is not at {config}.'
            )
    if names and all(ModelHub.has(name) for name in names):
        return names
    ModelHub.register_model_index(metafile, config_prefix=prefix)
    return names
