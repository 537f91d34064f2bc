# Copyright (c) scrim-mm contributors. All rights reserved.
"""The tools of this folder share ``tools/_bootstrap.py``; this runs it."""

import os.path as osp
import runpy

REPO_ROOT = runpy.run_path(
    osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '_bootstrap.py')
)['REPO_ROOT']
