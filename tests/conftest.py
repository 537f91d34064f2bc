# Copyright (c) scrim-mm contributors. All rights reserved.
"""Shared test set-up.

The suite runs on small 2-core machines. One intra-op thread per test
process avoids the oversubscription that makes small convolutions many
times slower when two processes (e.g. a test and the subprocess it starts)
compete; set SCRIM_TEST_THREADS to change it.
"""

import os
import os.path as osp
import sys

import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The repository root (for scrim_mm and ``tools.<name>``), and tools/ for
# the tools' own first import, ``import _bootstrap``, when a test imports a
# tool as a module instead of running it.
for path in (osp.join(REPO_ROOT, 'tools'), REPO_ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)

import scrim_mm  # noqa: E402,F401  (registers the plugin's modules)

torch.set_num_threads(int(os.environ.get('SCRIM_TEST_THREADS', '1')))


@pytest.fixture(scope='session')
def repo_root() -> str:
    """The repository root."""
    return REPO_ROOT
