# Copyright (c) scrim-mm contributors. All rights reserved.
"""Run every README code block marked to run on the CPU.

A ```bash block directly below a line ``<!-- runs-on-cpu -->`` is run with
bash, in README order, in one fresh copy of the repository (the files
``git ls-files`` lists, tracked and untracked-but-not-ignored, copied with
their times; ``.venv`` linked, not copied), so that a block may use what an
earlier one made, as a reader following the README would. ``python`` is the
interpreter running the tests (its folder comes first on ``PATH``). Each
block must exit with 0. No marked block at all is a failure, never a skip.
"""

import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = '<!-- runs-on-cpu -->'
# The marker line, then (only) the opening fence of a bash block.
_BLOCK = re.compile(
    r'^' + re.escape(MARKER) + r'[ \t]*\n```bash[ \t]*\n(.*?)^```[ \t]*$',
    re.MULTILINE | re.DOTALL,
)
# Wall-clock limit of one block; the marked blocks are meant to be quick.
BLOCK_TIMEOUT = 300


def marked_blocks(text: str) -> List[Tuple[int, str]]:
    """The marked bash blocks of a Markdown text.

    Args:
        text (str): The Markdown.

    Returns:
        list[tuple[int, str]]: (line number of the marker, code) in order.

    Raises:
        ValueError: A marker is not directly followed by a ```bash fence.
    """
    blocks = [
        (text.count('\n', 0, m.start()) + 1, m.group(1))
        for m in _BLOCK.finditer(text)
    ]
    markers = [
        text.count('\n', 0, m.start()) + 1
        for m in re.finditer(re.escape(MARKER), text)
    ]
    stray = sorted(set(markers) - {line for line, _ in blocks})
    if stray:
        raise ValueError(
            f'README.md lines {stray}: {MARKER} must be the line directly '
            'above a ```bash fence.'
        )
    return blocks


def _repo_files() -> List[str]:
    out = subprocess.run(
        [
            'git',
            'ls-files',
            '--cached',
            '--others',
            '--exclude-standard',
            '-z',
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [f for f in out.split('\0') if f]


def copy_repository(dest: Path) -> Path:
    """Copy the repository's files (as ``git ls-files`` sees them).

    Args:
        dest (Path): An empty or missing folder.

    Returns:
        Path: ``dest``.
    """
    for rel in _repo_files():
        src = REPO / rel
        if not src.is_file():  # deleted in the work tree, or a submodule
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    venv = REPO / '.venv'
    if venv.is_dir() and not (dest / '.venv').exists():
        os.symlink(venv, dest / '.venv')
    return dest


README_BLOCKS = marked_blocks((REPO / 'README.md').read_text('utf-8'))


def test_marker_parsing():
    text = (
        'a\n' + MARKER + '\n```bash\necho 1\n```\n'
        '```bash\necho not marked\n```\n'
        + MARKER
        + '\n```bash\necho 2\necho 3\n```\n'
    )
    assert marked_blocks(text) == [(2, 'echo 1\n'), (9, 'echo 2\necho 3\n')]
    with pytest.raises(ValueError, match='lines \\[1\\]'):
        marked_blocks(MARKER + '\n\n```bash\necho x\n```\n')
    with pytest.raises(ValueError, match='directly'):
        marked_blocks(MARKER + '\n```python\nprint(1)\n```\n')


def test_readme_has_marked_blocks():
    assert README_BLOCKS, f'README.md has no block marked {MARKER}.'


@pytest.fixture(scope='module')
def workspace(tmp_path_factory) -> Path:
    """One fresh copy of the repository for all blocks, in order."""
    return copy_repository(tmp_path_factory.mktemp('readme') / 'repo')


@pytest.mark.parametrize(
    'line, code', README_BLOCKS, ids=[f'line{n}' for n, _ in README_BLOCKS]
)
def test_readme_block(workspace, line, code):
    env = dict(os.environ)
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(
        ['bash', '-euo', 'pipefail', '-c', code],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert proc.returncode == 0, (
        f'README.md block at line {line} exited with {proc.returncode}:\n'
        f'{code}\n--- stdout ---\n{proc.stdout[-3000:]}\n'
        f'--- stderr ---\n{proc.stderr[-3000:]}'
    )
