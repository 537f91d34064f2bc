# Copyright (c) scrim-mm contributors. All rights reserved.
"""Part benchmark: SCRIM against its plain backbone at an equal budget.

Both models train through mmengine's Runner on the same data, pipeline,
epochs, optimizer and seed, and are scored on the test split: top-1 of
both, and for SCRIM where its regions land - the share of test images
whose best-scored region of every FPL stage contains the annotated part
(:class:`~scrim_mm.evaluation.PartHitRate`), that share against another
image's part (chance at that box size), the share of images whose CPL
attention peak lies in the part, and how distinct the CPL parts are.
"""

import copy
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import METRICS, MODELS
from mmpretrain.structures import DataSample

from .part_diversity import part_diversity

DIVERSITY_KEYS = ('excitation_cos', 'map_cos', 'map_corr', 'same_peak')


@dataclass
class PartBenchmarkResult:
    """Figures of one part benchmark (percentages, except diversity).

    With several seeds, every figure is the mean over the seeds and
    ``runs`` holds each seed's own figures.

    Attributes:
        scrim_top1 (float): Top-1 of SCRIM on the test split.
        plain_top1 (float): Top-1 of the plain backbone.
        fpl (Dict[str, Dict[str, float]]): Per FPL stage: ``hit``,
            ``chance``, ``hit_any`` (any of the K regions), ``object``,
            ``dist`` and ``dist_chance`` (best region's centre to the part,
            percent of the image diagonal) and ``area`` (best region,
            percent of the image).
        cpl (Dict[str, Dict[str, float]]): Per CPL stage: ``peak_hit``
            (the peak of the most active part lies in the part's cell),
            ``peak_chance``, ``peak_hit_any`` (any part's peak) and the
            diversity means of
            :func:`~scrim_mm.analysis.part_diversity.part_diversity`.
        seed (int, optional): The seed of a single run; None for a mean.
        runs (List[PartBenchmarkResult]): The single runs behind a mean,
            one per seed; empty for a single run.
    """

    scrim_top1: float
    plain_top1: float
    fpl: Dict[str, Dict[str, float]] = field(default_factory=dict)
    cpl: Dict[str, Dict[str, float]] = field(default_factory=dict)
    seed: Optional[int] = None
    runs: List['PartBenchmarkResult'] = field(default_factory=list)


def _mean_figures(tables: Sequence[Dict[str, Dict[str, float]]]) -> dict:
    """Mean of per-stage figure tables that share their keys."""
    return {
        stage: {
            key: sum(t[stage][key] for t in tables) / len(tables)
            for key in figures
        }
        for stage, figures in tables[0].items()
    }


def mean_result(runs: Sequence[PartBenchmarkResult]) -> PartBenchmarkResult:
    """The mean of the single-seed results of one benchmark.

    Args:
        runs (Sequence[PartBenchmarkResult]): One result per seed.

    Returns:
        PartBenchmarkResult: Every figure averaged over ``runs``, which it
        keeps under ``runs``; a single run is returned as it is.
    """
    if not runs:
        raise ValueError('runs=[]: the mean needs at least one result.')
    if len(runs) == 1:
        return runs[0]
    n = len(runs)
    return PartBenchmarkResult(
        scrim_top1=sum(r.scrim_top1 for r in runs) / n,
        plain_top1=sum(r.plain_top1 for r in runs) / n,
        fpl=_mean_figures([r.fpl for r in runs]),
        cpl=_mean_figures([r.cpl for r in runs]),
        runs=list(runs),
    )


def plain_config(cfg: Config) -> Config:
    """The plain-backbone twin of a SCRIM config.

    The model becomes the benchmark's baseline
    (:func:`scrim_mm.benchmark.models.default_baseline_cfg`): mmpretrain's
    ``ImageClassifier`` with the same backbone and data preprocessor,
    ``GlobalAveragePooling`` and a ``LinearClsHead``; everything else
    (data, pipeline, epochs, optimizer, schedule, seed) is kept. Its
    evaluator is top-1 only.

    Args:
        cfg (Config): The SCRIM config.

    Returns:
        Config: A new config.
    """
    from ..benchmark.models import default_baseline_cfg

    plain = copy.deepcopy(cfg)
    scrim = MODELS.build(copy.deepcopy(cfg.model))
    plain.model = default_baseline_cfg(cfg.model, scrim)
    plain.val_evaluator = dict(type='Accuracy', topk=(1,))
    plain.test_evaluator = dict(type='Accuracy', topk=(1,))
    return plain


def set_epochs(cfg: Config, epochs: int) -> None:
    """Train for ``epochs``, stretching the last scheduler to the end."""
    if epochs < 1:
        raise ValueError(f'epochs={epochs}: must be >= 1.')
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    # Schedulers that would start after the end are dropped; the last one
    # kept runs to the new end.
    schedulers = [s for s in schedulers if s.get('begin', 0) < epochs]
    for i, sched in enumerate(schedulers):
        end = sched.get('end', epochs)
        sched['end'] = epochs if i == len(schedulers) - 1 else min(end, epochs)
        if 'T_max' in sched:
            sched['T_max'] = max(1, sched['end'] - sched.get('begin', 0))
    cfg.param_scheduler = schedulers


def _train_and_test(cfg: Config, work_dir: str) -> Runner:
    from ..utils import add_rng_state_hook, use_scrim_image_loader

    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    add_rng_state_hook(cfg)
    use_scrim_image_loader(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    runner.metrics = runner.test()
    return runner


def _scale_maps_to_boxes(maps: torch.Tensor, input_size: tuple) -> tuple:
    """Peak cells of (B, P, h, w) maps as boxes in input pixels."""
    b, p, h, w = maps.shape
    flat = maps.flatten(2)
    value, index = flat.max(dim=2)
    sy, sx = input_size[0] / h, input_size[1] / w
    y = torch.div(index, w, rounding_mode='floor').float()
    x = (index % w).float()
    boxes = torch.stack([x * sx, y * sy, (x + 1) * sx, (y + 1) * sy], dim=2)
    return boxes, value


@torch.no_grad()
def cpl_peak_scores(
    model: torch.nn.Module, dataloader, metric_cfg: dict
) -> Dict[str, Dict[str, float]]:
    """Score the CPL attention peaks of every stage against the parts.

    The peak cell of every part's attention map (a ``stride x stride`` box
    in input pixels, scored by the map's peak value) is handed to
    :class:`~scrim_mm.evaluation.PartHitRate` as if it were a region, so
    the best part's peak, any part's peak and the chance figure use the
    same annotations and geometry as the FPL regions.

    Args:
        model (nn.Module): A SCRIM model with a :class:`CPLNeck`.
        dataloader: The test dataloader.
        metric_cfg (dict): The ``PartHitRate`` config (annotations).

    Returns:
        Dict[str, Dict[str, float]]: Per CPL stage, ``peak_hit``,
        ``peak_chance``, ``peak_hit_any`` and the mean part-diversity
        measures.
    """
    stages = tuple(model.neck.stage_names)
    metric = METRICS.build(dict(metric_cfg, stage_names=stages, topk=-1))
    sums = {name: {k: 0.0 for k in DIVERSITY_KEYS} for name in stages}
    count = 0
    model.eval()
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        inputs = data['inputs']
        out = model.extract_feat(inputs, stage='neck')
        all_boxes, all_scores, all_stages = [], [], []
        for i, maps in enumerate(model.neck.attention_maps(out)):
            boxes, value = _scale_maps_to_boxes(maps, inputs.shape[-2:])
            all_boxes.append(boxes)
            all_scores.append(value)
            all_stages.append(torch.full_like(value, i, dtype=torch.long))
            if out.excitations[i].shape[1] > 1:
                div = part_diversity(out.feats[i], out.excitations[i])
                for key in DIVERSITY_KEYS:
                    sums[stages[i]][key] += div[key].sum().item()
        boxes = torch.cat(all_boxes, dim=1).cpu()
        scores = torch.cat(all_scores, dim=1).cpu()
        stage_ids = torch.cat(all_stages, dim=1).cpu()
        samples = []
        for j, sample in enumerate(data['data_samples']):
            new = DataSample(metainfo=sample.metainfo)
            new.set_field(boxes[j], 'pred_boxes', dtype=torch.Tensor)
            new.set_field(scores[j], 'pred_box_scores', dtype=torch.Tensor)
            new.set_field(stage_ids[j], 'pred_box_stages', dtype=torch.Tensor)
            samples.append(new.to_dict())
        metric.process(None, samples)
        count += len(samples)
    figures = metric.evaluate(count)
    result = {}
    for name in stages:
        result[name] = dict(
            peak_hit=figures[f'part_hit/{name}'],
            peak_chance=figures[f'part_hit_chance/{name}'],
            peak_hit_any=figures[f'part_hit_any/{name}'],
            **{k: v / max(count, 1) for k, v in sums[name].items()},
        )
    return result


def _part_metric_cfg(cfg: Config, ann_format: Optional[str]) -> dict:
    evaluators = cfg.get('test_evaluator')
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    for ev in evaluators or []:
        if ev.get('type') == 'PartHitRate':
            metric = dict(copy.deepcopy(ev))
            if ann_format is not None:
                metric['ann_format'] = ann_format
            return metric
    data_root = cfg.test_dataloader.dataset.get('data_root')
    if data_root is None:
        raise ValueError(
            'test_dataloader.dataset.data_root=None: the part benchmark '
            'needs the annotations; add a PartHitRate test_evaluator.'
        )
    if ann_format is None:
        demo = osp.isfile(osp.join(data_root, 'demo_parts.json'))
        ann_format = 'demo' if demo else 'cub'
    return dict(type='PartHitRate', data_root=data_root, ann_format=ann_format)


def run_part_benchmark(
    cfg: Config,
    work_dir: str,
    epochs: Optional[int] = None,
    seeds: Optional[Union[int, Sequence[int]]] = None,
    ann_format: Optional[str] = None,
) -> PartBenchmarkResult:
    """Train SCRIM and its plain backbone and score them.

    Args:
        cfg (Config): The SCRIM config.
        work_dir (str): Folder for the runs: ``scrim/`` and ``plain/`` for
            one seed, ``seed<S>/scrim`` and ``seed<S>/plain`` for several.
        epochs (int, optional): Override of the training epochs for both.
            Defaults to None (the config's).
        seeds (int | Sequence[int], optional): The seed, or the seeds of
            repeated runs (both models trained once per seed, the figures
            averaged). Defaults to None (the config's ``randomness.seed``,
            one run).
        ann_format (str, optional): ``'demo'`` or ``'cub'`` annotations;
            None takes the config's ``PartHitRate`` or guesses from the
            data root. Defaults to None.

    Returns:
        PartBenchmarkResult: The figures; with several seeds, their means
        and the single runs under ``runs``.
    """
    if cfg.model.get('type') != 'SCRIMClassifier':
        raise ValueError(
            f"model.type={cfg.model.get('type')!r}: the part benchmark needs "
            "a SCRIMClassifier config (e.g. configs/scrim/"
            "scrim_r18_hard-demo.py)."
        )
    if seeds is None:
        seeds = [cfg.get('randomness', {}).get('seed')]
    elif isinstance(seeds, int):
        seeds = [seeds]
    else:
        seeds = list(seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(
                f'seeds={seeds}: give one or more different seeds.'
            )
    runs = []
    for seed in seeds:
        run_dir = (
            work_dir if len(seeds) == 1 else osp.join(work_dir, f'seed{seed}')
        )
        runs.append(_run_one_seed(cfg, run_dir, epochs, seed, ann_format))
    return mean_result(runs)


def _run_one_seed(
    cfg: Config,
    work_dir: str,
    epochs: Optional[int],
    seed: Optional[int],
    ann_format: Optional[str],
) -> PartBenchmarkResult:
    """Both models trained and scored with one seed."""
    cfg = copy.deepcopy(cfg)
    if epochs is not None:
        set_epochs(cfg, epochs)
    if seed is not None:
        cfg.randomness = dict(cfg.get('randomness', {}), seed=seed)
    metric = _part_metric_cfg(cfg, ann_format)
    cfg.val_evaluator = [dict(type='Accuracy', topk=(1,)), metric]
    cfg.test_evaluator = cfg.val_evaluator
    plain = plain_config(cfg)

    scrim_runner = _train_and_test(cfg, osp.join(work_dir, 'scrim'))
    scrim_metrics = scrim_runner.metrics
    cpl = cpl_peak_scores(
        scrim_runner.model, scrim_runner.test_dataloader, metric
    )
    plain_runner = _train_and_test(plain, osp.join(work_dir, 'plain'))

    fpl = {}
    for name in scrim_runner.model.fpl_head.stage_names:
        fpl[name] = dict(
            hit=scrim_metrics[f'part_hit/{name}'],
            chance=scrim_metrics[f'part_hit_chance/{name}'],
            hit_any=scrim_metrics[f'part_hit_any/{name}'],
            object=scrim_metrics[f'object_hit/{name}'],
            dist=scrim_metrics[f'part_dist/{name}'],
            dist_chance=scrim_metrics[f'part_dist_chance/{name}'],
            area=scrim_metrics[f'box_area/{name}'],
        )
    return PartBenchmarkResult(
        scrim_top1=float(scrim_metrics['accuracy/top1']),
        plain_top1=float(plain_runner.metrics['accuracy/top1']),
        fpl=fpl,
        cpl=cpl,
        seed=seed,
    )


def format_part_benchmark(result: PartBenchmarkResult) -> str:
    """The figures as Markdown tables.

    Args:
        result (PartBenchmarkResult): The figures.

    Returns:
        str: Three tables: top-1, FPL regions, CPL parts; with several
        seeds, a fourth one with every seed's top-1 and FPL hits (the
        first three are then means over the seeds).
    """
    mean = f' (mean of {len(result.runs)} seeds)' if result.runs else ''
    lines: List[str] = [
        f'| model | top-1 (%){mean} |',
        '|---|---|',
        f'| SCRIM | {result.scrim_top1:.1f} |',
        f'| plain backbone | {result.plain_top1:.1f} |',
        f'| SCRIM - plain | {result.scrim_top1 - result.plain_top1:+.1f} |',
        '',
        '| FPL stage | best region hits the part (%) | chance (%) | '
        'ratio | any of K hits (%) | best region on the object (%) | '
        'centre to part (% of diagonal) | chance | best region area (%) |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for name, f in result.fpl.items():
        ratio = f['hit'] / f['chance'] if f['chance'] > 0 else float('inf')
        lines.append(
            f"| {name} | {f['hit']:.1f} | {f['chance']:.1f} | {ratio:.1f} | "
            f"{f['hit_any']:.1f} | {f['object']:.1f} | {f['dist']:.1f} | "
            f"{f['dist_chance']:.1f} | {f['area']:.1f} |"
        )
    lines += [
        '',
        '| CPL stage | peak in the part (%) | chance (%) | any part (%) | '
        'same peak | map corr | map cos | excitation cos |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for name, c in result.cpl.items():
        lines.append(
            f"| {name} | {c['peak_hit']:.1f} | {c['peak_chance']:.1f} | "
            f"{c['peak_hit_any']:.1f} | {c['same_peak']:.2f} | "
            f"{c['map_corr']:.3f} | {c['map_cos']:.3f} | "
            f"{c['excitation_cos']:.3f} |"
        )
    if result.runs:
        lines += ['', _format_seeds(result.runs)]
    return '\n'.join(lines)


def _format_seeds(runs: Sequence[PartBenchmarkResult]) -> str:
    """One row per seed: top-1 of both, FPL hit and chance per stage."""
    stages = list(runs[0].fpl)
    head = '| seed | SCRIM | plain | SCRIM - plain | ' + ' | '.join(
        f'hit {n} | chance {n}' for n in stages
    )
    rows = [head + ' |', '|---' * (4 + 2 * len(stages)) + '|']
    for run in runs:
        cells = [
            str(run.seed),
            f'{run.scrim_top1:.1f}',
            f'{run.plain_top1:.1f}',
            f'{run.scrim_top1 - run.plain_top1:+.1f}',
        ]
        for n in stages:
            cells += [
                f"{run.fpl[n]['hit']:.1f}",
                f"{run.fpl[n]['chance']:.1f}",
            ]
        rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def worst_seed_diff(result: PartBenchmarkResult) -> float:
    """The lowest SCRIM - plain top-1 over the seeds (or of the one run)."""
    runs = result.runs or [result]
    return min(r.scrim_top1 - r.plain_top1 for r in runs)


def worst_seed_ratio(result: PartBenchmarkResult, stage: str) -> float:
    """The lowest hit / chance of an FPL stage over the seeds.

    A seed whose chance is 0 counts as ``inf`` when it hits and 0 when it
    does not.
    """
    ratios = []
    for run in result.runs or [result]:
        hit, chance = run.fpl[stage]['hit'], run.fpl[stage]['chance']
        if chance > 0:
            ratios.append(hit / chance)
        else:
            ratios.append(float('inf') if hit > 0 else 0.0)
    return min(ratios)


def summary_line(
    result: PartBenchmarkResult, protocol: Optional[str] = None
) -> str:
    """The one-line summary the tool prints last, one per protocol.

    Args:
        result (PartBenchmarkResult): The figures.
        protocol (str, optional): ``'scratch'`` or ``'finetune'``, written
            first when given. Defaults to None.

    Returns:
        str: ``part-benchmark [protocol=<p>] scrim_top1=<x> plain_top1=<y>
        worst_seed_diff=<d> hit_<stage>=<h> chance_<stage>=<c>
        worst_seed_ratio_<stage>=<r> ...``: means over the seeds, the
        lowest SCRIM - plain over the seeds and, per FPL stage, the lowest
        hit / chance over the seeds.
    """
    parts = ['part-benchmark']
    if protocol is not None:
        parts.append(f'protocol={protocol}')
    parts += [
        f'scrim_top1={result.scrim_top1:.2f}',
        f'plain_top1={result.plain_top1:.2f}',
        f'worst_seed_diff={worst_seed_diff(result):.2f}',
    ]
    for name, f in result.fpl.items():
        parts.append(f"hit_{name}={f['hit']:.2f}")
        parts.append(f"chance_{name}={f['chance']:.2f}")
        parts.append(
            f'worst_seed_ratio_{name}={worst_seed_ratio(result, name):.2f}'
        )
    return ' '.join(parts)


#: The part benchmark's protocols: both models from random weights, or
#: both from the same pretrained backbone.
PROTOCOLS = ('scratch', 'finetune')

#: Training images per class of the fine-tuning protocol. A pretrained
#: plain ResNet-18 fine-tuned on all 60 of the hard set reached 95-100 %,
#: leaving no room to rank the models; CUB has about 30 per class.
FINETUNE_TRAIN_PER_CLASS = 20


def with_train_subset(cfg: Config, per_class: int) -> Config:
    """A copy of ``cfg`` that trains on the first images of each class.

    The subset is the dataset's own ``indices`` (mmengine's
    ``BaseDataset``): the first ``per_class`` training images of every
    class, in the annotation order. The test split is untouched.

    Args:
        cfg (Config): A config with ``train_dataloader.dataset``.
        per_class (int): Training images kept per class, at least 1.

    Returns:
        Config: The copy.

    Raises:
        ValueError: ``per_class`` below 1, a dataset that already sets
            ``indices``, or a class with fewer training images.
    """
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS

    if per_class < 1:
        raise ValueError(
            f'finetune_train_per_class={per_class}: give 1 or more training '
            'images per class, or None (the tool: '
            '--finetune-train-per-class 0) for the whole training split'
        )
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    if dataset_cfg.get('indices') is not None:
        raise ValueError(
            'train_dataloader.dataset.indices is set already; the '
            'fine-tuning subset would replace it. Remove it, or give '
            'finetune_train_per_class=None'
        )
    dataset_cfg.pipeline = []
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    labels = DATASETS.build(dataset_cfg).get_gt_labels()
    keep = []
    for label in sorted(set(labels.tolist())):
        (found,) = (labels == label).nonzero()
        if len(found) < per_class:
            raise ValueError(
                f'finetune_train_per_class={per_class}: class {label} of '
                f'{dataset_cfg.get("data_root")} has {len(found)} training '
                'images; give at most that many'
            )
        keep += found[:per_class].tolist()
    cfg = copy.deepcopy(cfg)
    cfg.train_dataloader.dataset.indices = sorted(keep)
    return cfg


def run_protocols(
    cfg: Config,
    work_dir: str,
    protocols: Sequence[str] = PROTOCOLS,
    init: Optional[str] = None,
    pretrain: Optional[dict] = None,
    finetune_train_per_class: Optional[int] = FINETUNE_TRAIN_PER_CLASS,
    **kwargs,
) -> Dict[str, PartBenchmarkResult]:
    """Run the part benchmark in each protocol.

    Args:
        cfg (Config): The SCRIM config.
        work_dir (str): Folder of the runs: ``<protocol>/`` for each, and
            ``pretrain/`` for the cached pretrained backbone.
        protocols (Sequence[str]): Some of :data:`PROTOCOLS`. Defaults to
            both.
        init (str, optional): The checkpoint both models start from in
            ``'finetune'``; None pretrains the plain backbone on the
            pretraining set once
            (:func:`~scrim_mm.analysis.pretrain.make_pretrained_backbone`)
            and reuses it. Defaults to None.
        pretrain (dict, optional): Keyword arguments of
            :func:`~scrim_mm.analysis.pretrain.make_pretrained_backbone`
            (``data_root``, ``epochs``, set size, seed). Defaults to None.
        finetune_train_per_class (int, optional): Training images per
            class of ``'finetune'`` (:func:`with_train_subset`); None
            trains on the whole split. Defaults to
            :data:`FINETUNE_TRAIN_PER_CLASS` (20).
        **kwargs: ``epochs``, ``seeds`` and ``ann_format`` of
            :func:`run_part_benchmark`.

    Returns:
        Dict[str, PartBenchmarkResult]: The figures of each protocol, in
        the order given.
    """
    from .pretrain import make_pretrained_backbone, with_pretrained_backbone

    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise ValueError(
            f'protocols={list(protocols)}: give one or more of {PROTOCOLS}'
        )
    results = {}
    for protocol in protocols:
        run_cfg = cfg
        if protocol == 'finetune':
            checkpoint = init or make_pretrained_backbone(
                cfg, osp.join(work_dir, 'pretrain'), **(pretrain or {})
            )
            run_cfg = with_pretrained_backbone(cfg, checkpoint)
            if finetune_train_per_class is not None:
                run_cfg = with_train_subset(run_cfg, finetune_train_per_class)
        results[protocol] = run_part_benchmark(
            run_cfg, osp.join(work_dir, protocol), **kwargs
        )
    return results
