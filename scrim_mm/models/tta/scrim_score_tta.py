# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import List

from mmpretrain.models import AverageClsScoreTTA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class SCRIMAverageClsScoreTTA(AverageClsScoreTTA):
    """Average the class scores of the views; regions of the plain view.

    Test-time augmentation for SCRIM ("Spatial-aware collaborative region
    mining for fine-grained recognition", Multimedia Tools and
    Applications, 2024), used by ``tools/test.py --tta``. mmpretrain's
    :class:`AverageClsScoreTTA` copies the first view's sample and replaces
    only its ``pred_score``: ``pred_label`` stays the first view's, and the
    regions (``pred_boxes``, ``pred_box_scores``, ``pred_box_stages``) and
    metainfo are those of whichever view comes first (the flipped one in
    mmpretrain's default ``tta_pipeline``). This class:

    * averages ``pred_score`` over the views, as mmpretrain does;
    * sets ``pred_label`` to the arg-max of the average;
    * keeps every other field and the metainfo of the first view that is
      not flipped (``flip`` false or missing in its metainfo), else of the
      first view, so the regions are the un-flipped image's and map back
      to the original image as without TTA.

    Args:
        module (dict | nn.Module): The tested model.
        data_preprocessor (dict | nn.Module, optional): See mmengine's
            ``BaseTTAModel``. Defaults to None.
    """

    def _merge_single_sample(
        self, data_samples: List[DataSample]
    ) -> DataSample:
        """Merge the views of one image.

        Args:
            data_samples (List[DataSample]): The predictions of its views.

        Returns:
            DataSample: The merged prediction.
        """
        base = next(
            (s for s in data_samples if not s.metainfo.get('flip', False)),
            data_samples[0],
        )
        merged = base.new()
        score = sum(s.pred_score for s in data_samples) / len(data_samples)
        merged.set_pred_score(score)
        merged.set_pred_label(score.argmax(dim=0, keepdim=True))
        return merged
