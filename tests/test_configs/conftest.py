# Copyright (c) scrim-mm contributors. All rights reserved.
"""Fixtures of the config tests: small demo data sets in every layout."""

from typing import Callable, Dict

import pytest

from ._shared import DEMO, load_script

_make_demo = load_script(
    'tools/misc/make_demo_dataset.py', 'scrim_test_make_demo_dataset'
)


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory) -> Dict[str, str]:
    """Data roots of a tiny demo set in each layout (4 classes, 64 px)."""
    root = tmp_path_factory.mktemp('demo_data')
    return {
        layout: _make_demo.make_dataset(layout, str(root / layout), **DEMO)
        for layout in ('cub', 'cars', 'aircraft')
    }


@pytest.fixture(scope='session')
def demo_classes() -> Callable[[str], list]:
    """The class names of the demo sets, to pass as ``classes``."""

    def names(layout: str) -> list:
        return _make_demo.class_names(layout, DEMO['num_classes'])

    return names


@pytest.fixture(scope='session')
def make_demo() -> Callable[..., str]:
    """``make_dataset`` of ``tools/misc/make_demo_dataset.py``."""
    return _make_demo.make_dataset
