# Copyright (c) scrim-mm contributors. All rights reserved.
"""Count the FLOPs of a model's forward pass."""

import copy
import warnings
from typing import Dict, Tuple

import torch
import torch.nn as nn

__all__ = ['count_flops']


def count_flops(
    model: nn.Module, inputs: torch.Tensor, training: bool
) -> Tuple[float, Dict[str, float]]:
    """Per-image forward FLOPs (multiply-adds) in ``'tensor'`` mode.

    mmengine's ``FlopAnalyzer`` traces the forward; one multiply-add counts
    as one FLOP (fvcore's convention) and ops without a counting rule (e.g.
    ``roi_align`` and NMS) count as zero.

    Args:
        model (nn.Module): The model (a copy is traced; its BN statistics
            stay untouched).
        inputs (Tensor): A preprocessed batch.
        training (bool): Trace in train mode (``M`` crops) or eval mode
            (``K`` crops).

    Returns:
        Tuple[float, Dict[str, float]]: FLOPs per image, and per top-level
        child module.
    """
    from mmengine.analysis import FlopAnalyzer

    clone = copy.deepcopy(model)
    clone.train(training)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with torch.no_grad():
            analyzer = FlopAnalyzer(clone, (inputs,))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            total = analyzer.total()
            by_module = analyzer.by_module()
    batch = inputs.shape[0]
    children = {
        name: by_module.get(name, 0) / batch
        for name, _ in clone.named_children()
        if name != 'data_preprocessor'
    }
    del clone
    return total / batch, children
