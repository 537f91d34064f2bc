# Copyright (c) scrim-mm contributors. All rights reserved.
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.dataset import default_collate
from mmengine.model import BaseModel
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.structures import DataSample

from ..structures import boxes_to_original
from ..utils.cpu_memory import retain_cpu_memory as _retain_cpu_memory
from ..visualization import (
    SCRIMAttentionRecorder,
    draw_regions,
    stage_name,
)
from .model import get_scrim_model


class SCRIMInferencer(ImageClassificationInferencer):
    """mmpretrain's image-classification inferencer, plus SCRIM's regions.

    It predicts like :class:`mmpretrain.apis.ImageClassificationInferencer`
    (same model loading, test pipeline, batching and progress bar) and adds
    to every result:

    * ``topk``: the ``topk`` best classes, ``[{'label', 'class',
      'score'}, ...]``;
    * ``regions``: the selected FPL regions, ``[{'stage', 'box', 'score'},
      ...]``, ``box`` in original-image pixels (x1, y1, x2, y2), ``score``
      the navigator's;
    * ``img_path`` for an image given as a path;
    * ``visualization``: the picture written with ``show_dir`` (see
      :func:`~scrim_mm.visualization.draw_regions`: regions, CPL part
      attentions and the predicted class).

    The class names come from the checkpoint's ``dataset_meta``, else from
    the config's test dataset (see :func:`get_scrim_model`).

    Like the tools, it makes glibc keep freed CPU memory for reuse at
    start-up (:func:`scrim_mm.utils.retain_cpu_memory`; the same results,
    faster CPU steps); ``retain_cpu_memory=False`` or the environment
    variable ``SCRIM_RETAIN_CPU_MEMORY=0`` leaves the allocator alone.

    Args:
        model (str | Config | BaseModel): A model name
            (``mmpretrain.list_models('scrim*')``), a config file, a config
            or a built model (with ``_config``, as ``get_model`` gives).
        pretrained (str | bool, optional): A checkpoint path or URL; True
            for the published weights of a named model. Defaults to True.
        device (str | torch.device, optional): Defaults to None (CUDA when
            available, else the CPU).
        classes (Sequence[str], optional): Override the class names.
            Defaults to None.
        retain_cpu_memory (bool, optional): See above; None follows
            ``SCRIM_RETAIN_CPU_MEMORY`` (on unless it is ``0``). Defaults
            to None.
        **kwargs: Overrides of the model config.

    Example:
        >>> inferencer = SCRIMInferencer(
        ...     'configs/scrim/scrim_r18_demo.py', pretrained='epoch_16.pth')
        >>> result = inferencer('bird.jpg', topk=3, show_dir='vis')[0]
        >>> result['pred_class'], result['topk'], result['regions']
    """

    visualize_kwargs: set = {'show_dir', 'display_size', 'palette'}
    postprocess_kwargs: set = {'topk'}

    def __init__(
        self,
        model: Union[BaseModel, str],
        pretrained: Union[bool, str, None] = True,
        device: Union[str, torch.device, None] = None,
        classes: Optional[Sequence[str]] = None,
        retain_cpu_memory: Optional[bool] = None,
        **kwargs,
    ) -> None:
        _retain_cpu_memory(retain_cpu_memory)
        if not isinstance(model, BaseModel):
            if device is None:
                device = 'cuda' if torch.cuda.is_available() else 'cpu'
            model = get_scrim_model(
                model, pretrained=pretrained, device=device, **kwargs
            )
            pretrained = None
        super().__init__(
            model, pretrained=pretrained, device=device, classes=classes
        )
        fpl = getattr(self.model, 'fpl_head', None)
        neck = getattr(self.model, 'neck', None)
        #: Stage names of the FPL regions and of the CPL attentions.
        self.stage_names = tuple(getattr(fpl, 'stage_names', ()))
        self.attention_stage_names = tuple(
            getattr(neck, 'stage_names', self.stage_names)
        )

    def preprocess(self, inputs: List, batch_size: int = 1):
        """Load and transform the inputs, keeping the image paths.

        Args:
            inputs (list): Image paths or BGR arrays.
            batch_size (int): Images per batch. Defaults to 1.

        Yields:
            dict: Collated batches for ``model.test_step``.
        """

        def load(item) -> dict:
            img = mmcv.imread(item)
            if img is None:
                raise ValueError(f'Failed to read the image {item}.')
            shape = img.shape[:2]
            data = dict(img=img, img_shape=shape, ori_shape=shape)
            if isinstance(item, str):
                data['img_path'] = item
            return self.pipeline(data)

        yield from map(
            default_collate,
            self._get_chunk_data(map(load, inputs), batch_size),
        )

    @torch.no_grad()
    def forward(self, inputs: dict, **kwargs) -> List[DataSample]:
        """Predict one batch and attach its CPL part-attention maps.

        Args:
            inputs (dict): A collated batch.

        Returns:
            list[DataSample]: The predictions, on the CPU, each with a
            ``part_attentions`` field (one (P, H_s, W_s) map per CPL stage)
            when the model has a CPL neck.
        """
        with SCRIMAttentionRecorder(self.model) as recorder:
            preds = self.model.test_step(inputs)
            maps = recorder.pop()
        preds = [pred.cpu() for pred in preds]
        if maps is not None:
            for i, pred in enumerate(preds):
                pred.set_field(tuple(m[i] for m in maps), 'part_attentions')
        return preds

    def visualize(
        self,
        ori_inputs: List,
        preds: List[DataSample],
        show_dir: Optional[str] = None,
        display_size: int = 320,
        palette: bool = False,
    ) -> Optional[List[Dict]]:
        """Write one picture of the regions per image into ``show_dir``.

        Args:
            ori_inputs (list): The inputs (paths or BGR arrays).
            preds (list[DataSample]): Their predictions.
            show_dir (str, optional): The folder; None draws nothing.
                Defaults to None.
            display_size (int): See :func:`draw_regions`. Defaults to 320.
            palette (bool): See :func:`draw_regions`. Defaults to False.

        Returns:
            list[dict] | None: What :func:`draw_regions` returns per image,
            without the picture, plus ``out_file``.
        """
        if show_dir is None:
            return None
        drawn = []
        for i, (item, pred) in enumerate(zip(ori_inputs, preds)):
            if isinstance(item, str):
                image = mmcv.imread(item, channel_order='rgb')
                name = osp.splitext(osp.basename(item))[0]
            else:
                image = np.ascontiguousarray(mmcv.imread(item)[..., ::-1])
                name = f'{i:06d}'
            out_file = osp.join(show_dir, f'{name}.png')
            info = draw_regions(
                image,
                pred,
                classes=self.classes,
                stage_names=self.stage_names,
                attention_stage_names=self.attention_stage_names,
                out_file=out_file,
                display_size=display_size,
                palette=palette,
            )
            info.pop('image')
            info['out_file'] = out_file
            drawn.append(info)
        return drawn

    def _class_name(self, label: int) -> Optional[str]:
        if self.classes is None or not 0 <= label < len(self.classes):
            return None
        return str(self.classes[label])

    def postprocess(
        self,
        preds: List[DataSample],
        visualization: Optional[List[Dict]],
        return_datasamples: bool = False,
        topk: int = 5,
    ) -> Union[List[Dict], List[DataSample]]:
        """Turn the predictions into result dicts.

        Args:
            preds (list[DataSample]): The predictions.
            visualization (list[dict], optional): From :meth:`visualize`.
            return_datasamples (bool): Return ``preds`` as they are.
                Defaults to False.
            topk (int): Number of best classes in ``topk``. Defaults to 5.

        Returns:
            list[dict] | list[DataSample]: One result per image.
        """
        if return_datasamples:
            return preds
        if int(topk) < 1:
            raise ValueError(f'topk={topk}: expected a positive integer.')
        results = super().postprocess(preds, None)
        for i, (result, pred) in enumerate(zip(results, preds)):
            scores, labels = pred.pred_score.topk(
                min(int(topk), pred.pred_score.numel())
            )
            result['topk'] = [
                {
                    'label': int(j),
                    'score': float(s),
                    'class': self._class_name(int(j)),
                }
                for s, j in zip(scores, labels)
            ]
            if 'img_path' in pred:
                result['img_path'] = pred.img_path
            if 'pred_boxes' in pred:
                boxes = boxes_to_original(pred.pred_boxes, pred.metainfo)
                result['regions'] = [
                    dict(
                        stage=stage_name(self.stage_names, int(s)),
                        box=[round(float(v), 2) for v in box],
                        score=float(score),
                    )
                    for box, score, s in zip(
                        boxes, pred.pred_box_scores, pred.pred_box_stages
                    )
                ]
            if visualization is not None:
                result['visualization'] = visualization[i]['out_file']
        return results
