# Copyright (c) scrim-mm contributors. All rights reserved.
"""SCRIM's inferencer on an exported ONNX file."""

from typing import Optional, Sequence, Union

from mmengine.config import Config

from ..apis import SCRIMInferencer
from .ort_model import ONNXRuntimeSCRIM

__all__ = ['SCRIMONNXInferencer']


class SCRIMONNXInferencer(SCRIMInferencer):
    """:class:`SCRIMInferencer` running an exported file on onnxruntime.

    The same loading, test pipeline, batching, region mapping to
    original-image pixels and result dicts as the PyTorch inferencer; the
    forward pass is :class:`ONNXRuntimeSCRIM`'s. Without a config, the
    pipeline, normalisation and class names come from the file's metadata.
    Part attentions (``show_dir`` pictures) are not in the graph, so the
    pictures show the regions only.

    Args:
        onnx_file (str): The exported file.
        config (str | Config, optional): A config overriding the file's
            test pipeline and normalisation. Defaults to None.
        classes (Sequence[str], optional): Override the class names.
            Defaults to None.
        providers (Sequence[str], optional): onnxruntime execution
            providers. Defaults to None (the CPU).
        num_threads (int, optional): onnxruntime intra-op threads.
            Defaults to None (``torch.get_num_threads()``).

    Example:
        >>> inferencer = SCRIMONNXInferencer('scrim.onnx')
        >>> result = inferencer('bird.jpg', topk=3)[0]
        >>> result['pred_class'], result['regions']
    """

    def __init__(
        self,
        onnx_file: str,
        config: Union[str, Config, None] = None,
        classes: Optional[Sequence[str]] = None,
        providers: Optional[Sequence[str]] = None,
        num_threads: Optional[int] = None,
    ) -> None:
        model = ONNXRuntimeSCRIM(
            onnx_file,
            config=config,
            providers=providers,
            num_threads=num_threads,
        )
        super().__init__(model, pretrained=None, classes=classes)
        self.stage_names = model.stage_names
        self.attention_stage_names = model.stage_names
