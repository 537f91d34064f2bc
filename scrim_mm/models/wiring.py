# Copyright (c) scrim-mm contributors. All rights reserved.
"""The wiring of a SCRIM model, derived from its backbone in one step.

:func:`wire` fills what follows from the backbone (channels, strides, stage
names, fusion sizes, the class count) into the module configs before any
module is built, and checks what the config sets. Errors read
``<key>=<value>: <problem>; <fix>``.
"""

import inspect
import itertools
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from torch.func import functional_call

#: Input size of the dry run: every power-of-two stride up to 512 divides it.
PROBE_SIZE = (512, 512)


class BackboneStage(NamedTuple):
    """One NCHW backbone output: its name ``'s<i+1>'`` (after
    ``out_indices``), its channels and its stride (None when the input size
    over the map size is not a whole number)."""

    name: str
    channels: int
    stride: Optional[int]


def default_stage_names(num_stages: int) -> Tuple[str, ...]:
    """``('s3', 's4')`` for two stages, the last of four (``'s1'``... past
    four)."""
    last = max(4, num_stages)
    return tuple(f's{i + 1}' for i in range(last - num_stages, last))


def probe_backbone(backbone: nn.Module) -> List[BackboneStage]:
    """Channels and strides of the outputs, from a dry run on ``meta``.

    Meta stand-ins of the parameters and buffers compute shapes only (fast
    even for Swin-L); a backbone that cannot run on ``meta`` runs on a blank
    256 x 256 image where its parameters are. It is left as it was.

    Args:
        backbone (nn.Module): A built backbone.

    Returns:
        list[BackboneStage]: One per output, in output order.
    """
    training, size = backbone.training, PROBE_SIZE
    backbone.eval()
    try:
        with torch.no_grad():
            try:
                tensors = itertools.chain(
                    backbone.named_parameters(), backbone.named_buffers()
                )
                state = {
                    k: torch.empty_like(v, device='meta') for k, v in tensors
                }
                image = torch.zeros(1, 3, *size, device='meta')
                outs = functional_call(backbone, state, (image,))
            except Exception:
                size = (256, 256)
                param = next(backbone.parameters(), None)
                device = 'cpu' if param is None else param.device
                outs = backbone(torch.zeros(1, 3, *size, device=device))
    except Exception as e:
        raise ValueError(
            f'model.backbone={type(backbone).__name__}: a dry run on a blank '
            f'{size[0]}x{size[1]} image failed ({type(e).__name__}: {e}); '
            'fix the backbone config so that it runs on such an image'
        ) from e
    finally:
        backbone.train(training)
    outs = (outs,) if isinstance(outs, torch.Tensor) else tuple(outs)
    for out in outs:
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise ValueError(
                f'model.backbone={type(backbone).__name__}: gives an output '
                f'of shape {tuple(getattr(out, "shape", ()))}, not a (B, C, '
                'H, W) stage map; make it return stage maps (e.g. ConvNeXt: '
                "gap_before_final_norm=False, ViT: out_type='featmap')"
            )
    names = default_stage_names(len(outs))
    indices = getattr(backbone, 'out_indices', None)
    if isinstance(indices, Sequence) and len(indices) == len(outs):
        if all(isinstance(i, int) and i >= 0 for i in indices):
            names = tuple(f's{i + 1}' for i in sorted(indices))
    stages = []
    for name, out in zip(names, outs):
        h, w = out.shape[-2:]
        whole = size[0] % h == 0 and size[1] % w == 0
        stride = (
            size[0] // h if whole and size[0] // h == size[1] // w else None
        )
        stages.append(BackboneStage(name, int(out.shape[1]), stride))
    return stages


def stage_indices(
    num_outputs: int,
    in_indices: Optional[Sequence[int]] = None,
    in_channels: Optional[Sequence[int]] = None,
) -> List[int]:
    """The backbone outputs a CPL neck reads: ``in_indices``, else the last
    ``len(in_channels)``, else all; raises if the backbone has too few."""
    if in_indices is not None:
        in_indices = tuple(in_indices)
        if any(not -num_outputs <= i < num_outputs for i in in_indices):
            raise ValueError(
                f'model.neck.in_indices={in_indices}: the backbone gives '
                f'{num_outputs} stage maps; pick among them, or add stages '
                'to model.backbone.out_indices'
            )
        return [i % num_outputs for i in in_indices]
    num = num_outputs if in_channels is None else len(in_channels)
    if num > num_outputs:
        raise ValueError(
            f'model.neck.in_channels={tuple(in_channels)}: {num} stages, but '
            f'the backbone gives {num_outputs} stage maps; set '
            f'model.backbone.out_indices to {num} stages, e.g. (2, 3)'
        )
    return list(range(num_outputs - num, num_outputs))


def neck_stages(neck: dict, stages: Sequence[BackboneStage]) -> list:
    """The :class:`BackboneStage` s that a CPL neck config reads."""
    channels = neck.get('in_channels')
    channels = (channels,) if isinstance(channels, int) else channels
    picked = stage_indices(len(stages), neck.get('in_indices'), channels)
    return [stages[i] for i in picked]


def _plain(value):
    """Lists as tuples (recursively), for comparison and messages."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _settle(cfg: dict, path: str, key: str, value, source: str) -> None:
    """Fill in a derived setting, or check the one the config gives."""
    given = _plain(cfg.get(key))
    if given is None:
        cfg[key] = value
    elif value is not None and given != _plain(value):
        raise ValueError(
            f'{path}.{key}={given}: expected {_plain(value)}, from {source}; '
            f'leave it unset (SCRIMClassifier derives it) or set '
            f'{_plain(value)}'
        )


def _default(cfg: dict, key: str):
    """The config's value, else the default of the class it builds."""
    if cfg.get(key) is not None:
        return cfg[key]
    return inspect.signature(MODELS.get(cfg['type'])).parameters[key].default


def wire(backbone: nn.Module, num_classes: Optional[int], **parts) -> None:
    """Fill the derived settings into the module configs, in place.

    Args:
        backbone (nn.Module): The built backbone.
        num_classes (int, optional): ``model.num_classes``.
        **parts: The configs (with their ``type``) of ``neck``, ``head``,
            ``fpl_head`` (None for the CPL-only model) and
            ``data_preprocessor`` (None when it is a module).
    """
    neck, head, fpl = parts['neck'], parts['head'], parts['fpl_head']
    given = [('model.num_classes', num_classes)] + [
        (f'model.{k}.num_classes', (v or {}).get('num_classes'))
        for k, v in parts.items()
    ]
    given = [(k, v) for k, v in given if v is not None]
    if not given:
        raise ValueError(
            'model.num_classes=None: the number of classes is not set; set '
            'model.num_classes to the number of classes of the dataset'
        )
    for key, value in given[1:]:
        if value != given[0][1]:
            raise ValueError(
                f'{key}={value}: differs from {given[0][0]}={given[0][1]}; '
                'give the number of classes once, as model.num_classes'
            )
    count = given[0][1]
    if parts['data_preprocessor'] is not None:
        parts['data_preprocessor'].setdefault('num_classes', count)
    stages = probe_backbone(backbone)
    indices = getattr(backbone, 'out_indices', None)
    source = f'the backbone ({type(backbone).__name__}' + (
        ')' if indices is None else f', out_indices={_plain(indices)})'
    )
    picked = neck_stages(neck, stages)
    channels = tuple(s.channels for s in picked)
    where = f'the channels of the stage maps of {source}'
    _settle(neck, 'model.neck', 'in_channels', channels, where)
    if neck.get('stage_names') is None:
        neck['stage_names'] = tuple(s.name for s in picked)
    names = tuple(neck['stage_names'])
    head_rules = [
        ('num_classes', count, 'model.num_classes'),
        ('part_channels', channels, 'model.neck'),
        ('num_parts', _default(neck, 'num_parts'), 'model.neck'),
        ('stage_names', names, 'model.neck'),
    ]
    if fpl is None:
        head_rules.append(('num_fpl_parts', 0, 'model.fpl_head=None (no FPL)'))
    else:
        strides = tuple(s.stride for s in picked)
        for key, value, origin in (
            ('num_classes', count, 'model.num_classes'),
            ('in_channels', channels, 'model.neck'),
            (
                'feat_channels',
                stages[-1].channels,
                f'the last output of {source}, which encodes the crops',
            ),
            (
                'stage_strides',
                None if None in strides else strides,
                f'the stage maps of {source}',
            ),
            ('stage_names', names, 'model.neck'),
        ):
            _settle(fpl, 'model.fpl_head', key, value, origin)
        if fpl['stage_strides'] is None:
            raise ValueError(
                f'model.fpl_head.stage_strides=None: the stage maps of '
                f'{source} have no whole stride on a {PROBE_SIZE[0]}x'
                f'{PROBE_SIZE[1]} input; set model.fpl_head.stage_strides'
            )
        k = _default(fpl, 'num_test_parts')
        head_rules += [
            (
                'num_fpl_parts',
                len(picked) * k,
                f'{len(picked)} FPL stages x '
                f'model.fpl_head.num_test_parts={k} (model.fpl_head=None is '
                'the CPL-only model)',
            ),
            ('fpl_channels', fpl['feat_channels'], 'model.fpl_head'),
        ]
    for key, value, origin in head_rules:
        _settle(head, 'model.head', key, value, origin)


def build_part(cfg: Optional[dict], path: str) -> Optional[nn.Module]:
    """Build a wired config (None passes through). A ``ValueError`` that
    starts with a key the config gives (``crop_size=...``) is raised again
    with the config path in front (``model.fpl_head.crop_size=...``)."""
    if cfg is None:
        return None
    try:
        return MODELS.build(cfg)
    except ValueError as e:
        key = str(e).partition('=')[0].partition('[')[0]
        if key.isidentifier() and key in cfg:
            raise ValueError(f'{path}.{e}') from e
        raise
