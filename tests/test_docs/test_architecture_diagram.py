# Copyright (c) scrim-mm contributors. All rights reserved.
"""The architecture diagram names every loss of the model, and no other.

``docs/design.md`` and ``README.md`` carry the same Mermaid flowchart of
SCRIM. Its loss keys are written with ``<stage>`` for the stage name, as
``#lt;stage#gt;`` in the source: Mermaid reads a raw ``<stage>`` as an HTML
tag and drops it. The demo config's model, at 64 px, runs one loss step on
a batch of its sampler's size; every key it returns, with the stage name
replaced by ``<stage>``, must be in both diagrams, and every loss key of the
diagrams must be one of them.
"""

import difflib
import re
from pathlib import Path
from typing import Iterable, Set

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'scrim' / 'scrim_r18_demo.py'
DOCS = ('docs/design.md', 'README.md')
IMG = 64
PLACEHOLDER = '<stage>'
_MERMAID = re.compile(
    r'^```mermaid[ \t]*\n(.*?)^```[ \t]*$', re.MULTILINE | re.DOTALL
)
# Mermaid's entity codes and the HTML ones for the angle brackets.
_ENTITIES = (
    ('#lt;', '<'),
    ('#gt;', '>'),
    ('#60;', '<'),
    ('#62;', '>'),
    ('&lt;', '<'),
    ('&gt;', '>'),
)
_LOSS_KEY = re.compile(r'\bloss_\w+(?:' + re.escape(PLACEHOLDER) + ')?')


def mermaid_block(rel_path: str) -> str:
    """The one Mermaid block of a Markdown file of the repository.

    Args:
        rel_path (str): The file, relative to the repository root.

    Returns:
        str: The source of the block, as written.
    """
    blocks = _MERMAID.findall((REPO / rel_path).read_text(encoding='utf-8'))
    assert len(blocks) == 1, (
        f'{rel_path}: {len(blocks)} ```mermaid blocks, expected one (the '
        'architecture diagram)'
    )
    return blocks[0]


def diagram_keys(block: str) -> Set[str]:
    """The loss keys a Mermaid block names, its entity codes decoded.

    Args:
        block (str): The source of the block.

    Returns:
        set[str]: Keys such as ``loss_fused`` and ``loss_rank_<stage>``.
    """
    for code, char in _ENTITIES:
        block = block.replace(code, char)
    return set(_LOSS_KEY.findall(block))


def generalise(key: str, stage_names: Iterable[str]) -> str:
    """A loss key with its stage name replaced by ``<stage>``.

    Args:
        key (str): A key of the loss dict, e.g. ``loss_rank_s4``.
        stage_names (Iterable[str]): The stage names of the model.

    Returns:
        str: E.g. ``loss_rank_<stage>``; keys without a stage unchanged.
    """
    for name in sorted(stage_names, key=len, reverse=True):
        if key.endswith(f'_{name}'):
            return key[: -len(name)] + PLACEHOLDER
    return key


@pytest.fixture(scope='module')
def model_keys() -> Set[str]:
    """The loss keys of the demo model, generalised over its stages."""
    cfg = Config.fromfile(str(CONFIG))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    # A batch as the P x K sampler gives it: K images of each of P classes.
    loader = cfg.train_dataloader
    per_class = loader.batch_sampler.num_samples_per_class
    labels = [i // per_class for i in range(loader.batch_size)]
    data = dict(
        inputs=[
            torch.randint(0, 256, (3, IMG, IMG), dtype=torch.uint8)
            for _ in labels
        ],
        data_samples=[DataSample().set_gt_label(label) for label in labels],
    )
    model.train()
    batch = model.data_preprocessor(data, training=True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    stage_names = {
        *model.neck.stage_names,
        *model.head.stage_names,
        *model.fpl_head.stage_names,
    }
    keys = {generalise(k, stage_names) for k in losses if 'loss' in k}
    # Guards the generalisation itself: the per-stage losses are there.
    assert any(PLACEHOLDER in k for k in keys), (stage_names, sorted(losses))
    return keys


@pytest.mark.parametrize('rel_path', DOCS)
def test_diagram_names_every_loss(model_keys, rel_path):
    missing = sorted(model_keys - diagram_keys(mermaid_block(rel_path)))
    assert not missing, (
        f'{rel_path}: the ```mermaid block lacks the loss key(s) {missing} '
        f'that model.loss() of {CONFIG.name} returns; add them as node or '
        'edge labels (<stage> written as #lt;stage#gt;)'
    )


@pytest.mark.parametrize('rel_path', DOCS)
def test_diagram_names_no_other_loss(model_keys, rel_path):
    extra = sorted(diagram_keys(mermaid_block(rel_path)) - model_keys)
    assert not extra, (
        f'{rel_path}: the ```mermaid block names the loss key(s) {extra}, '
        f'which model.loss() of {CONFIG.name} does not return (it returns '
        f'{sorted(model_keys)}); remove or rename them'
    )


@pytest.mark.parametrize('rel_path', DOCS)
def test_diagram_placeholder_is_escaped(rel_path):
    block = mermaid_block(rel_path)
    assert PLACEHOLDER not in block, (
        f'{rel_path}: a raw {PLACEHOLDER} in the ```mermaid block, which '
        'Mermaid drops as an HTML tag; write #lt;stage#gt;'
    )


def test_diagram_blocks_are_identical():
    design, readme = (mermaid_block(p) for p in DOCS)
    diff = '\n'.join(
        difflib.unified_diff(
            design.splitlines(),
            readme.splitlines(),
            DOCS[0],
            DOCS[1],
            lineterm='',
        )
    )
    assert (
        design == readme
    ), f'The ```mermaid blocks of {DOCS[0]} and {DOCS[1]} differ:\n{diff}'
