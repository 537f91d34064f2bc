# Copyright (c) scrim-mm contributors. All rights reserved.
"""tools/analysis/plot_log.py on the log of a real short run."""

import json

import pytest
from PIL import Image

from tests.test_apis.demo_run import demo_run as _demo_run
from tests.test_apis.demo_run import load_script

plot_tool = load_script('tools/analysis/plot_log.py', 'h6_plot_log_tool')

SCRIM_LOSSES = [
    'loss_fused',
    'loss_raw',
    'loss_cpl_s3',
    'loss_cpl_s4',
    'loss_contrast_s3',
    'loss_contrast_s4',
    'loss_diversity_s3',
    'loss_diversity_s4',
    'loss_teacher_s3',
    'loss_teacher_s4',
    'loss_rank_s3',
    'loss_rank_s4',
]


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    return _demo_run(tmp_path_factory)


def test_plot_log_of_work_dir(demo_run, tmp_path):
    out = tmp_path / 'plots' / 'plot.png'
    info = plot_tool.main([demo_run['work_dir'], '--out', str(out)])
    assert info['log'].endswith('scalars.json')
    assert sorted(info['loss_keys']) == sorted(SCRIM_LOSSES + ['loss'])
    assert info['acc_keys'] == ['accuracy/top1']
    assert info['num_train'] == 2 and info['num_val'] == 1
    with Image.open(out) as png:
        assert png.format == 'PNG' and png.size == (1300, 480)
    # The JSON log itself works too, and a log scale.
    again = plot_tool.plot_log(
        info['log'], str(tmp_path / 'b.png'), log_y=True
    )
    assert again['loss_keys'] == info['loss_keys']


def test_find_log_picks_newest_training_run(tmp_path):
    old = tmp_path / '20240101_000000' / 'vis_data' / 'scalars.json'
    new = tmp_path / '20250101_000000' / 'vis_data' / 'scalars.json'
    test_only = tmp_path / '20260101_000000' / 'vis_data' / 'scalars.json'
    for path, line in (
        (old, {'loss': 1.0, 'loss_a': 1.0, 'step': 1}),
        (new, {'loss': 2.0, 'loss_b': 2.0, 'step': 1}),
        (test_only, {'accuracy/top1': 50.0, 'step': 1}),
    ):
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(line) + '\n')
    assert plot_tool.find_log(str(tmp_path)) == str(new)
    info = plot_tool.plot_log(str(tmp_path), str(tmp_path / 'p.png'))
    assert info['loss_keys'] == ['loss_b', 'loss'] and info['acc_keys'] == []


def test_plot_log_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such work dir'):
        plot_tool.find_log(str(tmp_path / 'nothing'))
    with pytest.raises(FileNotFoundError, match='holds no training log'):
        plot_tool.find_log(str(tmp_path))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match='line 2'):
        plot_tool.read_log(str(bad))
    no_loss = tmp_path / 'val.json'
    no_loss.write_text('{"accuracy/top1": 1.0, "step": 1}\n')
    with pytest.raises(ValueError, match='no loss_'):
        plot_tool.plot_log(str(no_loss), str(tmp_path / 'x.png'))
