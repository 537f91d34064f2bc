# Copyright (c) scrim-mm contributors. All rights reserved.
import torch

from scrim_mm.utils import machine


def _fake_cpu(tmp_path, monkeypatch):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(
        'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n'
        'model\t\t: 143\nmodel name\t: Test CPU @ 2.0GHz\n'
        'stepping\t: 8\n\nprocessor\t: 1\nmodel name\t: Other CPU\n'
    )
    l2 = tmp_path / 'l2'
    l2.write_text('2048K\n')
    monkeypatch.setattr(machine, 'CPUINFO', str(cpuinfo))
    monkeypatch.setattr(machine, 'L2_SIZE', str(l2))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


def test_names_the_first_cpu_its_cache_torch_and_threads(
    tmp_path, monkeypatch
):
    _fake_cpu(tmp_path, monkeypatch)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 1)
    assert machine.describe_machine().endswith(', 1 thread')
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 3)
    line = machine.describe_machine()
    # The first processor's block only, not the second's model name.
    assert line.startswith(
        'Test CPU @ 2.0GHz (family 6 model 143 stepping 8), L2 2048K, '
    ), line
    assert line.endswith(
        f'torch {torch.__version__} '
        f'({torch.backends.cpu.get_cpu_capability()}), 3 threads'
    ), line
    assert 'GPU' not in line


def test_names_the_gpu_when_cuda_is_available(tmp_path, monkeypatch):
    _fake_cpu(tmp_path, monkeypatch)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda: 'Test GPU')
    monkeypatch.setattr(torch.version, 'cuda', '12.8')
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 2)
    line = machine.describe_machine()
    assert line.endswith(
        f'({torch.backends.cpu.get_cpu_capability()}), GPU Test GPU '
        '(CUDA 12.8), 2 threads'
    ), line


def test_unreadable_files_are_named_unknown(tmp_path, monkeypatch):
    """Not Linux: nothing to read, no error."""
    monkeypatch.setattr(machine, 'CPUINFO', str(tmp_path / 'missing'))
    monkeypatch.setattr(machine, 'L2_SIZE', str(tmp_path / 'missing'))
    assert machine.describe_machine().startswith(
        'unknown CPU (family ? model ? stepping ?), L2 unknown, '
    )


def test_files_that_cannot_be_opened_are_named_unknown(tmp_path, monkeypatch):
    """Present but unreadable (e.g. a restricted /sys): no error either."""
    _fake_cpu(tmp_path, monkeypatch)

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, 'Permission denied', path)

    monkeypatch.setattr(machine, 'open', refuse, raising=False)
    assert machine.describe_machine().startswith(
        'unknown CPU (family ? model ? stepping ?), L2 unknown, '
    )
