# Copyright (c) scrim-mm contributors. All rights reserved.
"""``scrim_mm.evaluation`` must not depend on ``scrim_mm.visualization``.

Shared helpers (e.g. the box mapping) live in a neutral package such as
``scrim_mm.structures``; the evaluation code imports them from there.
"""

import ast
import os
import os.path as osp
from typing import List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EVALUATION = osp.join(REPO, 'scrim_mm', 'evaluation')
FORBIDDEN = 'scrim_mm.visualization'


def _module_package(path: str) -> str:
    """The dotted package a source file belongs to (for relative imports).

    Args:
        path (str): A ``.py`` file under the repository.

    Returns:
        str: e.g. ``'scrim_mm.evaluation.metrics'`` for
        ``scrim_mm/evaluation/metrics/part_hit_rate.py`` (and for that
        folder's ``__init__.py``).
    """
    rel = osp.relpath(osp.dirname(path), REPO)
    return '.'.join(rel.split(os.sep))


def _resolve(package: str, module: Optional[str], level: int) -> str:
    """The absolute name of ``from <'.' * level><module> import ...``.

    Args:
        package (str): The importing file's package.
        module (str, optional): The module after the dots, if any.
        level (int): The number of leading dots (0: absolute import).

    Returns:
        str: The absolute module name.
    """
    if level == 0:
        return module or ''
    parts = package.split('.')
    base = parts[: len(parts) - (level - 1)]
    return '.'.join(base + ([module] if module else []))


def _imported_modules(path: str) -> List[Tuple[int, str, str]]:
    """Every module a file imports, with its line and source text.

    ``from X import a, b`` counts as importing ``X``, ``X.a`` and ``X.b``
    (``a`` may be a submodule, e.g. ``from .. import visualization``).

    Args:
        path (str): A ``.py`` file.

    Returns:
        list[tuple[int, str, str]]: (line, absolute module name, the import
        statement's source).
    """
    with open(path, encoding='utf-8') as f:
        source = f.read()
    tree = ast.parse(source, filename=path)
    package = _module_package(path)
    found = []
    for node in ast.walk(tree):
        text = ast.get_source_segment(source, node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name, text))
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(package, node.module, node.level)
            found.append((node.lineno, module, text))
            for alias in node.names:
                found.append((node.lineno, f'{module}.{alias.name}', text))
    return found


def _is_forbidden(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + '.')


def test_resolve_relative_imports():
    pkg = 'scrim_mm.evaluation.metrics'
    assert _resolve(pkg, 'visualization', 3) == 'scrim_mm.visualization'
    assert _resolve(pkg, 'functional', 2) == 'scrim_mm.evaluation.functional'
    assert _resolve(pkg, None, 3) == 'scrim_mm'
    assert _resolve(pkg, 'part_hit_rate', 1) == f'{pkg}.part_hit_rate'
    assert _resolve(pkg, 'torch', 0) == 'torch'
    assert _is_forbidden(_resolve(pkg, None, 3) + '.visualization')
    assert not _is_forbidden('scrim_mm.visualizations')


def test_evaluation_does_not_import_visualization():
    files = []
    for root, _, names in os.walk(EVALUATION):
        files += [osp.join(root, n) for n in names if n.endswith('.py')]
    assert files, f'no Python files found under {EVALUATION}'
    offending = []
    for path in sorted(files):
        seen = set()
        for line, module, text in _imported_modules(path):
            if _is_forbidden(module) and (line, text) not in seen:
                seen.add((line, text))
                offending.append(
                    f'{osp.relpath(path, REPO)}:{line}: {text!r} imports '
                    f'{module}'
                )
    assert not offending, (
        'scrim_mm.evaluation must not import from scrim_mm.visualization '
        '(import shared helpers such as the box mapping from '
        'scrim_mm.structures):\n' + '\n'.join(offending)
    )
