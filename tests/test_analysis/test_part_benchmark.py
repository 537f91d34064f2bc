# Copyright (c) scrim-mm contributors. All rights reserved.
"""The part benchmark (``tools/analysis/part_benchmark.py``) end to end."""

import copy
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from scrim_mm.analysis import (
    PartBenchmarkResult,
    format_part_benchmark,
    mean_result,
    plain_config,
    summary_line,
)
from scrim_mm.datasets.demo import make_dataset

CONFIG = 'configs/scrim/scrim_r18_hard-demo.py'


@pytest.fixture(scope='module')
def hard_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('hard'))
    make_dataset(
        'cub',
        root,
        difficulty='hard',
        num_classes=6,
        train_per_class=3,
        test_per_class=1,
        img_size=64,
    )
    return root


def test_plain_config_is_the_backbone_twin(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    plain = plain_config(cfg)
    assert plain.model.type == 'ImageClassifier'
    assert plain.model.backbone == cfg.model.backbone
    assert plain.model.neck.type == 'GlobalAveragePooling'
    assert plain.model.head.type == 'LinearClsHead'
    assert plain.model.head.in_channels == 512
    assert plain.model.head.num_classes == 6
    assert plain.model.data_preprocessor == cfg.model.data_preprocessor
    # the same budget: data, optimizer, schedule, seed
    for key in (
        'train_dataloader',
        'optim_wrapper',
        'param_scheduler',
        'train_cfg',
        'randomness',
    ):
        assert plain[key] == cfg[key], key
    assert plain.test_evaluator == dict(type='Accuracy', topk=(1,))


FPL = dict(dist=4.5, dist_chance=25.25, area=12.34)


def test_table_and_summary_line():
    result = PartBenchmarkResult(
        scrim_top1=80.0,
        plain_top1=70.0,
        fpl=dict(
            s3=dict(FPL, hit=60.0, chance=20.0, hit_any=70.0, object=90.0),
            s4=dict(FPL, hit=85.0, chance=30.0, hit_any=95.0, object=99.0),
        ),
        cpl=dict(
            s3=dict(
                peak_hit=40.0,
                peak_chance=10.0,
                peak_hit_any=50.0,
                excitation_cos=0.5,
                map_cos=0.9,
                map_corr=0.1,
                same_peak=0.2,
            )
        ),
    )
    table = format_part_benchmark(result)
    assert (
        '| s3 | 60.0 | 20.0 | 3.0 | 70.0 | 90.0 | 4.5 | 25.2 | 12.3 |' in table
    )
    assert '| SCRIM - plain | +10.0 |' in table
    assert '| s3 | 40.0 | 10.0 | 50.0 | 0.20 | 0.100 | 0.900 | 0.500 |' in (
        table
    )
    # one run: its own difference (80 - 70) and ratios (60 / 20 = 3,
    # 85 / 30 = 2.83) are the worst seed's
    assert summary_line(result) == (
        'part-benchmark scrim_top1=80.00 plain_top1=70.00 '
        'worst_seed_diff=10.00 '
        'hit_s3=60.00 chance_s3=20.00 worst_seed_ratio_s3=3.00 '
        'hit_s4=85.00 chance_s4=30.00 worst_seed_ratio_s4=2.83'
    )
    assert summary_line(result, 'finetune').startswith(
        'part-benchmark protocol=finetune scrim_top1=80.00 '
    )


CPL = dict(
    peak_hit=0.0,
    peak_chance=10.0,
    peak_hit_any=20.0,
    excitation_cos=0.5,
    map_cos=0.5,
    map_corr=0.0,
    same_peak=0.1,
)


def _result(seed, scrim, plain, hit_s3, chance_s3):
    return PartBenchmarkResult(
        scrim_top1=scrim,
        plain_top1=plain,
        fpl=dict(
            s3=dict(
                FPL, hit=hit_s3, chance=chance_s3, hit_any=50.0, object=60.0
            )
        ),
        cpl=dict(s3=dict(CPL, peak_hit=10.0 * seed)),
        seed=seed,
    )


def test_mean_over_seeds_and_its_tables():
    runs = [
        _result(0, 80.0, 70.0, 40.0, 10.0),
        _result(1, 50.0, 60.0, 20.0, 30.0),
    ]
    mean = mean_result(runs)
    assert mean.scrim_top1 == pytest.approx(65.0)
    assert mean.plain_top1 == pytest.approx(65.0)
    assert mean.fpl['s3'] == dict(
        FPL, hit=30.0, chance=20.0, hit_any=50.0, object=60.0
    )
    assert mean.cpl['s3'] == dict(CPL, peak_hit=5.0)
    assert mean.seed is None and mean.runs == runs
    table = format_part_benchmark(mean)
    assert '| model | top-1 (%) (mean of 2 seeds) |' in table
    assert '| 0 | 80.0 | 70.0 | +10.0 | 40.0 | 10.0 |' in table
    assert '| 1 | 50.0 | 60.0 | -10.0 | 20.0 | 30.0 |' in table
    # means 65 / 65, 30 / 20; worst seed: 50 - 60 = -10 and
    # min(40 / 10, 20 / 30) = 0.67
    assert summary_line(mean) == (
        'part-benchmark scrim_top1=65.00 plain_top1=65.00 '
        'worst_seed_diff=-10.00 '
        'hit_s3=30.00 chance_s3=20.00 worst_seed_ratio_s3=0.67'
    )
    # one seed is reported as it is, without a per-seed table
    assert mean_result(runs[:1]) is runs[0]
    assert '| seed |' not in format_part_benchmark(runs[0])
    with pytest.raises(ValueError, match='runs=\\[\\]'):
        mean_result([])


def test_each_seed_trains_both_models_in_its_own_folder(
    repo_root, tmp_path, monkeypatch
):
    from scrim_mm.analysis import part_benchmark as pb

    calls = []

    def fake_run(cfg, work_dir, epochs, seed, ann_format):
        calls.append((work_dir, epochs, seed))
        return _result(seed, 70.0 + seed, 60.0, 30.0, 10.0)

    monkeypatch.setattr(pb, '_run_one_seed', fake_run)
    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    result = pb.run_part_benchmark(cfg, str(tmp_path), epochs=2, seeds=[3, 5])
    assert calls == [
        (osp.join(str(tmp_path), 'seed3'), 2, 3),
        (osp.join(str(tmp_path), 'seed5'), 2, 5),
    ]
    assert result.scrim_top1 == pytest.approx(74.0)
    assert [r.seed for r in result.runs] == [3, 5]
    # one seed keeps the flat layout; None is the config's own seed
    calls.clear()
    pb.run_part_benchmark(cfg, str(tmp_path))
    assert calls == [(str(tmp_path), None, cfg.randomness.seed)]
    with pytest.raises(ValueError, match='seeds=\\[1, 1\\]'):
        pb.run_part_benchmark(cfg, str(tmp_path), seeds=[1, 1])


def _sample(img_path, boxes, scores, stages):
    sample = DataSample(
        metainfo=dict(
            img_path=img_path, ori_shape=(64, 64), img_shape=(64, 64)
        )
    )
    sample.set_field(torch.tensor(boxes).float(), 'pred_boxes')
    sample.set_field(torch.tensor(scores).float(), 'pred_box_scores')
    sample.set_field(torch.tensor(stages), 'pred_box_stages')
    return sample.to_dict()


@pytest.mark.parametrize('ann_format', ['demo', 'cub'])
def test_part_hit_rate_on_generated_files(hard_root, ann_format):
    """Boxes on the written marks hit; boxes elsewhere don't."""
    import json

    with open(osp.join(hard_root, 'demo_parts.json')) as f:
        images = [e for e in json.load(f)['images'] if e['split'] == 'test']
    samples = []
    for entry in images:
        x1, y1, x2, y2 = entry['part_box']
        # stage 0: a box around the mark (best); stage 1: a box far away
        far = [0, 0, 2, 2] if x1 > 8 and y1 > 8 else [60, 60, 64, 64]
        samples.append(
            _sample(
                osp.join(hard_root, entry['file']),
                [[x1 - 1, y1 - 1, x2 + 1, y2 + 1], far],
                [1.0, 1.0],
                [0, 1],
            )
        )
    metric = dict(
        type='PartHitRate',
        data_root=hard_root,
        ann_format=ann_format,
        stage_names=('s3', 's4'),
    )
    if ann_format == 'cub':
        metric['part_ids'] = (1,)  # the mark
    init_default_scope('mmpretrain')
    evaluator = Evaluator([metric])
    evaluator.process(samples)
    out = evaluator.evaluate(len(samples))
    assert out['part_hit/s3'] == pytest.approx(100.0)
    assert out['part_hit/s4'] == pytest.approx(0.0)
    # The box around the mark is centred on it (CUB's keypoints are whole
    # pixels: up to half a pixel off); the far one is not.
    assert out['part_dist/s3'] < 1.0
    assert out['part_dist/s4'] > 10.0


def test_pretrained_backbone_is_made_once_and_loaded(repo_root, tmp_path):
    from mmpretrain.registry import MODELS

    from scrim_mm.analysis import (
        make_pretrained_backbone,
        plain_config,
        with_pretrained_backbone,
    )
    from scrim_mm.analysis.pretrain import pretrain_config, pretrained_top1

    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    kwargs = dict(
        data_root=str(tmp_path / 'pretrain_set'),
        epochs=1,
        train_per_class=2,
        test_per_class=1,
    )
    ckpt = make_pretrained_backbone(cfg, str(tmp_path / 'pre'), **kwargs)
    stamp = os.stat(ckpt).st_mtime_ns
    top1 = pretrained_top1(str(tmp_path / 'pre'))
    assert top1 is not None and 0 <= top1 <= 100
    # cached: the same settings return the same file, untouched
    assert make_pretrained_backbone(cfg, str(tmp_path / 'pre'), **kwargs) == (
        ckpt
    )
    assert os.stat(ckpt).st_mtime_ns == stamp
    # the record names what the weights depend on; another optimizer
    # trains again
    with open(tmp_path / 'pre' / 'pretrained.json') as f:
        settings = json.load(f)['settings']
    assert settings['threads'] == torch.get_num_threads()
    assert settings['optim_wrapper']['optimizer']['lr'] == (
        cfg.optim_wrapper.optimizer.lr
    )
    other = copy.deepcopy(cfg)
    other.optim_wrapper.optimizer.lr = 0.01
    assert (
        make_pretrained_backbone(other, str(tmp_path / 'pre'), **kwargs)
        == ckpt
    )
    assert os.stat(ckpt).st_mtime_ns != stamp
    # the pretraining task has its own 8 classes, none of the hard set's
    plain = pretrain_config(cfg, kwargs['data_root'], 1, 0)
    assert plain.model.head.num_classes == 8
    assert not set(plain.train_dataloader.dataset.classes) & set(
        cfg.train_dataloader.dataset.classes
    )
    # ... and no horizontal flip, which would turn a grating at 22.5
    # degrees into one at 157.5 (another class), even when the benchmark
    # config flips its own training images
    flipped = copy.deepcopy(cfg)
    flipped.train_dataloader.dataset.pipeline.insert(
        2, dict(type='RandomFlip', prob=0.5, direction='horizontal')
    )
    steps = pretrain_config(
        flipped, kwargs['data_root'], 1, 0
    ).train_dataloader.dataset.pipeline
    assert [s['type'] for s in steps] == [
        s['type']
        for s in flipped.train_dataloader.dataset.pipeline
        if s['type'] != 'RandomFlip'
    ]
    assert len(steps) >= 3
    # both models of the fine-tuning protocol load its backbone weights
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    tuned = with_pretrained_backbone(cfg, ckpt)
    for model_cfg in (tuned.model, plain_config(tuned).model):
        model = MODELS.build(model_cfg)
        model.init_weights()
        weight = model.backbone.conv1.weight
        torch.testing.assert_close(
            weight, state['state_dict']['backbone.conv1.weight']
        )
    with pytest.raises(FileNotFoundError, match='--init .*no such file'):
        with_pretrained_backbone(cfg, str(tmp_path / 'missing.pth'))


def test_tool_end_to_end(hard_root, repo_root, tmp_path):
    """One epoch of both models in both protocols; one line per protocol."""
    from scrim_mm.analysis import make_pretrained_backbone

    ckpt = make_pretrained_backbone(
        Config.fromfile(osp.join(repo_root, CONFIG)),
        str(tmp_path / 'pre'),
        data_root=str(tmp_path / 'pretrain_set'),
        epochs=1,
        train_per_class=2,
        test_per_class=1,
    )
    proc = subprocess.run(
        [
            sys.executable,
            osp.join(repo_root, 'tools/analysis/part_benchmark.py'),
            osp.join(repo_root, CONFIG),
            '--data-root',
            hard_root,
            '--epochs',
            '1',
            '--seeds',
            '0',
            '--work-dir',
            str(tmp_path / 'work'),
            '--init',
            ckpt,
            '--finetune-train-per-class',
            '2',
            '--cfg-options',
            'model.fpl_head.crop_size=32',
            'train_dataloader.num_workers=0',
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    num = r'-?(\d+\.\d\d|inf)'
    for line, protocol in zip(lines[-2:], ('scratch', 'finetune')):
        assert re.fullmatch(
            rf'part-benchmark protocol={protocol} scrim_top1={num} '
            rf'plain_top1={num} worst_seed_diff={num} '
            rf'hit_s3={num} chance_s3={num} worst_seed_ratio_s3={num} '
            rf'hit_s4={num} chance_s4={num} worst_seed_ratio_s4={num}',
            line,
        ), line
    assert (
        f'both models start from {ckpt}, train on the first 2 images per '
        'class' in proc.stdout
    )
    assert any(line.startswith('| FPL stage |') for line in lines)
    machine = [line for line in lines if line.startswith('machine: ')]
    assert len(machine) == 1
    assert f'torch {torch.__version__} (' in machine[0]
    assert any(line.startswith('| CPL stage |') for line in lines)
    for protocol in ('scratch', 'finetune'):
        for name in ('scrim', 'plain'):
            assert osp.isfile(
                osp.join(tmp_path, 'work', protocol, name, 'epoch_1.pth')
            )


def test_tool_rejects_a_plain_config(repo_root, tmp_path):
    from scrim_mm.analysis import run_part_benchmark

    cfg = plain_config(Config.fromfile(osp.join(repo_root, CONFIG)))
    with pytest.raises(ValueError, match="model.type='ImageClassifier'"):
        run_part_benchmark(cfg, str(tmp_path))


def test_finetune_subset_keeps_the_first_images_of_each_class(
    hard_root, repo_root
):
    from mmpretrain.registry import DATASETS

    from scrim_mm.analysis import with_train_subset

    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = hard_root
    sub = with_train_subset(cfg, 2)
    assert 'indices' not in cfg.train_dataloader.dataset  # a copy
    assert sub.test_dataloader.dataset.get('indices') is None
    init_default_scope('mmpretrain')
    full = DATASETS.build(dict(cfg.train_dataloader.dataset, pipeline=[]))
    labels = full.get_gt_labels().tolist()
    assert len(labels) == 18
    # The first two of each class in the annotation order, no other.
    expected = [
        i for i, label in enumerate(labels) if labels[:i].count(label) < 2
    ]
    assert sub.train_dataloader.dataset.indices == expected
    subset = DATASETS.build(dict(sub.train_dataloader.dataset, pipeline=[]))
    counts = [subset.get_gt_labels().tolist().count(c) for c in range(6)]
    assert counts == [2] * 6

    with pytest.raises(ValueError, match=r'=4: class 0 of .* has 3 training'):
        with_train_subset(cfg, 4)
    with pytest.raises(ValueError, match='=0: give 1 or more'):
        with_train_subset(cfg, 0)
    with pytest.raises(ValueError, match='dataset.indices is set already'):
        with_train_subset(sub, 2)
