# Copyright (c) scrim-mm contributors. All rights reserved.
import os.path as osp
import warnings
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.dist import get_world_size, is_main_process
from mmengine.fileio import get as get_bytes
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample

from .attention_recorder import SCRIMAttentionRecorder
from .region_drawer import draw_regions


@HOOKS.register_module()
class SCRIMRegionVisualizationHook(Hook):
    """Save a picture of the mined regions of every test image.

    During ``runner.test()`` each ``interval``-th test image gets
    ``out_dir/<image stem>.png`` (``<index>.png`` for an image without a
    file), drawn by :func:`~scrim_mm.visualization.draw_regions`: the
    selected FPL regions of every stage on the original image (mapped back
    through the sample's metainfo), their navigator scores, the CPL
    part-attention maps (recorded from the neck of the same forward pass,
    no second pass) and the predicted and true classes. ``tools/test.py
    --show-dir DIR`` adds this hook.

    A model without an FPL head or a CPL neck still gets the picture, with
    whatever of them it has. Under test-time augmentation (a TTA model
    such as ``SCRIMAverageClsScoreTTA``) the regions of the merged
    prediction are drawn without part attentions: those of the views
    cannot be told apart. In distributed testing only rank 0 draws (its
    share of the test set), because mmengine's drawing is rank-0 only.

    Args:
        out_dir (str): Folder of the pictures (created; a relative path is
            relative to the working directory, as in mmpretrain's
            ``VisualizationHook``).
        interval (int): Draw every ``interval``-th test image.
            Defaults to 1.
        display_size (int): Shorter side the image and the network-input
            view are drawn at. Defaults to 320.
        palette (bool): Write 256-colour PNGs (several times smaller).
            Defaults to False.
    """

    priority = 'LOW'

    def __init__(
        self,
        out_dir: str,
        interval: int = 1,
        display_size: int = 320,
        palette: bool = False,
    ) -> None:
        if not out_dir:
            raise ValueError(
                'SCRIMRegionVisualizationHook needs out_dir, the folder of '
                'the pictures.'
            )
        if int(interval) < 1:
            raise ValueError(
                f'SCRIMRegionVisualizationHook interval={interval}: expected '
                'a positive integer.'
            )
        self.out_dir = out_dir
        self.interval = int(interval)
        self.display_size = display_size
        self.palette = palette
        self._recorder: Optional[SCRIMAttentionRecorder] = None
        self._index = 0
        self._classes = None
        self._stage_names: Sequence[str] = ()
        self._tta = False

    def before_test(self, runner) -> None:
        """Attach the attention recorder and read classes and stages."""
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        self._tta = isinstance(model, BaseTTAModel)
        if self._tta:
            model = model.module
        fpl = getattr(model, 'fpl_head', None)
        self._recorder = SCRIMAttentionRecorder(model)
        if not self._tta:
            self._recorder.attach()
        self._stage_names = tuple(
            getattr(fpl, 'stage_names', None) or self._recorder.stage_names
        )
        dataset = getattr(runner.test_dataloader, 'dataset', None)
        meta = getattr(dataset, 'metainfo', None) or {}
        self._classes = meta.get('classes')
        self._index = 0
        if get_world_size() > 1:
            warnings.warn(
                'SCRIMRegionVisualizationHook: distributed test, only the '
                'images of rank 0 are drawn.'
            )

    @staticmethod
    def _original_image(sample: DataSample, raw) -> tuple:
        """The original image (RGB) and, if not the sample's, its metainfo.

        Without an image file, the network input itself (BGR, as the
        pipeline gives it) is drawn with an identity mapping.
        """
        path = sample.get('img_path')
        if path is not None:
            image = mmcv.imfrombytes(get_bytes(path), channel_order='rgb')
            return image, None
        image = raw.permute(1, 2, 0).cpu().numpy().astype(np.uint8)
        shape = image.shape[:2]
        return image[..., ::-1].copy(), dict(ori_shape=shape, img_shape=shape)

    def after_test_iter(
        self,
        runner,
        batch_idx: int,
        data_batch: Optional[dict] = None,
        outputs: Optional[Sequence[DataSample]] = None,
    ) -> None:
        """Draw every ``interval``-th sample of the batch."""
        recorder = self._recorder
        maps = recorder.pop() if recorder is not None else None
        inputs = data_batch['inputs']
        if self._tta:  # one list of images per view
            inputs = inputs[0]
        for i, sample in enumerate(outputs or []):
            index = self._index
            self._index += 1
            if index % self.interval or not is_main_process():
                continue
            image, meta = self._original_image(sample, inputs[i])
            sample = sample.cpu()
            path = sample.get('img_path')
            stem = (
                osp.splitext(osp.basename(path))[0] if path else f'{index:06d}'
            )
            draw_regions(
                image,
                sample,
                classes=self._classes,
                stage_names=self._stage_names,
                attention_maps=None if maps is None else [m[i] for m in maps],
                attention_stage_names=recorder.stage_names
                if recorder is not None
                else None,
                metainfo=meta,
                out_file=osp.join(self.out_dir, f'{stem}.png'),
                display_size=self.display_size,
                palette=self.palette,
            )

    def after_test(self, runner) -> None:
        """Remove the recorder's hook from the model."""
        if self._recorder is not None:
            self._recorder.detach()
            self._recorder = None
