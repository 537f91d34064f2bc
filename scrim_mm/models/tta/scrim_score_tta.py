# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import List

from mmpretrain.models import AverageClsScoreTTA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class SCRIMAverageClsScoreTTA(AverageClsScoreTTA):
    """Average the class scores of the views; regions of the plain view.

    For ``tools/test.py --tta``. mmpretrain's :class:`AverageClsScoreTTA`
    replaces only ``pred_score`` of the first view's sample (the flipped
    one in the default ``tta_pipeline``). This averages ``pred_score``,
    sets ``pred_label`` to its arg-max and keeps the other fields and
    metainfo of the first un-flipped view (else the first), so the regions
    map back to the original image as without TTA.

    Args:
        module (dict | nn.Module): The tested model.
        data_preprocessor (dict | nn.Module, optional): See mmengine's
            ``BaseTTAModel``. Defaults to None.
    """

    def _merge_single_sample(
        self, data_samples: List[DataSample]
    ) -> DataSample:
        """Merge the predictions of the views of one image."""
        base = next(
            (s for s in data_samples if not s.metainfo.get('flip', False)),
            data_samples[0],
        )
        merged = base.new()
        score = sum(s.pred_score for s in data_samples) / len(data_samples)
        merged.set_pred_score(score)
        merged.set_pred_label(score.argmax(dim=0, keepdim=True))
        return merged
