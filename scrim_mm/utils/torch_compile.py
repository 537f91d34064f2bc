# Copyright (c) scrim-mm contributors. All rights reserved.
"""``--compile``: torch.compile through mmengine's ``compile`` config.

mmengine's Runner compiles the model's ``train_step`` when the config has
``compile = True`` or ``compile = dict(...)`` (the keyword arguments of
``torch.compile``). The tools add two things:

* the dynamo backend :data:`SAFE_BACKEND` (``'scrim_inductor'``): inductor,
  but a graph that inductor cannot compile (forward or backward) runs
  eagerly, with a one-line message, instead of failing the run;
* with any ``compile`` setting, a frame that dynamo itself cannot trace
  runs eagerly too (``torch._dynamo.config.suppress_errors``), its long
  report cut to one line.

SCRIM's shapes are static (fixed ``M`` and ``K``, anchors cached per input
size): dynamo captures its whole forward pass and losses, NMS and crops
included, as one graph, whose backward is compiled with it. The optimizer
wrapper's ``update_params`` (backward call, gradient clipping, optimizer
step) runs eagerly.
"""

import logging
import re
from typing import Callable, Iterable, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

__all__ = [
    'SAFE_BACKEND',
    'apply_compile',
    'compile_steps',
    'eager_fallbacks',
    'inductor_or_eager',
]

#: The name of the dynamo backend registered by this module.
SAFE_BACKEND = 'scrim_inductor'
_EAGER_FALLBACKS: List[str] = []


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0] if text else ""}'[:300]


def _note_eager(what: str, reason: str) -> None:
    """Log (once per part) and record that a part stays eager."""
    message = f'torch.compile: {what} stays eager ({reason})'
    _EAGER_FALLBACKS.append(message)
    print_log(message, logger='current', level=logging.WARNING)


def eager_fallbacks() -> List[str]:
    """The messages of the parts that stayed eager in this process.

    Returns:
        List[str]: One line per part, oldest first.
    """
    return list(_EAGER_FALLBACKS)


def inductor_or_eager(
    gm: torch.fx.GraphModule, example_inputs: list
) -> Callable:
    """Dynamo backend: inductor, or the graph as it is if that fails.

    The backward graph is compiled right away (not at the first backward,
    as torch does by default) so that its failure falls back here too.

    Args:
        gm (torch.fx.GraphModule): The graph dynamo captured.
        example_inputs (list): Its example inputs.

    Returns:
        Callable: The compiled graph, or ``gm.forward`` (eager).
    """
    from torch._dynamo.exc import RestartAnalysis
    from torch._inductor.compile_fx import compile_fx

    try:
        with torch._functorch.config.patch(
            force_non_lazy_backward_lowering=True
        ):
            return compile_fx(gm, example_inputs)
    except RestartAnalysis:
        # Not a failure: dynamo's signal to trace the frame again.
        raise
    except Exception as e:  # any failure: run this graph eagerly
        _note_eager(_describe(gm), _one_line(e))
        return gm.forward


def _describe(gm: torch.fx.GraphModule) -> str:
    """``the graph of N ops in backbone, neck`` for a message."""
    ops, modules = 0, []
    for node in gm.graph.nodes:
        if not node.op.startswith('call'):
            continue
        ops += 1
        for path, _ in (node.meta.get('nn_module_stack') or {}).values():
            # The outermost named module, without dynamo's ``L['self'].``.
            name = re.sub(r"^L\['[^']*'\]\.?", '', str(path))
            if name:
                if name not in modules:
                    modules.append(name)
                break
    where = ', '.join(modules[:4]) + (', ...' if len(modules) > 4 else '')
    return f'the graph of {ops} ops in {where or "no module"}'


class _OneLineDynamoErrors(logging.Filter):
    """Cut dynamo's report of a frame it skips to one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("WON'T CONVERT"):
            return True
        where = ' '.join(message.split('\n', 1)[0].split()[2:])
        reason = (
            _one_line(record.exc_info[1])
            if record.exc_info and record.exc_info[1] is not None
            else 'not traceable'
        )
        _note_eager(f'frame {where}', reason)
        return False


_FILTER = _OneLineDynamoErrors()


def _install() -> None:
    """Register the backend and make dynamo fall back instead of raising."""
    from mmengine.optim import OptimWrapper
    from torch._dynamo import config as dynamo_config
    from torch._dynamo.backends.registry import _BACKENDS, register_backend

    if SAFE_BACKEND not in _BACKENDS:
        register_backend(inductor_or_eager, name=SAFE_BACKEND)
    if not getattr(OptimWrapper.update_params, '_scrim_eager', False):
        # The compiled train_step calls optim_wrapper.update_params(loss):
        # backward, gradient clipping (which logs the norm into a numpy
        # HistoryBuffer), the optimizer step. Traced, the clipping log and
        # the per-group optimizer code recompile at every value and group
        # until dynamo's limit; the backward already runs the compiled
        # backward graphs when called eagerly. So it stays eager.
        update_params = torch.compiler.disable(OptimWrapper.update_params)
        update_params._scrim_eager = True
        OptimWrapper.update_params = update_params
    dynamo_config.suppress_errors = True
    logger = logging.getLogger('torch._dynamo.convert_frame')
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def apply_compile(cfg: Config, enable: bool = False) -> Optional[dict]:
    """Set up mmengine's ``compile`` config for the tools.

    ``--compile`` (``enable=True``) sets ``cfg.compile`` to
    ``dict(backend='scrim_inductor')`` unless the config has a
    ``compile`` dict of its own, which is kept. With any ``compile``
    setting, a part that cannot be compiled runs eagerly with a one-line
    message; the run never fails for it.

    Args:
        cfg (Config): The config, changed in place.
        enable (bool): The ``--compile`` option. Defaults to False.

    Returns:
        dict, optional: The ``torch.compile`` keyword arguments, or None
        when nothing is compiled.
    """
    compile_cfg = cfg.get('compile', None)
    if enable and not isinstance(compile_cfg, dict):
        compile_cfg = dict(backend=SAFE_BACKEND)
    if compile_cfg is None or compile_cfg is False:
        return None
    if compile_cfg is True:
        compile_cfg = dict()
    cfg.compile = compile_cfg
    _install()
    return dict(compile_cfg)


def compile_steps(
    model: nn.Module,
    steps: Iterable[str] = ('test_step',),
    compile_cfg: Union[dict, bool, None] = True,
) -> None:
    """``torch.compile`` steps of a model, as mmengine does for training.

    mmengine's Runner compiles only ``train_step`` (in ``Runner.train``);
    ``tools/test.py --compile`` uses this for ``test_step`` and the
    benchmark for both.

    Args:
        model (nn.Module): The model (or its DDP wrapper); its step
            methods are replaced by their compiled versions.
        steps (Iterable[str]): Method names. Defaults to
            ``('test_step',)``.
        compile_cfg (dict | bool, optional): ``torch.compile`` keyword
            arguments; True gives ``dict(backend='scrim_inductor')``;
            None or False compiles nothing. Defaults to True.
    """
    if compile_cfg is None or compile_cfg is False:
        return
    if compile_cfg is True:
        compile_cfg = dict(backend=SAFE_BACKEND)
    _install()
    for name in steps:
        setattr(
            model, name, torch.compile(getattr(model, name), **compile_cfg)
        )
