# Copyright (c) scrim-mm contributors. All rights reserved.
"""Run an exported SCRIM ONNX file like a model: DataSamples out."""

import json
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample

from .export_wrapper import OUTPUT_NAMES
from .onnx_export import METADATA_PREFIX, require_deploy_packages

__all__ = ['ONNXRuntimeSCRIM', 'read_metadata']


def read_metadata(onnx_file: str) -> Dict:
    """The ``scrim.*`` metadata of an exported file, decoded.

    Args:
        onnx_file (str): The ``.onnx`` file.

    Returns:
        dict: Key (without ``scrim.``) -> value; empty for a file not
        written by :func:`export_onnx`.
    """
    require_deploy_packages('onnxruntime')
    import onnxruntime as ort

    session = ort.InferenceSession(
        onnx_file, providers=['CPUExecutionProvider']
    )
    return _decode(session.get_modelmeta().custom_metadata_map)


def _decode(props: Dict[str, str]) -> Dict:
    return {
        k[len(METADATA_PREFIX) :]: json.loads(v)
        for k, v in props.items()
        if k.startswith(METADATA_PREFIX)
    }


class ONNXRuntimeSCRIM(BaseModel):
    """An exported SCRIM model on onnxruntime, with mmpretrain's interface.

    ``test_step`` normalises a collated batch with the model's
    ``ClsDataPreprocessor`` (as PyTorch does), runs the ONNX graph and
    returns one ``DataSample`` per image with ``pred_score``,
    ``pred_label``, ``pred_boxes``, ``pred_box_scores`` and
    ``pred_box_stages``, the fields of :meth:`SCRIMClassifier.predict`. So
    mmpretrain's inferencers, and :class:`SCRIMInferencer` with its region
    mapping, run it unchanged.

    The test pipeline, the normalisation, the class names and the stage
    names come from the file's metadata (:func:`build_metadata`); a config
    given here overrides the pipeline and the normalisation (and gives the
    class names when the file has none).

    Args:
        onnx_file (str): The exported file.
        config (str | Config, optional): A config whose test pipeline and
            data preprocessor to use. Defaults to None (the metadata).
        providers (Sequence[str], optional): onnxruntime execution
            providers. Defaults to None (``CPUExecutionProvider``).
        num_threads (int, optional): onnxruntime intra-op threads.
            Defaults to None (as many as torch uses,
            ``torch.get_num_threads()``).
    """

    def __init__(
        self,
        onnx_file: str,
        config: Union[str, Config, None] = None,
        providers: Optional[Sequence[str]] = None,
        num_threads: Optional[int] = None,
    ) -> None:
        require_deploy_packages('onnxruntime')
        import onnxruntime as ort
        from mmpretrain.registry import MODELS

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(
            num_threads or torch.get_num_threads()
        )
        session = ort.InferenceSession(
            onnx_file,
            sess_options=options,
            providers=list(providers or ['CPUExecutionProvider']),
        )
        meta = _decode(session.get_modelmeta().custom_metadata_map)
        pipeline = meta.get('test_pipeline')
        preprocessor = meta.get('data_preprocessor')
        classes = meta.get('classes')
        if config is not None:
            from ..apis import config_classes
            from ..utils.config_check import dataset_levels

            cfg = (
                Config.fromfile(config) if isinstance(config, str) else config
            )
            loader = cfg.get('test_dataloader') or {}
            levels = [{}] + list(dataset_levels(loader.get('dataset')))
            dataset = levels[-1]
            pipeline = dataset.get('pipeline')
            preprocessor = dict(
                cfg.model.get('data_preprocessor')
                or cfg.get('data_preprocessor')
                or {}
            )
            preprocessor.setdefault('type', 'ClsDataPreprocessor')
            if classes is None:
                classes = config_classes(cfg)
        if pipeline is None or preprocessor is None:
            raise ValueError(
                f'{onnx_file} has no SCRIM metadata (scrim.test_pipeline, '
                'scrim.data_preprocessor): it was not written by '
                'tools/deployment/pytorch2onnx.py; give the config of the '
                'model (--config) for its test pipeline.'
            )
        super().__init__(data_preprocessor=MODELS.build(preprocessor))
        names = [o.name for o in session.get_outputs()]
        if names != list(OUTPUT_NAMES):
            raise ValueError(
                f'{onnx_file} has the outputs {names}; a SCRIM export has '
                f'{list(OUTPUT_NAMES)}.'
            )
        self.session = session
        self.onnx_file = onnx_file
        self.metadata = meta
        shape = session.get_inputs()[0].shape
        self.input_name = session.get_inputs()[0].name
        #: Fixed batch size of the graph, None when it is dynamic.
        self.batch_size = shape[0] if isinstance(shape[0], int) else None
        #: (H, W) the graph takes.
        self.input_size = tuple(int(v) for v in shape[2:])
        self.stage_names = tuple(meta.get('stage_names') or ())
        # What mmpretrain's inferencers read from a model.
        self._config = Config(
            dict(test_dataloader=dict(dataset=dict(pipeline=pipeline)))
        )
        self._dataset_meta = dict(classes=classes)

    @property
    def dataset_meta(self) -> Dict:
        """dict: ``classes`` (None when unknown)."""
        return self._dataset_meta

    def run(self, inputs: torch.Tensor) -> Dict[str, np.ndarray]:
        """Run the graph on a normalised batch.

        A graph of fixed batch 1 is run image by image.

        Args:
            inputs (Tensor): (B, 3, H, W), as the data preprocessor gives.

        Returns:
            dict[str, np.ndarray]: The outputs by name.

        Raises:
            ValueError: The images are not of the export's input size.
        """
        if tuple(inputs.shape[-2:]) != self.input_size:
            h, w = self.input_size
            raise ValueError(
                f'{self.onnx_file} takes {h}x{w} inputs (--input-size of '
                f'the export) but the test pipeline gave '
                f'{inputs.shape[-2]}x{inputs.shape[-1]}: export again with '
                '--input-size matching the pipeline, or give a config '
                'whose test pipeline gives that size.'
            )
        array = inputs.detach().cpu().float().contiguous().numpy()
        step = self.batch_size or len(array)
        chunks = [
            self.session.run(None, {self.input_name: array[i : i + step]})
            for i in range(0, len(array), step)
        ]
        return {
            name: np.concatenate([c[j] for c in chunks])
            for j, name in enumerate(OUTPUT_NAMES)
        }

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None,
        mode: str = 'predict',
    ) -> List[DataSample]:
        """Predict a batch (``mode='predict'`` only).

        Args:
            inputs (Tensor): The normalised batch.
            data_samples (List[DataSample], optional): Filled in place.
            mode (str): Must be ``'predict'``.

        Returns:
            List[DataSample]: One per image.
        """
        if mode != 'predict':
            raise RuntimeError(
                f'ONNXRuntimeSCRIM runs mode="predict" only, got {mode!r}.'
            )
        out = {k: torch.from_numpy(v) for k, v in self.run(inputs).items()}
        if data_samples is None:
            data_samples = [DataSample() for _ in range(len(inputs))]
        for i, sample in enumerate(data_samples):
            if sample is None:
                sample = data_samples[i] = DataSample()
            score = out['scores'][i]
            sample.set_pred_score(score)
            sample.set_pred_label(score.argmax(dim=0, keepdim=True))
            sample.set_field(out['boxes'][i], 'pred_boxes', dtype=torch.Tensor)
            sample.set_field(
                out['box_scores'][i], 'pred_box_scores', dtype=torch.Tensor
            )
            sample.set_field(
                out['box_stages'][i].long(),
                'pred_box_stages',
                dtype=torch.Tensor,
            )
        return data_samples
