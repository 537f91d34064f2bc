# Copyright (c) scrim-mm contributors. All rights reserved.
"""Check an export against PyTorch: outputs and latency."""

import statistics
import time
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from .export_wrapper import SCRIMExportWrapper
from .ort_model import ONNXRuntimeSCRIM

__all__ = [
    'SCORE_TOL',
    'BOX_TOL',
    'compare_outputs',
    'parity_ok',
    'sample_inputs',
    'latency_ratio',
]

#: Largest allowed difference of a class score (softmax, fp32).
SCORE_TOL = 1e-4
#: Largest allowed difference of a box coordinate, in input pixels.
BOX_TOL = 0.5


def compare_outputs(
    model: nn.Module, runner: ONNXRuntimeSCRIM, inputs: torch.Tensor
) -> Dict:
    """Largest differences between onnxruntime and PyTorch on one batch.

    Args:
        model (SCRIMClassifier): The PyTorch model (eval mode is set).
        runner (ONNXRuntimeSCRIM): The exported model.
        inputs (Tensor): A normalised batch (B, 3, H, W).

    Returns:
        dict: ``batch``, the largest absolute differences ``scores``,
        ``boxes`` (input pixels, box by box in pick order) and
        ``box_scores``, and ``same_top1`` / ``same_stages`` (bool).
    """
    with torch.no_grad():
        ref = [t.numpy() for t in SCRIMExportWrapper(model)(inputs.float())]
    out = runner.run(inputs)
    names = ('scores', 'boxes', 'box_scores', 'box_stages')
    ref = dict(zip(names, ref))

    def diff(name: str) -> float:
        a, b = ref[name].astype(np.float64), out[name].astype(np.float64)
        if a.shape != b.shape:
            return float('inf')
        return float(np.abs(a - b).max()) if a.size else 0.0

    return dict(
        batch=int(inputs.shape[0]),
        scores=diff('scores'),
        boxes=diff('boxes'),
        box_scores=diff('box_scores'),
        same_top1=bool(
            (ref['scores'].argmax(1) == out['scores'].argmax(1)).all()
        ),
        same_stages=bool(np.array_equal(ref['box_stages'], out['box_stages'])),
    )


def parity_ok(
    diffs: Dict, score_tol: float = SCORE_TOL, box_tol: float = BOX_TOL
) -> bool:
    """Whether :func:`compare_outputs` is within the tolerances.

    Args:
        diffs (dict): From :func:`compare_outputs`.
        score_tol (float): Defaults to :data:`SCORE_TOL`.
        box_tol (float): Defaults to :data:`BOX_TOL`.

    Returns:
        bool: Scores within ``score_tol``, the same top-1 class, boxes
        within ``box_tol`` pixels in the same order, the same stages.
    """
    return (
        diffs['scores'] <= score_tol
        and diffs['boxes'] <= box_tol
        and diffs['same_top1']
        and diffs['same_stages']
    )


def sample_inputs(
    cfg, model: nn.Module, input_size: Tuple[int, int], num: int = 4
) -> Tuple[torch.Tensor, str]:
    """A normalised batch to check an export on.

    The first ``num`` images of the config's test set through its test
    pipeline and the model's data preprocessor (repeated when the set is
    smaller); random normal inputs when the set cannot be read (e.g. no
    data on this machine) or gives another size than ``input_size``.

    Args:
        cfg (Config): The model's config.
        model (nn.Module): The model (its data preprocessor is used).
        input_size (Tuple[int, int]): ``(H, W)`` of the export.
        num (int): Batch size. Defaults to 4.

    Returns:
        tuple: ``(inputs (num, 3, H, W), description of the source)``.
    """
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS

    try:
        init_default_scope(cfg.get('default_scope', 'mmpretrain'))
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        items = [dataset[i % len(dataset)] for i in range(num)]
        with torch.no_grad():
            data = model.data_preprocessor(pseudo_collate(items), False)
        inputs = data['inputs'].float()
        if tuple(inputs.shape[-2:]) == tuple(input_size):
            count = min(num, len(dataset))
            return inputs, f'{count} test image(s) of the config'
        why = f'the test pipeline gives {inputs.shape[-2]}x{inputs.shape[-1]}'
    except Exception as err:  # no data set here: check on noise
        why = f'no test data ({type(err).__name__}: {err})'
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(num, 3, *input_size, generator=gen)
    return inputs, f'random inputs ({why})'


def latency_ratio(
    model: nn.Module,
    runner: ONNXRuntimeSCRIM,
    inputs: torch.Tensor,
    iters: int = 20,
    warmup: int = 3,
    num_threads: Optional[int] = None,
) -> Dict:
    """Median latency of onnxruntime against PyTorch on the same batch.

    Both run the same computation on the normalised batch (PyTorch:
    :class:`SCRIMExportWrapper` under ``torch.no_grad``, i.e. ``predict``
    without building the DataSamples; onnxruntime: ``session.run``),
    interleaved so that a change of the machine's load hits both.

    Args:
        model (SCRIMClassifier): The PyTorch model.
        runner (ONNXRuntimeSCRIM): The exported model.
        inputs (Tensor): The batch (e.g. batch 1).
        iters (int): Timed calls of each. Defaults to 20.
        warmup (int): Untimed calls of each first. Defaults to 3.
        num_threads (int, optional): torch intra-op threads for the run
            (give onnxruntime the same through ``runner``). Defaults to
            None (unchanged).

    Returns:
        dict: ``torch_ms`` and ``onnxruntime_ms`` (medians), ``ratio``
        (onnxruntime / PyTorch; below 1 means onnxruntime is faster),
        ``iters`` and ``batch``.
    """
    wrapper = SCRIMExportWrapper(model)
    inputs = inputs.float()
    array = inputs.numpy()
    previous = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(int(num_threads))

    def run_torch():
        with torch.no_grad():
            wrapper(inputs)

    def run_ort():
        runner.session.run(None, {runner.input_name: array})

    times = dict(torch=[], ort=[])
    try:
        for _ in range(warmup):
            run_torch()
            run_ort()
        for _ in range(iters):
            for name, fn in (('torch', run_torch), ('ort', run_ort)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    torch_ms = 1000 * statistics.median(times['torch'])
    ort_ms = 1000 * statistics.median(times['ort'])
    return dict(
        torch_ms=torch_ms,
        onnxruntime_ms=ort_ms,
        ratio=ort_ms / torch_ms,
        iters=iters,
        batch=int(inputs.shape[0]),
    )
