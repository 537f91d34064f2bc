# Copyright (c) scrim-mm contributors. All rights reserved.
import json
import logging
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmpretrain.registry import METRICS
from torchvision.ops import box_area

from ...structures import boxes_to_original, input_geometry
from ..functional import (
    object_hits,
    part_distances,
    part_hits,
    random_derangement,
    select_stage_regions,
)

# Row keys, keypoints (M, P, 2), their visibility (M, P), object boxes (M, 4).
_Annotations = Tuple[List[str], np.ndarray, np.ndarray, np.ndarray]

_DEFAULT_FILES = {
    'cub': dict(
        images='images.txt',
        parts='parts/part_locs.txt',
        boxes='bounding_boxes.txt',
    ),
    'demo': dict(parts='demo_parts.json'),
}
_EXPECTED = {
    ('cub', 'images'): (
        'CUB-200-2011\'s "<image id> <path under images/>" lines'
    ),
    ('cub', 'parts'): (
        'CUB-200-2011\'s "<image id> <part id> <x> <y> <visible>" lines'
    ),
    ('cub', 'boxes'): (
        'CUB-200-2011\'s "<image id> <x> <y> <width> <height>" lines'
    ),
    ('demo', 'parts'): (
        'the JSON that tools/misc/make_demo_dataset.py writes, with an '
        '"images" list of {file, part_box, object_box}'
    ),
}


def _norm_path(path: str) -> str:
    """A path with '/' separators, '.' and '..' resolved."""
    return osp.normpath(str(path).replace('\\', '/')).replace('\\', '/')


@METRICS.register_module()
class PartHitRate(BaseMetric):
    """How often SCRIM's regions land on an annotated part or the object.

    SCRIM (*Spatial-aware collaborative region mining for fine-grained
    recognition*, Multimedia Tools and Applications, 2024) mines
    discriminative regions with its FPL modules; ``SCRIMClassifier.predict``
    stores them per image as ``pred_boxes`` (network-input pixels),
    ``pred_box_scores`` and ``pred_box_stages``. For every FPL stage and
    every image this metric takes the stage's best-scored region, maps it to
    original-image pixels (:func:`~scrim_mm.structures.boxes_to_original`,
    from the sample's metainfo) and checks it against the image's
    annotation:

    * **part hit**: at least one visible part keypoint lies in the region
      (``'cub'``: CUB-200-2011's ``parts/part_locs.txt``, optionally only
      ``part_ids``; ``'demo'``: the centre of the synthetic part's
      ``part_box`` from ``demo_parts.json``). Averaged over the images
      with at least one such keypoint.
    * **object hit**: the region's centre lies in the object box
      (``bounding_boxes.txt`` / ``object_box``).
    * **any-of-k part hit**: one of the stage's ``topk`` best-scored
      regions holds a keypoint.
    * **part distance**: the distance from the region's centre to the
      nearest such keypoint, in percent of the image diagonal (lower is
      better). A hit grows easier with the region's size; this does not.
    * **box area**: the region's area inside the image, in percent of the
      image. With the chance figures it tells whether the hits come from
      where the regions sit or from how large they are.
    * **chance**: each image's regions scored against the annotation of
      another evaluated image, paired by a seeded random derangement
      (over the images sorted by annotation order, so the pairing does not
      depend on the data order or the number of ranks). A region is moved
      to the other image in relative coordinates (scaled by the ratio of
      the two original sizes), so this is the hit rate of a region of the
      same place and relative size that ignores the image content.

    Every figure is in percent. Images are matched to annotations through
    ``img_path`` in the metainfo: the longest trailing part of the path
    that names an annotated file (relative to ``data_root``, or for
    ``'cub'`` also to its images folder) is used, so absolute, relative and
    moved data roots all work. The annotations are read when the metric is
    built, so a wrong path fails before the test loop.

    Args:
        data_root (str): Root of the data set; annotation files are
            relative to it.
        ann_format (str): ``'cub'`` (CUB-200-2011 files) or ``'demo'``
            (``demo_parts.json`` of ``tools/misc/make_demo_dataset.py``).
            Defaults to ``'cub'``.
        ann_files (dict, optional): File names replacing the defaults,
            relative to ``data_root`` or absolute. ``'cub'``: ``images``
            (``'images.txt'``), ``parts`` (``'parts/part_locs.txt'``),
            ``boxes`` (``'bounding_boxes.txt'``); ``'demo'``: ``parts``
            (``'demo_parts.json'``). Defaults to None.
        img_prefix (str): Images folder under ``data_root`` that the paths
            of CUB's ``images.txt`` are relative to. Defaults to
            ``'images'``.
        part_ids (Sequence[int], optional): CUB part ids (1-based, as in
            ``parts/parts.txt``) that count for a part hit, e.g. ``(2, 5,
            6, 7, 11, 15)`` for beak, crown, forehead, eyes and throat.
            ``'cub'`` only. Defaults to None (all parts).
        stage_names (Sequence[str]): Name of each FPL stage index in
            ``pred_box_stages`` (``model.fpl_head.stage_names``), used in
            the keys. Defaults to ``('s3', 's4')``.
        topk (int, optional): Regions per stage for the any-of-k part hit
            (the best-scored ones); ``-1`` takes all of the stage's regions,
            None leaves the any-of-k figures out. Defaults to -1.
        seed (int): Seed of the chance derangement. Defaults to 0.
        skip_missing (bool): Leave out images without annotation (with a
            warning) instead of raising. Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``, where results are
            gathered in distributed evaluation. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric keys. Defaults to None.
        collect_dir (str, optional): Temporary folder for ``'cpu'``
            collection. Defaults to None.

    Keys returned by :meth:`compute_metrics`, for every stage name ``s``:
    ``part_hit/s``, ``part_hit_chance/s``, ``object_hit/s``,
    ``object_hit_chance/s``, ``part_dist/s``, ``part_dist_chance/s``,
    ``box_area/s`` and, unless ``topk`` is None, ``part_hit_any/s`` and
    ``part_hit_any_chance/s``. A figure with no
    image to average over (or a chance figure from fewer than two images)
    is NaN.

    Example:
        >>> val_evaluator = [
        ...     dict(type='Accuracy', topk=(1,)),
        ...     dict(type='PartHitRate', data_root='data/CUB_200_2011'),
        ... ]
    """

    # The keys are namespaced already ('part_hit/s3'); '' (not None) keeps
    # BaseMetric from warning about a missing prefix.
    default_prefix: Optional[str] = ''

    def __init__(
        self,
        data_root: str,
        ann_format: str = 'cub',
        ann_files: Optional[Dict[str, str]] = None,
        img_prefix: str = 'images',
        part_ids: Optional[Sequence[int]] = None,
        stage_names: Sequence[str] = ('s3', 's4'),
        topk: Optional[int] = -1,
        seed: int = 0,
        skip_missing: bool = False,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
        collect_dir: Optional[str] = None,
    ) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir,
        )
        if ann_format not in _DEFAULT_FILES:
            raise ValueError(
                f'ann_format must be one of {tuple(_DEFAULT_FILES)}, got '
                f'{ann_format!r}.'
            )
        files = dict(_DEFAULT_FILES[ann_format])
        unknown = set(ann_files or {}) - set(files)
        if unknown:
            raise ValueError(
                f'Unknown ann_files keys {sorted(unknown)} for ann_format='
                f'{ann_format!r}; expected some of {sorted(files)}.'
            )
        files.update(ann_files or {})
        self.ann_files = {k: osp.join(data_root, v) for k, v in files.items()}
        if isinstance(stage_names, str) or not stage_names:
            raise ValueError(
                f'stage_names must be a non-empty sequence of names, got '
                f'{stage_names!r}.'
            )
        if len(set(stage_names)) != len(stage_names):
            raise ValueError(f'stage_names repeat a name: {stage_names!r}.')
        if topk is not None and (topk == 0 or topk < -1):
            raise ValueError(f'topk must be positive, -1 or None, got {topk}.')
        if part_ids is not None and ann_format != 'cub':
            raise ValueError(
                'part_ids is only supported with ann_format="cub".'
            )
        self.data_root = data_root
        self.ann_format = ann_format
        self.img_prefix = img_prefix
        self.part_ids = None if part_ids is None else tuple(part_ids)
        self.stage_names = tuple(stage_names)
        self.topk = topk
        self.seed = seed
        self.skip_missing = skip_missing
        self._warned_missing = False

        if ann_format == 'cub':
            keys, points, visible, objects = self._load_cub()
        else:
            keys, points, visible, objects = self._load_demo()
        # keys[i]: the data_root-relative path of annotation row i.
        self._keys = keys
        self._points = torch.as_tensor(points, dtype=torch.float32)
        self._visible = torch.as_tensor(visible, dtype=torch.bool)
        self._objects = torch.as_tensor(objects, dtype=torch.float32)
        self._index: Dict[str, int] = {}
        prefix_len = len(_norm_path(img_prefix)) + 1
        for row, key in enumerate(keys):
            self._index[key] = row
            if ann_format == 'cub':
                self._index.setdefault(key[prefix_len:], row)

    # ------------------------------------------------------------------
    # Annotations
    # ------------------------------------------------------------------

    def _read(self, name: str) -> str:
        path = self.ann_files[name]
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'PartHitRate(ann_format={self.ann_format!r}) needs '
                f'{path}: {_EXPECTED[(self.ann_format, name)]}. Check '
                f'data_root={self.data_root!r} or set ann_files='
                f'dict({name}=...).'
            )
        with open(path, encoding='utf-8') as f:
            return f.read()

    def _table(self, name: str, cols: int) -> np.ndarray:
        """Read a whitespace-separated numeric table of ``cols`` columns."""
        values = np.asarray(self._read(name).split(), dtype=np.float64)
        if values.size % cols:
            raise ValueError(
                f'{self.ann_files[name]}: expected {cols} numbers a line '
                f'({_EXPECTED[(self.ann_format, name)]}).'
            )
        return values.reshape(-1, cols)

    def _load_cub(self) -> _Annotations:
        ids, keys = [], []
        for line in self._read('images').splitlines():
            if line.strip():
                img_id, rel = line.split(maxsplit=1)
                ids.append(int(img_id))
                keys.append(_norm_path(osp.join(self.img_prefix, rel.strip())))
        ids = np.asarray(ids, dtype=np.int64)
        lookup = np.full(int(ids.max(initial=0)) + 1, -1, dtype=np.int64)
        lookup[ids] = np.arange(len(ids))

        def rows(table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            # Lines of images that images.txt does not list are ignored.
            img_ids = table[:, 0].astype(np.int64)
            known = (img_ids >= 0) & (img_ids < len(lookup))
            row = np.full(len(img_ids), -1, dtype=np.int64)
            row[known] = lookup[img_ids[known]]
            return row, row >= 0

        parts = self._table('parts', 5)
        row, keep = rows(parts)
        part_col = parts[:, 1].astype(np.int64) - 1
        num_parts = int(part_col.max(initial=-1)) + 1
        points = np.zeros((len(keys), num_parts, 2), dtype=np.float32)
        visible = np.zeros((len(keys), num_parts), dtype=bool)
        points[row[keep], part_col[keep]] = parts[keep, 2:4]
        visible[row[keep], part_col[keep]] = parts[keep, 4] > 0
        if self.part_ids is not None:
            bad = [p for p in self.part_ids if not 1 <= p <= num_parts]
            if bad:
                raise ValueError(
                    f'part_ids {bad} not in 1..{num_parts} '
                    f'({self.ann_files["parts"]}).'
                )
            chosen = np.zeros(num_parts, dtype=bool)
            chosen[np.asarray(self.part_ids) - 1] = True
            visible &= chosen

        boxes = self._table('boxes', 5)
        row, keep = rows(boxes)
        objects = np.full((len(keys), 4), np.nan, dtype=np.float32)
        xywh = boxes[keep, 1:5]
        objects[row[keep]] = np.concatenate(
            [xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1
        )
        return keys, points, visible, objects

    def _load_demo(self) -> _Annotations:
        path = self.ann_files['parts']
        try:
            entries = json.loads(self._read('parts'))['images']
            keys = [_norm_path(e['file']) for e in entries]
            part_boxes = np.asarray(
                [e['part_box'] for e in entries], dtype=np.float32
            ).reshape(-1, 4)
            objects = np.asarray(
                [e['object_box'] for e in entries], dtype=np.float32
            ).reshape(-1, 4)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f'{path}: expected {_EXPECTED[("demo", "parts")]} ({err!r}).'
            ) from err
        points = (part_boxes[:, None, :2] + part_boxes[:, None, 2:]) / 2
        visible = np.ones((len(keys), 1), dtype=bool)
        return keys, points, visible, objects

    def _find(self, img_path: str) -> Optional[int]:
        """Annotation row of an image path, by its longest known suffix."""
        parts = _norm_path(img_path).split('/')
        parts = [p for p in parts if p not in ('', '.')]
        for start in range(len(parts)):
            row = self._index.get('/'.join(parts[start:]))
            if row is not None:
                return row
        return None

    # ------------------------------------------------------------------
    # Metric
    # ------------------------------------------------------------------

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each image's best regions per stage and its annotation row.

        Args:
            data_batch: The data batch (unused).
            data_samples (Sequence[dict]): The model's predictions, as dicts
                (``DataSample.to_dict()``) or ``DataSample``.
        """
        num_stages = len(self.stage_names)
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            img_path = sample.get('img_path')
            if img_path is None:
                raise KeyError(
                    'PartHitRate needs img_path in the sample metainfo to '
                    'find its annotation; keep it in PackInputs meta_keys.'
                )
            row = self._find(img_path)
            if row is None:
                files = ', '.join(self.ann_files.values())
                if not self.skip_missing:
                    raise KeyError(
                        f'No annotation for image {img_path!r} in {files} '
                        f'(data_root={self.data_root!r}); pass '
                        'skip_missing=True to leave such images out.'
                    )
                if not self._warned_missing:
                    print_log(
                        f'PartHitRate: no annotation for {img_path!r} in '
                        f'{files}; such images are left out.',
                        logger='current',
                        level=logging.WARNING,
                    )
                    self._warned_missing = True
                continue
            missing = [
                k
                for k in ('pred_boxes', 'pred_box_scores', 'pred_box_stages')
                if k not in sample
            ]
            if missing:
                raise KeyError(
                    f'PartHitRate needs {missing} in the predictions: use a '
                    'SCRIMClassifier with an FPL head.'
                )
            stages = sample['pred_box_stages'].cpu()
            if stages.numel() and int(stages.max()) >= num_stages:
                raise ValueError(
                    f'pred_box_stages holds stage {int(stages.max())} but '
                    f'stage_names={self.stage_names} names {num_stages}; '
                    'set stage_names to model.fpl_head.stage_names.'
                )
            boxes = boxes_to_original(sample['pred_boxes'].cpu(), sample)
            regions, valid = select_stage_regions(
                boxes,
                sample['pred_box_scores'].detach().cpu(),
                stages,
                num_stages,
                k=1 if self.topk is None else self.topk,
            )
            self.results.append(
                dict(
                    row=row,
                    regions=regions,
                    valid=valid,
                    size=torch.tensor(input_geometry(sample)['ori_size']),
                )
            )

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Hit rates per stage, in percent.

        Args:
            results (List[dict]): Collected :meth:`process` results.

        Returns:
            Dict[str, float]: See the class docstring for the keys.
        """
        bases = ['part_hit', 'object_hit', 'part_dist']
        if self.topk is not None:
            bases.append('part_hit_any')
        if not results:
            nan = {
                f'{b}{c}/{s}': math.nan
                for b in bases
                for c in ('', '_chance')
                for s in self.stage_names
            }
            nan.update({f'box_area/{s}': math.nan for s in self.stage_names})
            return nan
        # Annotation order: the chance pairing ignores the data order.
        results = sorted(results, key=lambda r: r['row'])
        k = max(1, max(r['regions'].shape[1] for r in results))
        num_stages = len(self.stage_names)
        regions = torch.zeros(len(results), num_stages, k, 4)
        valid = torch.zeros(len(results), num_stages, k, dtype=torch.bool)
        for i, r in enumerate(results):
            regions[i, :, : r['regions'].shape[1]] = r['regions']
            valid[i, :, : r['valid'].shape[1]] = r['valid']
        rows = torch.tensor([r['row'] for r in results])
        sizes = torch.stack([r['size'] for r in results]).float()

        rates = self._rates(regions, valid, rows, sizes)
        perm = random_derangement(len(results), self.seed)
        # Move each image's regions to its partner in relative coordinates.
        scale = (sizes[perm] / sizes).repeat(1, 2).view(-1, 1, 1, 4)
        chance = self._rates(regions * scale, valid, rows[perm], sizes[perm])

        metrics = {}
        for base in bases:
            for suffix, values in (('', rates), ('_chance', chance)):
                if suffix and len(results) < 2:
                    values = {base: torch.full((num_stages,), math.nan)}
                for stage, value in zip(self.stage_names, values[base]):
                    metrics[f'{base}{suffix}/{stage}'] = float(value)
        # The regions were clipped to their image in process().
        best = regions[:, :, 0]
        area = box_area(best.reshape(-1, 4)).view(best.shape[:2])
        area = _masked_percent(
            area / sizes.prod(-1, keepdim=True), valid[:, :, 0]
        )
        for stage, value in zip(self.stage_names, area):
            metrics[f'box_area/{stage}'] = float(value)
        return metrics

    def _rates(
        self,
        regions: torch.Tensor,
        valid: torch.Tensor,
        rows: torch.Tensor,
        sizes: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        """Per-stage figures (S,) of regions against annotation rows.

        Args:
            regions (torch.Tensor): (N, S, k, 4), best-first per stage.
            valid (torch.Tensor): (N, S, k) slots that hold a region.
            rows (torch.Tensor): (N,) annotation rows to score against.
            sizes (torch.Tensor): (N, 2) original (w, h) of the images of
                those rows.

        Returns:
            Dict[str, torch.Tensor]: ``part_hit``, ``object_hit``,
            ``part_hit_any`` and ``part_dist`` (percent of the diagonal),
            each (S,) in percent.
        """
        points = self._points[rows]
        visible = self._visible[rows]
        objects = self._objects[rows]
        best, has_best = regions[:, :, 0], valid[:, :, 0]

        has_part = visible.any(-1, keepdim=True) & has_best
        part = part_hits(best, points[:, None], visible[:, None])
        has_object = torch.isfinite(objects).all(-1, keepdim=True) & has_best
        obj = object_hits(best, objects[:, None])
        part_any = part_hits(
            regions, points[:, None, None], visible[:, None, None]
        )
        part_any = (part_any & valid).any(-1)

        dist = part_distances(best, points[:, None], visible[:, None])
        dist = dist / sizes.norm(dim=-1, keepdim=True)

        return dict(
            part_hit=_masked_percent(part, has_part),
            object_hit=_masked_percent(obj, has_object),
            part_hit_any=_masked_percent(part_any, has_part),
            part_dist=_masked_percent(dist, has_part),
        )


def _masked_percent(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """100x the mean over dim 0 of the entries under ``mask``.

    Args:
        values (torch.Tensor): (N, S) values; bools count as 0 / 1.
        mask (torch.Tensor): (N, S) bool, the entries that count.

    Returns:
        torch.Tensor: (S,) float64; NaN where no entry counts.
    """
    values = values.double().masked_fill(~mask, 0.0)
    return values.sum(0) / mask.sum(0) * 100.0
