# Copyright (c) scrim-mm contributors. All rights reserved.
"""Export SCRIM to ONNX with its regions: anchors, NMS and crops included.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (``torch.export``
then onnxscript's translations), the default and maintained one of torch
>= 2.9. The TorchScript exporter (``dynamo=False``) is deprecated and
cannot translate the stable ``argsort`` of the hard NMS (``Sort, Out
parameter is not supported``). With ``dynamo=True`` two ops need care:

* ``aten::sort.stable`` (the NMS's stable descending order) has no
  translation: :func:`_sort_stable` maps it to ONNX ``TopK`` over the
  whole axis, whose specification breaks ties by the lower index, i.e. it
  is a stable sort;
* ``torchvision::roi_align`` (the crops) is translated by onnxscript to
  ONNX ``RoiAlign`` with ``coordinate_transformation_mode='half_pixel'``
  (``aligned=True``), which needs opset >= 16.

Opset 18 is the exporter's native one; a lower opset goes through the
ONNX version converter, which fails on this graph, so :data:`MIN_OPSET` is
18. The anchors of the input size are constants of the graph: an export is
for one ``(H, W)``; the batch can be dynamic.
"""

import contextlib
import json
import logging
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .export_wrapper import OUTPUT_NAMES, SCRIMExportWrapper

__all__ = [
    'DEFAULT_OPSET',
    'MIN_OPSET',
    'METADATA_PREFIX',
    'build_metadata',
    'export_onnx',
    'input_size_from_config',
    'require_deploy_packages',
]

#: Lowest opset the export supports (the dynamo exporter's own).
MIN_OPSET = 18
#: Opset used when none is given.
DEFAULT_OPSET = 18
#: Prefix of the keys SCRIM writes into the ONNX ``metadata_props``.
METADATA_PREFIX = 'scrim.'


def require_deploy_packages(*names: str) -> None:
    """Fail with the install command when a deploy package is missing.

    Args:
        *names (str): Module names, e.g. ``'onnx'``, ``'onnxruntime'``.

    Raises:
        ImportError: Naming the module and ``pip install -e .[deploy]``.
    """
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ImportError(
                f'SCRIM deployment needs the {name!r} package, which is '
                'not installed: pip install -e .[deploy] (or pip install '
                '-r requirements/deploy.txt).'
            ) from err


def _sort_stable(self, *, stable=None, dim: int = -1, descending=False):
    """``aten::sort.stable`` as ONNX ``TopK`` over the whole axis.

    ONNX ``TopK`` orders equal values by their index (lower first), which
    is what a stable sort does, ascending or descending.
    """
    from onnxscript import opset18 as op

    if dim == -1:
        size = op.Shape(self, start=-1)
    else:
        size = op.Shape(self, start=dim, end=dim + 1)
    return op.TopK(
        self, size, axis=dim, largest=1 if descending else 0, sorted=1
    )


@contextlib.contextmanager
def _quiet_onnx_ir(quiet: bool):
    """Keep onnx_ir's harmless warnings on the graph out of the output.

    Its passes warn about an empty attribute list it types as INTS and
    about a constant output (``box_stages`` at a fixed batch) it does not
    deduplicate.
    """
    log = logging.getLogger('onnx_ir')
    level = log.level
    if quiet:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _jsonable(value):
    """Config values (ConfigDict, tuples) as plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _test_dataset(cfg) -> dict:
    """The innermost test dataset config (``{}`` when there is none)."""
    from ..utils.config_check import dataset_levels

    loader = cfg.get('test_dataloader') or {}
    return ([{}] + list(dataset_levels(loader.get('dataset'))))[-1]


def input_size_from_config(cfg) -> Tuple[int, int]:
    """The input size ``(H, W)`` the config's test pipeline gives.

    Args:
        cfg (Config): The model's config.

    Returns:
        tuple[int, int]: ``(H, W)``.

    Raises:
        ValueError: The size cannot be told from the pipeline (e.g. a
            resize that keeps the aspect ratio without a crop); pass
            ``--input-size``.
    """
    from ..utils.config_check import infer_input_size

    size, why = infer_input_size(_test_dataset(cfg).get('pipeline') or [])
    if size is None:
        raise ValueError(
            f'Cannot tell the input size from the test pipeline ({why}); '
            'give --input-size H W.'
        )
    return size


def build_metadata(
    cfg, model: nn.Module, input_size: Tuple[int, int]
) -> Dict[str, str]:
    """What a runtime needs besides the graph, as ONNX metadata.

    Stored as JSON strings under ``scrim.<key>``:

    * ``test_pipeline``: the config's test pipeline (its
      ``LoadImageFromFile`` included);
    * ``data_preprocessor``: the ``ClsDataPreprocessor`` settings (mean,
      std, ``to_rgb``: the normalisation the graph expects done);
    * ``classes``: the class names (the checkpoint's ``dataset_meta``,
      else the config's), or null;
    * ``stage_names``: FPL stage names, indexed by ``box_stages``;
    * ``input_size``: ``[H, W]`` of the graph input;
    * ``num_classes``, ``outputs`` and ``format_version`` (1).

    Args:
        cfg (Config): The model's config.
        model (nn.Module): The built model (``dataset_meta`` read).
        input_size (Tuple[int, int]): ``(H, W)`` of the export.

    Returns:
        dict[str, str]: Key -> JSON text.
    """
    pipeline = _test_dataset(cfg).get('pipeline', [])
    preprocessor = dict(
        cfg.model.get('data_preprocessor')
        or cfg.get('data_preprocessor')
        or {}
    )
    preprocessor.setdefault('type', 'ClsDataPreprocessor')
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = meta.get('classes')
    if classes is None:
        from ..apis import config_classes

        classes = config_classes(cfg)
    values = dict(
        format_version=1,
        test_pipeline=pipeline,
        data_preprocessor=preprocessor,
        classes=None if classes is None else [str(c) for c in classes],
        stage_names=list(model.fpl_head.stage_names),
        input_size=[int(input_size[0]), int(input_size[1])],
        num_classes=int(model.head.num_classes),
        outputs=list(OUTPUT_NAMES),
    )
    return {
        METADATA_PREFIX + k: json.dumps(_jsonable(v))
        for k, v in values.items()
    }


def export_onnx(
    model: nn.Module,
    out_file: str,
    input_size: Sequence[int],
    dynamic_batch: bool = False,
    opset: int = DEFAULT_OPSET,
    metadata: Optional[Dict[str, str]] = None,
    verbose: bool = False,
) -> str:
    """Export the test-mode SCRIM model to one ONNX file.

    The graph has one input, ``inputs`` (B, 3, H, W) float32 normalised as
    the data preprocessor gives it, and the outputs of
    :class:`SCRIMExportWrapper`: ``scores``, ``boxes``, ``box_scores``,
    ``box_stages``. The weights are stored in the file (no external data).

    Args:
        model (nn.Module): A :class:`SCRIMClassifier` with an FPL head, on
            the CPU.
        out_file (str): The ``.onnx`` file to write.
        input_size (Sequence[int]): ``(H, W)``; the anchors are generated
            for it and become constants.
        dynamic_batch (bool): A symbolic batch dimension ``batch``;
            otherwise the batch is fixed to 1. Defaults to False.
        opset (int): The ONNX opset, at least :data:`MIN_OPSET`.
            Defaults to :data:`DEFAULT_OPSET`.
        metadata (dict[str, str], optional): ``metadata_props`` of the
            model, e.g. from :func:`build_metadata`. Defaults to None.
        verbose (bool): Print the exporter's progress. Defaults to False.

    Returns:
        str: ``out_file``.

    Raises:
        TypeError | ValueError: A model the export cannot handle (see
            :func:`check_exportable`), an opset below :data:`MIN_OPSET` or
            an input size the anchors cannot use.
        ImportError: onnx or onnxscript is missing.
    """
    if int(opset) < MIN_OPSET:
        raise ValueError(
            f'opset={opset} (--opset): SCRIM export needs opset >= '
            f'{MIN_OPSET}: RoiAlign with half-pixel (aligned) sampling '
            'needs 16, and the exporter writes opset 18 natively (its '
            'conversion to a lower opset fails on this graph).'
        )
    if len(input_size) != 2 or min(int(v) for v in input_size) <= 0:
        raise ValueError(
            f'input_size={tuple(input_size)}: expected (H, W), positive.'
        )
    require_deploy_packages('onnx', 'onnxscript')
    height, width = int(input_size[0]), int(input_size[1])
    wrapper = SCRIMExportWrapper(model).cpu().eval()
    # Any unusable size (e.g. not a multiple of the navigator stride)
    # fails here with the model's own message, not deep in the exporter.
    with torch.no_grad():
        wrapper(torch.zeros(1, 3, height, width))
    # A batch of 2 keeps torch.export from specialising a dynamic batch
    # dimension to 1.
    example = torch.zeros(2 if dynamic_batch else 1, 3, height, width)
    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = {'inputs': {0: torch.export.Dim('batch', min=1)}}
    with torch.no_grad(), _quiet_onnx_ir(not verbose):
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            input_names=['inputs'],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=dynamic_shapes,
            opset_version=int(opset),
            custom_translation_table={
                torch.ops.aten.sort.stable: _sort_stable,
            },
            verbose=verbose,
        )
    got = program.model.opset_imports.get('', None)
    if got != int(opset):
        raise RuntimeError(
            f'The exporter wrote opset {got} instead of --opset {opset}.'
        )
    if metadata:
        program.model.metadata_props.update(metadata)
    folder = osp.dirname(osp.abspath(out_file))
    os.makedirs(folder, exist_ok=True)
    program.save(out_file, external_data=False)
    return out_file
