# Copyright (c) scrim-mm contributors. All rights reserved.
"""The wiring of a SCRIM model, derived from its backbone.

A SCRIM model needs about ten numbers that follow from the backbone: the
channels and strides of the stage maps the coarse parts (CPL) use, the
channels of a re-encoded crop, the size of the fused feature and the class
count. :class:`~scrim_mm.models.SCRIMClassifier` runs its backbone once on
PyTorch's ``meta`` device (shapes only, no data) and fills in every one of
them that a config leaves unset; a value that is set is kept and checked
against the backbone. Every configuration error of the wiring is raised
here, as a ``ValueError`` whose message reads
``<key>=<value>: <problem>; <what to do>``.
"""

import inspect
import itertools
import re
from typing import (
    Any,
    Dict,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch
import torch.nn as nn

#: Input size of the dry run: a power of two, so that every power-of-two
#: stride up to 512 divides it exactly.
PROBE_SIZE = (512, 512)
# A backbone that cannot run on ``meta`` runs for real, on this smaller
# image.
_FALLBACK_SIZE = (256, 256)

Config = Union[dict, nn.Module]


class BackboneStage(NamedTuple):
    """One NCHW output of a backbone.

    Attributes:
        name (str): ``'s<i+1>'`` for stage index ``i`` of the backbone's
            ``out_indices`` (``'s3'``, ``'s4'`` for ResNet's
            ``out_indices=(2, 3)``).
        channels (int): Number of channels.
        stride (int | None): Input size over map size, None when it is not
            a whole number on the dry-run input.
    """

    name: str
    channels: int
    stride: Optional[int]


def default_stage_names(num_stages: int) -> Tuple[str, ...]:
    """Names of the last ``num_stages`` stages of a four-stage backbone.

    ``('s3', 's4')`` for two stages, ``('s4',)`` for one; more than four
    stages are ``'s1'`` to ``'s<n>'``.

    Args:
        num_stages (int): Number of stages.

    Returns:
        tuple[str]: The names.
    """
    last = max(4, num_stages)
    return tuple(f's{i + 1}' for i in range(last - num_stages, last))


def require(owner: str, **values: Any) -> None:
    """Refuse a wiring argument left unset outside a SCRIMClassifier.

    Args:
        owner (str): The module class, for the message.
        **values: The arguments to check, by name.

    Raises:
        ValueError: For the first argument that is None.
    """
    for key, value in values.items():
        if value is None:
            raise ValueError(
                f'{key}=None: {owner} needs it when it is built on its own; '
                f'set it, or build the {owner} inside a SCRIMClassifier, '
                'which takes it from the backbone'
            )


def _stage_names(backbone: nn.Module, num_outputs: int) -> Tuple[str, ...]:
    """Names from the backbone's ``out_indices``, else by position."""
    indices = getattr(backbone, 'out_indices', None)
    try:
        indices = sorted(int(i) for i in indices)
    except TypeError:
        indices = None
    if indices and len(indices) == num_outputs and min(indices) >= 0:
        return tuple(f's{i + 1}' for i in indices)
    return default_stage_names(num_outputs)


def _run_on_meta(backbone: nn.Module, size: Tuple[int, int]):
    """The backbone's outputs on a blank meta image, parameters untouched."""
    from torch.func import functional_call

    state = {
        name: torch.empty_like(tensor, device='meta')
        for name, tensor in itertools.chain(
            backbone.named_parameters(), backbone.named_buffers()
        )
    }
    image = torch.zeros(1, 3, *size, device='meta')
    return functional_call(backbone, state, (image,))


def probe_backbone(
    backbone: nn.Module, size: Tuple[int, int] = PROBE_SIZE
) -> List[BackboneStage]:
    """Channels and strides of the backbone outputs, from a dry run.

    The backbone runs once, in eval mode and without gradients, on a blank
    image on PyTorch's ``meta`` device with ``meta`` stand-ins for its
    parameters and buffers: only shapes are computed, in a fraction of a
    second even for Swin-L, and the backbone itself is left as it was. A
    backbone that cannot run on ``meta`` runs on a blank
    ``_FALLBACK_SIZE`` image where its parameters are.

    Args:
        backbone (nn.Module): A built backbone.
        size (Tuple[int, int]): The input size ``(H, W)`` of the dry run.
            Defaults to :data:`PROBE_SIZE`.

    Returns:
        list[BackboneStage]: One per output, in output order.

    Raises:
        ValueError: The backbone cannot run, or gives something else than
            NCHW stage maps.
    """
    training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            try:
                outs = _run_on_meta(backbone, size)
            except Exception:
                size = _FALLBACK_SIZE
                param = next(backbone.parameters(), None)
                device = param.device if param is not None else 'cpu'
                outs = backbone(torch.zeros(1, 3, *size, device=device))
    except Exception as e:
        raise ValueError(
            f'model.backbone={type(backbone).__name__}: a dry run on a blank '
            f'{size[0]}x{size[1]} image failed ({type(e).__name__}: {e}); '
            'fix the backbone config so that it runs on such an image'
        ) from e
    finally:
        backbone.train(training)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    outs = tuple(outs)
    for out in outs:
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            shape = tuple(getattr(out, 'shape', ()))
            raise ValueError(
                f'model.backbone={type(backbone).__name__}: gives an output '
                f'of shape {shape}, not a (B, C, H, W) stage map; make it '
                'return stage maps (e.g. ConvNeXt: '
                "gap_before_final_norm=False, ViT: out_type='featmap')"
            )
    stages = []
    for name, out in zip(_stage_names(backbone, len(outs)), outs):
        h, w = out.shape[-2:]
        stride = None
        if size[0] % h == 0 and size[1] % w == 0:
            if size[0] // h == size[1] // w:
                stride = size[0] // h
        stages.append(BackboneStage(name, int(out.shape[1]), stride))
    return stages


def stage_indices(
    num_outputs: int,
    in_indices: Optional[Sequence[int]] = None,
    in_channels: Optional[Sequence[int]] = None,
) -> List[int]:
    """Which backbone outputs a :class:`CPLNeck` uses.

    Args:
        num_outputs (int): Number of backbone outputs.
        in_indices (Sequence[int], optional): The neck's ``in_indices``.
            Defaults to None.
        in_channels (Sequence[int], optional): The neck's ``in_channels``:
            without ``in_indices``, the last ``len(in_channels)`` outputs
            are used, and every output when it is None too. Defaults to
            None.

    Returns:
        list[int]: Non-negative output indices.

    Raises:
        ValueError: The backbone gives too few outputs.
    """
    if in_indices is not None:
        in_indices = tuple(in_indices)
        if any(not -num_outputs <= i < num_outputs for i in in_indices):
            raise ValueError(
                f'model.neck.in_indices={in_indices}: the backbone gives '
                f'{num_outputs} stage maps; pick among them, or add stages '
                'to model.backbone.out_indices'
            )
        return [i % num_outputs for i in in_indices]
    if in_channels is None:
        return list(range(num_outputs))
    num_stages = len(in_channels)
    if num_stages > num_outputs:
        raise ValueError(
            f'model.neck.in_channels={_plain(in_channels)}: {num_stages} '
            f'stages, but the backbone gives {num_outputs} stage maps; set '
            f'model.backbone.out_indices to {num_stages} stages, e.g. (2, 3)'
        )
    return list(range(num_outputs - num_stages, num_outputs))


def _plain(value: Any) -> Any:
    """Lists as tuples, for comparison and messages."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _get(cfg: Config, key: str) -> Any:
    if isinstance(cfg, nn.Module):
        return getattr(cfg, key, None)
    return cfg.get(key)


def _channels(cfg: Config) -> Optional[Tuple[int, ...]]:
    """A neck's ``in_channels`` as a tuple, None when unset."""
    value = _plain(_get(cfg, 'in_channels'))
    return (value,) if isinstance(value, int) else value


def _class(cfg: dict) -> Optional[type]:
    """The class a module config builds."""
    from mmpretrain.registry import MODELS

    kind = cfg.get('type')
    return kind if isinstance(kind, type) else MODELS.get(kind)


def setting(cfg: Config, key: str) -> Any:
    """A module argument: given in the config, else the class default.

    Args:
        cfg (dict | nn.Module): A module config with its ``type``, or a
            built module (its attribute).
        key (str): The argument.

    Returns:
        The value; None when neither gives one.
    """
    value = _get(cfg, key)
    if value is not None or isinstance(cfg, nn.Module):
        return value
    cls = _class(cfg)
    param = None if cls is None else inspect.signature(cls).parameters.get(key)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def settle(cfg: Config, key: str, value: Any, path: str, source: str) -> Any:
    """Fill in a derived setting, or check the one that is given.

    Args:
        cfg (dict | nn.Module): A module config (filled in place) or a
            built module (checked only).
        key (str): The argument.
        value: The value derived from the backbone; None when it cannot be
            derived (a given value is then kept unchecked).
        path (str): The config key of ``cfg``, e.g. ``'model.neck'``.
        source (str): Where ``value`` comes from, for the message.

    Returns:
        The setting in force.

    Raises:
        ValueError: The given value differs from the derived one.
    """
    given = _plain(_get(cfg, key))
    value = _plain(value)
    if given is None:
        if not isinstance(cfg, nn.Module):
            cfg[key] = value
        return value
    if value is not None and given != value:
        raise ValueError(
            f'{path}.{key}={given}: expected {value}, from {source}; leave '
            f'it unset (SCRIMClassifier derives it) or set {value}'
        )
    return given


def _spec(cfg: Optional[Config], default_type: str) -> Optional[Config]:
    """A copy of a module config with its default type, or the module."""
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault('type', default_type)
    return cfg


def describe_backbone(backbone: nn.Module) -> str:
    """``the backbone (ResNet, out_indices=(2, 3))``, for messages."""
    indices = getattr(backbone, 'out_indices', None)
    extra = '' if indices is None else f', out_indices={_plain(indices)}'
    return f'the backbone ({type(backbone).__name__}{extra})'


def wire_num_classes(
    num_classes: Optional[int],
    configs: Dict[str, Optional[Config]],
) -> int:
    """The class count: ``model.num_classes``, or the one a part gives.

    Args:
        num_classes (int, optional): The classifier's ``num_classes``.
        configs (dict): Config key (``'model.head'``, ...) to the config or
            module of a part that may give a ``num_classes``.

    Returns:
        int: The class count, the same in every part that gives one.

    Raises:
        ValueError: No part gives it, or two give different counts.
    """
    given = {'model.num_classes': num_classes}
    for path, cfg in configs.items():
        if cfg is not None:
            given[f'{path}.num_classes'] = _get(cfg, 'num_classes')
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        raise ValueError(
            'model.num_classes=None: the number of classes is not set; set '
            'model.num_classes to the number of classes of the dataset'
        )
    (first, count), *others = given.items()
    for path, value in others:
        if value != count:
            raise ValueError(
                f'{path}={value}: differs from {first}={count}; give the '
                'number of classes once, as model.num_classes'
            )
    return count


def wire_neck(
    cfg: Config, stages: Sequence[BackboneStage], backbone: str
) -> Config:
    """Fill in ``in_channels`` and ``stage_names`` of the CPL neck.

    Args:
        cfg (dict | nn.Module): The neck config or module.
        stages (Sequence[BackboneStage]): The backbone outputs.
        backbone (str): The backbone, for messages
            (:func:`describe_backbone`).

    Returns:
        dict | nn.Module: A completed copy of the config, or the module.
    """
    cfg = _spec(cfg, 'CPLNeck')
    indices = stage_indices(
        len(stages), _get(cfg, 'in_indices'), _channels(cfg)
    )
    picked = [stages[i] for i in indices]
    settle(
        cfg,
        'in_channels',
        tuple(s.channels for s in picked),
        'model.neck',
        f'the channels of the stage maps of {backbone}',
    )
    if not isinstance(cfg, nn.Module) and cfg.get('stage_names') is None:
        cfg['stage_names'] = tuple(s.name for s in picked)
    return cfg


def neck_strides(
    neck: Config, stages: Sequence[BackboneStage]
) -> Tuple[Optional[int], ...]:
    """Strides of the backbone outputs a CPL neck uses.

    Args:
        neck (dict | nn.Module): The neck config or module.
        stages (Sequence[BackboneStage]): The backbone outputs.

    Returns:
        tuple[int | None]: One stride per neck stage.
    """
    indices = stage_indices(
        len(stages), _get(neck, 'in_indices'), _channels(neck)
    )
    return tuple(stages[i].stride for i in indices)


def wire_fpl_head(
    cfg: Optional[Config],
    neck: nn.Module,
    stages: Sequence[BackboneStage],
    num_classes: int,
    backbone: str,
) -> Optional[Config]:
    """Fill in the channels, strides, stages and classes of the FPL head.

    Args:
        cfg (dict | nn.Module, optional): The FPL head config or module;
            None (no FPL) is passed through.
        neck (nn.Module): The built CPL neck.
        stages (Sequence[BackboneStage]): The backbone outputs.
        num_classes (int): The class count.
        backbone (str): The backbone, for messages.

    Returns:
        dict | nn.Module | None: A completed copy of the config, or the
        module.
    """
    cfg = _spec(cfg, 'FPLHead')
    if cfg is None:
        return None
    path = 'model.fpl_head'
    strides = neck_strides(neck, stages)
    settle(cfg, 'num_classes', num_classes, path, 'model.num_classes')
    settle(cfg, 'in_channels', neck.in_channels, path, 'model.neck')
    settle(
        cfg,
        'feat_channels',
        stages[-1].channels,
        path,
        f'the last output of {backbone}, which encodes the crops',
    )
    settle(
        cfg,
        'stage_strides',
        None if None in strides else strides,
        path,
        f'the stage maps of {backbone}',
    )
    settle(cfg, 'stage_names', neck.stage_names, path, 'model.neck')
    return cfg


def wire_head(
    cfg: Config,
    neck: nn.Module,
    fpl_head: Optional[Config],
    num_classes: int,
) -> Config:
    """Fill in the fusion sizes and classes of the SCRIM head.

    Args:
        cfg (dict | nn.Module): The head config or module.
        neck (nn.Module): The built CPL neck.
        fpl_head (dict | nn.Module, optional): The FPL head, built or as
            completed by :func:`wire_fpl_head` (the head is built before
            it, as the modules always were, so that a seed gives the same
            initial weights); None without FPL.
        num_classes (int): The class count.

    Returns:
        dict | nn.Module: A completed copy of the config, or the module.
    """
    cfg = _spec(cfg, 'SCRIMHead')
    path = 'model.head'
    settle(cfg, 'num_classes', num_classes, path, 'model.num_classes')
    settle(cfg, 'part_channels', neck.in_channels, path, 'model.neck')
    settle(cfg, 'num_parts', neck.num_parts, path, 'model.neck')
    settle(cfg, 'stage_names', neck.stage_names, path, 'model.neck')
    if fpl_head is None:
        settle(cfg, 'num_fpl_parts', 0, path, 'model.fpl_head=None (no FPL)')
        return cfg
    num_stages = len(setting(fpl_head, 'in_channels'))
    num_test_parts = setting(fpl_head, 'num_test_parts')
    settle(
        cfg,
        'num_fpl_parts',
        num_stages * num_test_parts,
        path,
        f'{num_stages} FPL stages x model.fpl_head.num_test_parts='
        f'{num_test_parts} (model.fpl_head=None is the CPL-only model)',
    )
    settle(
        cfg,
        'fpl_channels',
        setting(fpl_head, 'feat_channels'),
        path,
        'model.fpl_head',
    )
    return cfg


def build_part(cfg: Optional[Config], path: str) -> Optional[nn.Module]:
    """Build a part of the model, naming its config key in its errors.

    A module refuses a bad argument with a message that starts with the
    argument, ``<key>=<value>: ...``; inside the model that becomes the
    config key, ``model.fpl_head.<key>=<value>: ...``.

    Args:
        cfg (dict | nn.Module, optional): The config; a module or None is
            passed through.
        path (str): Its config key, e.g. ``'model.fpl_head'``.

    Returns:
        nn.Module | None: The module.
    """
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    from mmpretrain.registry import MODELS

    try:
        return MODELS.build(cfg)
    except ValueError as e:
        key = re.match(r'(\w+)[\[=]', str(e))
        cls = _class(cfg)
        params = inspect.signature(cls).parameters if cls else {}
        if key is None or key.group(1) not in params:
            raise
        raise ValueError(f'{path}.{e}') from e
