# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import Dict

import pytest

from .demo_run import demo_run as _demo_run


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory) -> Dict:
    """A checkpoint and log of one short real training run."""
    return _demo_run(tmp_path_factory)
