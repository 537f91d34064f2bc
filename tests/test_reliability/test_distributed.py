# Copyright (c) scrim-mm contributors. All rights reserved.
"""Distributed training on the CPU: two gloo processes.

The Runner's distributed launcher needs GPUs (``mmengine.dist.init_dist``
selects a CUDA device), so this test builds what it builds by hand: a
process group of two ranks (gloo, ``torch.multiprocessing.spawn``), the
SCRIM model wrapped in mmengine's ``MMDistributedDataParallel``
(``device_ids=None``, *without* ``find_unused_parameters``: every parameter
must get a gradient in every step, or DDP stops at the next one), and
``train_step`` on different data per rank. Both ranks must end with the
same parameters, although they started from different initialisations and
saw different images. The class-balanced sampler, seeded through
``mmengine.dist.sync_random_seed``, must give the ranks disjoint batches
that together cover the dataset.
"""

import os.path as osp
import re
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD_SIZE = 2
STEPS = 3


class Labels:
    """A dataset of labels only, with mmpretrain's ``get_gt_labels``."""

    def __init__(self, labels) -> None:
        self.labels = np.asarray(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def get_gt_labels(self) -> np.ndarray:
        return self.labels


def _sampler_indices(rank: int) -> dict:
    from mmengine.dataset import DefaultSampler

    from scrim_mm.datasets.samplers import SCRIMClassBalancedBatchSampler

    # 8 classes x 4 images, P = 2 classes x K = 2 images: 16 chunks, 8
    # batches, 4 per rank, no padding needed. The DefaultSampler draws one
    # seed and shares it across the ranks, as in a Runner.
    dataset = Labels(np.repeat(np.arange(8), 4))
    batch_sampler = SCRIMClassBalancedBatchSampler(
        DefaultSampler(dataset),
        batch_size=4,
        num_samples_per_class=2,
    )
    batch_sampler.sampler.set_epoch(1)
    return dict(
        rank=rank,
        seed=batch_sampler.seed,
        indices=[i for batch in batch_sampler for i in batch],
        batches=batch_sampler.global_batches(),
    )


def _worker(rank: int, init_file: str, out_dir: str, config: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo',
        init_method=f'file://{init_file}',
        rank=rank,
        world_size=WORLD_SIZE,
    )
    try:
        from mmengine.config import Config
        from mmengine.model import MMDistributedDataParallel
        from mmengine.optim import OptimWrapper
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import MODELS
        from mmpretrain.structures import DataSample

        import scrim_mm  # noqa: F401

        sampled = [None] * WORLD_SIZE
        dist.all_gather_object(sampled, _sampler_indices(rank))

        cfg = Config.fromfile(config).model
        cfg.fpl_head.crop_size = 32
        torch.manual_seed(rank)  # a different start on every rank
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(cfg)
        model.init_weights()
        start = {k: v.clone() for k, v in model.named_parameters()}
        ddp = MMDistributedDataParallel(module=model, device_ids=None)
        optim = OptimWrapper(
            torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9),
            clip_grad=dict(max_norm=5.0),
        )
        generator = torch.Generator().manual_seed(100 + rank)
        losses = []
        for _ in range(STEPS):
            images = torch.randint(
                0, 256, (4, 3, 64, 64), generator=generator, dtype=torch.uint8
            )
            labels = [2 * rank, 2 * rank, 2 * rank + 1, 2 * rank + 1]
            data = dict(
                inputs=list(images),
                data_samples=[DataSample().set_gt_label(i) for i in labels],
            )
            log = ddp.train_step(data, optim)
            losses.append(float(log['loss'].detach()))
        torch.save(
            dict(
                start=start,
                params={k: v.detach() for k, v in model.named_parameters()},
                losses=losses,
                sampled=sampled,
            ),
            osp.join(out_dir, f'rank{rank}.pth'),
        )
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_end_with_identical_parameters(tmp_path, demo_config):
    context = mp.spawn(
        _worker,
        args=(str(tmp_path / 'init'), str(tmp_path), demo_config),
        nprocs=WORLD_SIZE,
        join=False,
    )
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for proc in context.processes:
                proc.kill()
            pytest.fail('the distributed workers did not finish in 300 s')
    results = [
        torch.load(tmp_path / f'rank{r}.pth', weights_only=False)
        for r in range(WORLD_SIZE)
    ]
    first, second = results

    # Different starts and different data on the two ranks ...
    assert any(
        not torch.equal(v, second['start'][k])
        for k, v in first['start'].items()
    )
    assert first['losses'] != second['losses']
    # ... but DDP broadcasts rank 0's start and averages the gradients.
    assert first['params'].keys() == second['params'].keys()
    for key, value in first['params'].items():
        assert torch.equal(value, second['params'][key]), key
    # Training moved every parameter, except navigator levels whose anchors
    # NMS did not select at 64 px, or whose selected regions the ranking
    # left unordered (the demo config ties the regions on which the
    # teacher is worse than chance, most of them in the first steps):
    # their scores get zero gradients, as in NTS-Net. And a few batch-norm
    # scales of the deep stages, whose channels are dead on every position
    # of these tiny maps (the demo config's crops do not train the
    # backbone). DDP without find_unused_parameters would have stopped at
    # the second step had any parameter been left out of the graph.
    frozen = [
        k
        for k, v in first['params'].items()
        if torch.equal(v, first['start'][k])
    ]
    assert all(
        k.startswith('fpl_head.navigators.')
        or (k.startswith('backbone.layer') and '.bn' in k)
        for k in frozen
    ), frozen
    # At 64 px only the first anchor level of each stage fits the input
    # (FPLHead fits the levels to 0.4 of the side): the later levels'
    # convolutions score no anchor and get no gradient by design; they
    # are left out of the share below.
    fitted_out = [
        k
        for k in frozen
        if re.match(r'fpl_head\.navigators\.\d\.(score_)?convs\.[12]\.', k)
    ]
    assert len(fitted_out) == 16, fitted_out  # 2 stages x 2 levels x 4
    assert len(frozen) - len(fitted_out) < 0.15 * len(first['params'])
    # Every navigator learned: its first level (the finest anchors, most of
    # the selected regions) moved.
    for stage in range(2):
        assert f'fpl_head.navigators.{stage}.convs.0.weight' not in frozen
        assert (
            f'fpl_head.navigators.{stage}.score_convs.0.weight' not in frozen
        )

    # The class-balanced sampler: one seed, disjoint batches per rank.
    sampled = first['sampled']
    assert sampled == second['sampled']
    seeds = {s['seed'] for s in sampled}
    assert len(seeds) == 1
    per_rank = [s['indices'] for s in sampled]
    assert len(per_rank[0]) == len(per_rank[1]) == 16
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == list(range(32))
    batches = sampled[0]['batches']
    for rank, indices in enumerate(per_rank):
        mine = [i for batch in batches[rank::WORLD_SIZE] for i in batch]
        assert indices == mine
