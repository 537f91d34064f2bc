# Copyright (c) scrim-mm contributors. All rights reserved.
"""Deploy SCRIM: ONNX export with its regions and an onnxruntime runner.

Needs the ``deploy`` extra (``pip install -e .[deploy]``: onnx,
onnxruntime, onnxscript); importing this package works without it, and
each function that needs a package says so.
"""

from .export_wrapper import OUTPUT_NAMES, SCRIMExportWrapper, check_exportable
from .onnx_export import (
    DEFAULT_OPSET,
    METADATA_PREFIX,
    MIN_OPSET,
    build_metadata,
    export_onnx,
    input_size_from_config,
    require_deploy_packages,
)
from .ort_inferencer import SCRIMONNXInferencer
from .ort_model import ONNXRuntimeSCRIM, read_metadata
from .verify import (
    BOX_TOL,
    SCORE_TOL,
    compare_outputs,
    latency_ratio,
    parity_ok,
    sample_inputs,
)

__all__ = [
    'OUTPUT_NAMES',
    'SCRIMExportWrapper',
    'check_exportable',
    'DEFAULT_OPSET',
    'METADATA_PREFIX',
    'MIN_OPSET',
    'build_metadata',
    'export_onnx',
    'input_size_from_config',
    'require_deploy_packages',
    'SCRIMONNXInferencer',
    'ONNXRuntimeSCRIM',
    'read_metadata',
    'BOX_TOL',
    'SCORE_TOL',
    'compare_outputs',
    'latency_ratio',
    'parity_ok',
    'sample_inputs',
]
