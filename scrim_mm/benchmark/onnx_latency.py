# Copyright (c) scrim-mm contributors. All rights reserved.
"""onnxruntime against PyTorch latency, for the benchmark."""

import os.path as osp
import tempfile
from typing import Dict

import torch
import torch.nn as nn
from mmengine.config import Config

from .steps import make_batch


def onnxruntime_latency(
    model: nn.Module,
    cfg: Config,
    input_size: int,
    iters: int,
    warmup: int,
    seed: int = 0,
) -> Dict[str, float]:
    """Export SCRIM at batch 1 and time onnxruntime against PyTorch.

    Needs ``pip install -e .[deploy]``.

    Args:
        model (nn.Module): The SCRIM model, on the CPU.
        cfg (Config): Its config (for the file's metadata).
        input_size (int): Square input size.
        iters (int): Timed runs of each backend.
        warmup (int): Untimed runs first.
        seed (int): Seed of the random image. Defaults to 0.

    Returns:
        dict: What :func:`scrim_mm.deployment.latency_ratio` returns
        (``onnxruntime_ms``, ``torch_ms``, ``ratio``), plus ``onnx_mib``,
        the file size.
    """
    from ..deployment import (
        ONNXRuntimeSCRIM,
        build_metadata,
        export_onnx,
        latency_ratio,
    )

    size = (input_size, input_size)
    num_classes = int(getattr(model.head, 'num_classes', 2))
    batch = make_batch(1, input_size, num_classes, 'cpu', seed)
    model = model.eval()
    with torch.no_grad():
        inputs = model.data_preprocessor(batch(), False)['inputs']
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(
            model,
            osp.join(tmp, 'scrim.onnx'),
            size,
            metadata=build_metadata(cfg, model, size),
        )
        runner = ONNXRuntimeSCRIM(path, num_threads=torch.get_num_threads())
        res = latency_ratio(model, runner, inputs, iters=iters, warmup=warmup)
        res['onnx_mib'] = osp.getsize(path) / 1024.0**2
        del runner
    return res
