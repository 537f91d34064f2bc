# Copyright (c) scrim-mm contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.evaluation.metrics import Accuracy
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..necks.cpl_neck import CPLOutput
from ..ops import part_attention_maps, unpack_targets
from ..wiring import default_stage_names


@MODELS.register_module()
class SCRIMHead(ClsHead):
    """Fusion head of SCRIM with the CPL classifiers and part losses.

    Classifies the fusion of the global feature (GAP of the last map), the
    CPL part vectors and the FPL part features. As in NTS-Net, a raw
    classifier sees the global feature; as in Cross-X (ICCV 2019), each CPL
    stage has a part classifier on ``concat(f_1..f_P)`` and a metric loss.
    ``num_fpl_parts=0`` is the CPL-only mode; :class:`SCRIMClassifier`
    derives the wiring.

    Args:
        num_classes (int): Number of classes.
        part_channels (Sequence[int]): Channels of the part vectors of
            every CPL stage (the neck's ``in_channels``).
        in_channels (int, optional): Global feature channels (base configs
            set it): None or ``part_channels[-1]``. Defaults to None.
        num_parts (int): CPL parts ``P`` per stage. Defaults to 2.
        fpl_channels (int, optional): FPL feature channels. Defaults to None.
        num_fpl_parts (int): FPL part features (``S * K``) of the fusion;
            0 is the CPL-only mode. Defaults to 0.
        loss (dict): Loss of the fused logits.
            Defaults to ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        raw_loss (dict, optional): Loss of the raw logits, None for none.
            Defaults to ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        cpl_loss (dict, optional): Loss of the CPL classifiers, None for none.
            Defaults to ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        contrastive_loss (dict, optional): Part metric loss of every stage;
            None disables it. Defaults to ``dict(type='PartContrastiveLoss',
            mode='mamc', loss_weight=1.0)``.
        contrastive_weights (Sequence[float], optional): Per-stage weights;
            None halves them stage by stage from 0.5 on the last, Cross-X's
            ``(0.25, 0.5)`` for two. Defaults to None.
        diversity_loss (dict, optional): Keeps the ``P`` parts of a stage
            apart; None disables it.
            Defaults to ``dict(type='PartDiversityLoss', loss_weight=1.0)``.
        diversity_weights (Sequence[float], optional): Per-stage weights;
            None is 0.2 on the last stage, x1.5 per earlier one: (0.3, 0.2)
            for two (``docs/part_benchmark.md``). Defaults to None.
        pred_mode (str): Predict from the ``'fused'`` logits or the ``'sum'``
            of all (Cross-X). Defaults to ``'fused'``.
        stage_names (Sequence[str], optional): CPL stage names of the loss
            keys; None is ``('s3', 's4')`` for two stages. Defaults to None.
        topk (int | Sequence[int]): Top-k of ``cal_acc``. Defaults to (1, ).
        cal_acc (bool): Whether to log the training accuracy of the fused
            logits. Defaults to False.
        init_cfg (dict, optional): Initialisation config. Defaults to
            ``dict(type='Normal', layer='Linear', std=0.01)``.
    """

    PRED_MODES = ('fused', 'sum')

    def __init__(
        self,
        num_classes: int,
        part_channels: Sequence[int],
        in_channels: Optional[int] = None,
        num_parts: int = 2,
        fpl_channels: Optional[int] = None,
        num_fpl_parts: int = 0,
        loss: dict = dict(  # noqa: B006
            type='CrossEntropyLoss', loss_weight=1.0
        ),
        raw_loss: Optional[dict] = dict(  # noqa: B006
            type='CrossEntropyLoss', loss_weight=1.0
        ),
        cpl_loss: Optional[dict] = dict(  # noqa: B006
            type='CrossEntropyLoss', loss_weight=1.0
        ),
        contrastive_loss: Optional[dict] = dict(  # noqa: B006
            type='PartContrastiveLoss', mode='mamc', loss_weight=1.0
        ),
        contrastive_weights: Optional[Sequence[float]] = None,
        diversity_loss: Optional[dict] = dict(  # noqa: B006
            type='PartDiversityLoss', loss_weight=1.0
        ),
        diversity_weights: Optional[Sequence[float]] = None,
        pred_mode: str = 'fused',
        stage_names: Optional[Sequence[str]] = None,
        topk: Union[int, Tuple[int, ...]] = (1,),
        cal_acc: bool = False,
        init_cfg: Optional[dict] = dict(  # noqa: B006
            type='Normal', layer='Linear', std=0.01
        ),
    ) -> None:
        super().__init__(
            loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg
        )
        self.part_channels = tuple(part_channels)
        num_stages = len(self.part_channels)
        if contrastive_weights is None:
            contrastive_weights = [0.5**i for i in range(num_stages, 0, -1)]
        if diversity_weights is None:
            diversity_weights = [0.2 * 1.5**i for i in range(num_stages)][::-1]
        if stage_names is None:
            stage_names = default_stage_names(num_stages)
        self.stage_names = tuple(stage_names)
        self.contrastive_weights = tuple(contrastive_weights)
        self.diversity_weights = tuple(diversity_weights)
        if num_fpl_parts > 0 and fpl_channels is None:
            raise ValueError(
                f'fpl_channels=None: num_fpl_parts={num_fpl_parts} FPL part '
                'features need their channels; set fpl_channels, or '
                'num_fpl_parts=0 for the CPL-only head'
            )
        if num_classes < 1:
            raise ValueError(
                f'num_classes={num_classes}: must be positive; set the '
                'number of classes of the dataset'
            )
        if num_fpl_parts < 0:
            raise ValueError(
                f'num_fpl_parts={num_fpl_parts}: must be >= 0; set S x K '
                'of the FPL head, or 0 for the CPL-only mode'
            )
        if in_channels not in (None, self.part_channels[-1]):
            raise ValueError(
                f'in_channels={in_channels}: the global feature is the last '
                f'CPL stage map, of part_channels[-1]='
                f'{self.part_channels[-1]} channels; leave in_channels unset'
            )
        if pred_mode not in self.PRED_MODES:
            raise ValueError(
                f'pred_mode={pred_mode!r}: unknown; use one of '
                f'{self.PRED_MODES}'
            )
        for key in ('stage_names', 'contrastive_weights', 'diversity_weights'):
            value = getattr(self, key)
            if len(value) != num_stages:
                raise ValueError(
                    f'{key}={value}: {len(value)} values for the '
                    f'{num_stages} stages of part_channels='
                    f'{self.part_channels}; give one per stage'
                )

        self.num_classes = num_classes
        self.in_channels = in_channels = self.part_channels[-1]
        self.num_parts = num_parts
        self.fpl_channels = fpl_channels
        self.num_fpl_parts = num_fpl_parts
        self.pred_mode = pred_mode
        self.fused_channels = (
            in_channels
            + num_parts * sum(self.part_channels)
            + num_fpl_parts * (fpl_channels or 0)
        )
        self.fc = nn.Linear(self.fused_channels, num_classes)
        self.raw_loss_module = raw_fc = cpl_fcs = None
        if raw_loss is not None:
            self.raw_loss_module = MODELS.build(raw_loss)
            raw_fc = nn.Linear(in_channels, num_classes)
        self.raw_fc = raw_fc
        self.cpl_loss_module = None
        if cpl_loss is not None:
            self.cpl_loss_module = MODELS.build(cpl_loss)
            cpl_fcs = nn.ModuleList(
                nn.Linear(num_parts * c, num_classes)
                for c in self.part_channels
            )
        self.cpl_fcs = cpl_fcs
        self.contrastive_module = (
            None
            if contrastive_loss is None
            else MODELS.build(contrastive_loss)
        )
        self.diversity_module = (
            None if diversity_loss is None else MODELS.build(diversity_loss)
        )

    def _check_inputs(self, feats: CPLOutput) -> None:
        """Check the neck output (hand-set in a plain ``ImageClassifier``)."""
        expected = tuple((self.num_parts, c) for c in self.part_channels)
        got = tuple(tuple(v.shape[1:]) for v in feats.part_vecs)
        if got != expected:
            raise ValueError(
                f'model.head.part_channels={self.part_channels}, num_parts='
                f'{self.num_parts}: the neck gives part vectors of shapes '
                f"(P, C) {got}; set them to the neck's num_parts and "
                'in_channels'
            )

    def pre_logits(
        self, feats: CPLOutput, fpl_feats: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The fused feature.

        Args:
            feats (CPLOutput): The output of :class:`CPLNeck`.
            fpl_feats (torch.Tensor, optional): FPL part features
                ``(B, S, K, fpl_channels)``, ``S * K = num_fpl_parts``, in
                pick order; None in the CPL-only mode. Defaults to None.

        Returns:
            torch.Tensor: ``(B, fused_channels)``: the GAP of the last stage
            map, the CPL part vectors and ``fpl_feats``, concatenated.
        """
        self._check_inputs(feats)
        return self._fuse(feats, fpl_feats, feats.feats[-1].mean(dim=(2, 3)))

    def _fuse(
        self,
        feats: CPLOutput,
        fpl_feats: Optional[torch.Tensor],
        global_feat: torch.Tensor,
    ) -> torch.Tensor:
        parts = [global_feat, *(v.flatten(1) for v in feats.part_vecs)]
        if self.num_fpl_parts > 0:
            parts.append(fpl_feats.flatten(1))
        return torch.cat(parts, dim=1)

    def forward(
        self, feats: CPLOutput, fpl_feats: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The fused logits ``(B, num_classes)``; see :meth:`pre_logits`."""
        return self.fc(self.pre_logits(feats, fpl_feats))

    def forward_all(
        self, feats: CPLOutput, fpl_feats: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """Every logits of the head, each computed once.

        Args:
            feats (CPLOutput): The output of :class:`CPLNeck`.
            fpl_feats (torch.Tensor, optional): See :meth:`pre_logits`.
                Defaults to None.

        Returns:
            dict[str, torch.Tensor]: ``(B, num_classes)`` logits
            ``'fused'``, ``'raw'`` and ``'cpl_<stage>'`` (those enabled).
        """
        self._check_inputs(feats)
        global_feat = feats.feats[-1].mean(dim=(2, 3))
        logits = {'fused': self.fc(self._fuse(feats, fpl_feats, global_feat))}
        if self.raw_fc is not None:
            logits['raw'] = self.raw_fc(global_feat)
        if self.cpl_fcs is not None:
            for name, vecs, fc in zip(
                self.stage_names, feats.part_vecs, self.cpl_fcs
            ):
                logits[f'cpl_{name}'] = fc(vecs.flatten(1))
        return logits

    def pred_logits(self, logits: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The logits a prediction is the softmax of, by ``pred_mode``.

        Args:
            logits (dict[str, torch.Tensor]): From :meth:`forward_all`.

        Returns:
            torch.Tensor: ``(B, num_classes)`` fused or summed logits.
        """
        if self.pred_mode == 'fused':
            return logits['fused']
        return sum(logits.values())

    def loss(
        self,
        feats: CPLOutput,
        data_samples: List[DataSample],
        fpl_feats: Optional[torch.Tensor] = None,
        logits: Optional[Dict[str, torch.Tensor]] = None,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        """Compute the losses of the head.

        Args:
            feats (CPLOutput): The output of :class:`CPLNeck`.
            data_samples (List[DataSample]): With ``gt_label`` or
                ``gt_score`` (see :func:`~scrim_mm.models.ops.unpack_targets`).
            fpl_feats (torch.Tensor, optional): See :meth:`pre_logits`.
                Defaults to None.
            logits (dict[str, torch.Tensor], optional): The output of
                :meth:`forward_all`, if run already. Defaults to None.
            **kwargs: Passed to the cross-entropy loss modules.

        Returns:
            dict[str, torch.Tensor]: ``loss_fused``, ``loss_raw``,
            ``loss_{cpl,contrast,diversity}_<stage>`` (those enabled) and,
            with ``cal_acc``, ``accuracy_top-<k>`` of the fused logits.
        """
        if logits is None:
            logits = self.forward_all(feats, fpl_feats)
        target, labels = unpack_targets(data_samples)
        batch = logits['fused'].size(0)

        losses = dict()
        losses['loss_fused'] = self.loss_module(
            logits['fused'], target, avg_factor=batch, **kwargs
        )
        if 'raw' in logits:
            losses['loss_raw'] = self.raw_loss_module(
                logits['raw'], target, avg_factor=batch, **kwargs
            )
        for i, name in enumerate(self.stage_names):
            if self.cpl_loss_module is not None:
                losses[f'loss_cpl_{name}'] = self.cpl_loss_module(
                    logits[f'cpl_{name}'], target, avg_factor=batch, **kwargs
                )
            if self.contrastive_module is not None:
                losses[f'loss_contrast_{name}'] = self.contrastive_weights[
                    i
                ] * self.contrastive_module(feats.part_embeds[i], labels)
            if self.diversity_module is not None:
                losses[f'loss_diversity_{name}'] = self.diversity_weights[
                    i
                ] * self.diversity_module(
                    part_attention_maps(feats.feats[i], feats.excitations[i])
                )

        if self.cal_acc:
            if target.ndim != 1:
                raise ValueError(
                    'cal_acc needs hard labels; it is pointless with batch '
                    'augmentations such as Mixup or CutMix.'
                )
            topk = (self.topk,) if isinstance(self.topk, int) else self.topk
            acc = Accuracy.calculate(logits['fused'], target, topk=topk)
            # One threshold: each top-k gives a one-item list.
            losses.update(
                {f'accuracy_top-{k}': a[0] for k, a in zip(topk, acc)}
            )
        return losses

    def predict(
        self,
        feats: CPLOutput,
        data_samples: Optional[List[Optional[DataSample]]] = None,
        fpl_feats: Optional[torch.Tensor] = None,
        logits: Optional[Dict[str, torch.Tensor]] = None,
    ) -> List[DataSample]:
        """Predict the classes of a batch.

        Args:
            feats (CPLOutput): The output of :class:`CPLNeck`.
            data_samples (List[DataSample | None], optional): Samples to
                fill; created when None. Defaults to None.
            fpl_feats (torch.Tensor, optional): See :meth:`pre_logits`.
                Defaults to None.
            logits (dict[str, torch.Tensor], optional): The output of
                :meth:`forward_all`, if run already. Defaults to None.

        Returns:
            List[DataSample]: With ``pred_score`` (the softmax of
            :meth:`pred_logits`) and ``pred_label``.
        """
        if logits is None:
            logits = self.forward_all(feats, fpl_feats)
        return self._get_predictions(self.pred_logits(logits), data_samples)
