# Copyright (c) scrim-mm contributors. All rights reserved.
"""Put this repository's root first on ``sys.path``; every tool imports it.

A tool started as ``python tools/<...>/<tool>.py`` has its own folder on
``sys.path``, not the repository root, so ``import scrim_mm`` (and
``custom_imports=['scrim_mm']`` in the configs) would fail in a clone that
is not installed, or find another installed copy. Each tool's first import
is ``import _bootstrap``; the tools of ``tools/analysis`` and ``tools/misc``
reach this file through the ``_bootstrap.py`` of their own folder. Importing
it again, or with the root already on the path, changes nothing.
"""

import os.path as osp
import sys

#: The repository root: the folder above ``tools/``.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
