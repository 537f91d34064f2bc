# Copyright (c) scrim-mm contributors. All rights reserved.
"""The torchrun and Slurm launch scripts build the right command lines.

The launchers themselves need GPUs (mmengine's ``init_dist`` selects a CUDA
device), so ``python`` and ``srun`` are replaced by stubs that print the
arguments they were given.
"""

import os
import os.path as osp
import stat
import subprocess

import pytest


def stub(folder, name):
    path = osp.join(folder, name)
    with open(path, 'w') as f:
        f.write('#!/usr/bin/env bash\necho "$0 $*"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)


def run_script(repo_root, tmp_path, script, *args, **env):
    bin_dir = str(tmp_path / 'bin')
    os.makedirs(bin_dir, exist_ok=True)
    stub(bin_dir, 'python')
    stub(bin_dir, 'srun')
    full_env = dict(
        os.environ, PATH=bin_dir + os.pathsep + os.environ['PATH'], **env
    )
    proc = subprocess.run(
        ['bash', osp.join(repo_root, 'tools', script), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_dist_train(repo_root, tmp_path):
    out = run_script(
        repo_root,
        tmp_path,
        'dist_train.sh',
        'cfg.py',
        '4',
        '--amp',
        NNODES='2',
        NODE_RANK='1',
        PORT='29999',
    )
    assert '-m torch.distributed.run' in out
    for flag in (
        '--nnodes=2',
        '--node_rank=1',
        '--nproc_per_node=4',
        '--master_port=29999',
    ):
        assert flag in out
    assert out.rstrip().endswith('train.py cfg.py --launcher pytorch --amp')


def test_dist_test(repo_root, tmp_path):
    out = run_script(
        repo_root,
        tmp_path,
        'dist_test.sh',
        'cfg.py',
        'ckpt.pth',
        '2',
        '--out',
        'p.pkl',
    )
    assert '--nproc_per_node=2' in out
    assert out.rstrip().endswith(
        'test.py cfg.py ckpt.pth --launcher pytorch --out p.pkl'
    )


@pytest.mark.parametrize(
    'script, args, tail',
    [
        (
            'slurm_train.sh',
            ['part', 'job', 'cfg.py', 'wd'],
            'train.py cfg.py --work-dir=wd --launcher slurm --amp',
        ),
        (
            'slurm_test.sh',
            ['part', 'job', 'cfg.py', 'ckpt.pth'],
            'test.py cfg.py ckpt.pth --launcher slurm --amp',
        ),
    ],
)
def test_slurm(repo_root, tmp_path, script, args, tail):
    out = run_script(repo_root, tmp_path, script, *args, '--amp', GPUS='16')
    assert out.startswith(str(tmp_path / 'bin' / 'srun'))
    for flag in (
        '-p part',
        '--job-name=job',
        '--ntasks=16',
        '--ntasks-per-node=8',
    ):
        assert flag in out
    assert out.rstrip().endswith(tail)


def test_missing_arguments_fail(repo_root, tmp_path):
    proc = subprocess.run(
        ['bash', osp.join(repo_root, 'tools', 'dist_train.sh'), 'cfg.py'],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0


def test_gpu_check_runs_every_step_and_lists_the_failures(repo_root, tmp_path):
    """``gpu_check.sh`` (a one-off check on a lent GPU) runs all its steps
    when one fails, names the failed ones and exits non-zero."""
    log = tmp_path / 'calls.log'
    fake = tmp_path / 'python'
    fake.write_text(
        '#!/usr/bin/env bash\n'
        # one line per call (the CUDA probe's -c code spans three)
        'echo "$*" | tr "\\n" " " >> "$LOG"; echo >> "$LOG"\n'
        'case "$*" in *benchmark.py*--amp*) exit 3;; esac\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = subprocess.run(
        [
            'bash',
            osp.join(repo_root, 'tools', 'analysis', 'gpu_check.sh'),
            str(tmp_path / 'out'),
        ],
        env=dict(os.environ, PYTHON=str(fake), LOG=str(log)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith('-c import torch')
    assert 'tests/test_models/test_cuda.py' in calls[1]
    assert 'benchmark.py' in calls[2] and '--amp' not in calls[2]
    assert 'benchmark.py' in calls[3] and '--amp' in calls[3]
    assert 'make_demo_dataset.py' in calls[4]
    assert 'tools/train.py' in calls[5] and '--amp' in calls[5]
    assert len(calls) == 6
    failed = [
        line for line in proc.stdout.splitlines() if line.startswith('!!')
    ]
    assert failed == [
        '!! benchmark --device cuda --amp failed (exit 3)',
        '!! checkpoint written failed (exit 1)',
        '!! failed: benchmark --device cuda --amp',
        '!! failed: checkpoint written',
    ]
