# Copyright (c) scrim-mm contributors. All rights reserved.
from collections import Counter
from types import SimpleNamespace
from typing import Dict, List, Sequence

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler
from mmengine.hooks import DistSamplerSeedHook
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import SequentialSampler

from scrim_mm.datasets.samplers import SCRIMClassBalancedBatchSampler

# Uneven class sizes: class 4 has fewer than K images, the others leave
# remainders or not.
UNEVEN = [0] * 10 + [1] * 3 + [2] * 7 + [3] * 4 + [4] * 1 + [5] * 9 + [6] * 6
P, K = 3, 4


class LabelledDataset:
    """A dataset of ``dict(index, label)`` items."""

    def __init__(self, labels: Sequence[int]) -> None:
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int) -> Dict:
        return dict(index=idx, label=self.labels[idx])


class FakeDataset(LabelledDataset):
    """A labelled dataset with mmpretrain's ``get_gt_labels``."""

    def get_gt_labels(self) -> np.ndarray:
        return np.array(self.labels)


class CatIdsDataset(LabelledDataset):
    """A labelled dataset with only mmengine's ``get_cat_ids``."""

    def get_cat_ids(self, idx: int) -> List[int]:
        return [self.labels[idx]]


class MultiLabelDataset(LabelledDataset):
    """A dataset whose images have two labels each."""

    def get_cat_ids(self, idx: int) -> List[int]:
        return [self.labels[idx], 0]


def _sampler(
    labels=UNEVEN, p=P, k=K, seed=0, dataset_type=FakeDataset, **kwargs
):
    """The batch sampler over a ``DefaultSampler``, as the Runner builds.

    The batch size is ``p * k`` unless ``batch_size`` is given.
    """
    sampler = DefaultSampler(dataset_type(labels), seed=seed)
    kwargs.setdefault('batch_size', p * k)
    return SCRIMClassBalancedBatchSampler(
        sampler, num_samples_per_class=k, **kwargs
    )


def _check_batch(
    batch: List[int], labels: Sequence[int], p: int, k: int
) -> None:
    assert len(batch) == p * k
    groups = [batch[i : i + k] for i in range(0, p * k, k)]
    group_labels = []
    for group in groups:
        classes = {labels[i] for i in group}
        assert len(classes) == 1, 'a K-group mixes classes'
        cls = classes.pop()
        group_labels.append(cls)
        if labels.count(cls) >= k:
            # Padding draws other images of the class: no repeat.
            assert len(set(group)) == k
    assert len(set(group_labels)) == p, 'classes repeat in a batch'


def test_registered():
    assert DATA_SAMPLERS.get('SCRIMClassBalancedBatchSampler') is (
        SCRIMClassBalancedBatchSampler
    )


@pytest.mark.parametrize('epoch', [0, 1, 5])
def test_batches_hold_p_classes_of_k_images(epoch):
    batch_sampler = _sampler(rank=0, world_size=1)
    batch_sampler.sampler.set_epoch(epoch)
    batches = list(batch_sampler)
    # Chunks: 3 + 1 + 2 + 1 + 1 + 3 + 2 = 13, at most 3 per class, so
    # B = max(ceil(13 / 3), 3) = 5.
    assert batch_sampler.num_global_batches == 5
    assert len(batches) == len(batch_sampler) == 5
    assert batch_sampler.batch_size == P * K
    for batch in batches:
        assert all(type(i) is int for i in batch)
        _check_batch(batch, UNEVEN, P, K)
    assert set().union(*batches) == set(range(len(UNEVEN)))


def test_one_dominant_class_sets_the_number_of_batches():
    labels = [0] * 20 + [1] * 2 + [2] * 2
    batch_sampler = _sampler(labels, p=2, k=2, rank=0, world_size=1)
    # Class 0 has 10 chunks and no batch may hold two of them.
    assert batch_sampler.num_global_batches == 10
    batches = list(batch_sampler)
    for batch in batches:
        _check_batch(batch, labels, 2, 2)
    assert set().union(*batches) == set(range(len(labels)))


@pytest.mark.parametrize('world_size', [2, 4])
def test_distributed_shares(world_size):
    batch_samplers = [
        _sampler(rank=r, world_size=world_size) for r in range(world_size)
    ]
    for epoch in (0, 3):
        for s in batch_samplers:
            s.sampler.set_epoch(epoch)
        shares = [list(s) for s in batch_samplers]
        glob = batch_samplers[0].global_batches()
        # Every rank yields the same number of P x K batches.
        assert {len(share) for share in shares} == {len(batch_samplers[0])}
        assert len(glob) == world_size * len(batch_samplers[0])
        for rank, share in enumerate(shares):
            # The ranks take disjoint positions of one global batch list.
            assert share == glob[rank::world_size]
            for batch in share:
                _check_batch(batch, UNEVEN, P, K)
        # Together they cover every index at least once (with padding,
        # some indices occur more than once).
        union = {i for share in shares for batch in share for i in batch}
        assert union == set(range(len(UNEVEN)))


@pytest.mark.parametrize('world_size', [1, 2, 4])
def test_distributed_shares_partition_without_padding(world_size):
    # 8 classes x 8 images, P = K = 4: 16 chunks, 4 batches, no padding.
    labels = [c for c in range(8) for _ in range(8)]
    shares = [
        list(_sampler(labels, p=4, k=4, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    flat = [i for share in shares for batch in share for i in batch]
    assert sorted(flat) == list(range(len(labels)))


def test_ranks_pad_to_equal_length():
    # 5 batches over 2 and 4 ranks: padded to 6 and 8 batches.
    for world_size, per_rank in ((2, 3), (4, 2)):
        batch_samplers = [
            _sampler(rank=r, world_size=world_size) for r in range(world_size)
        ]
        assert all(len(s) == per_rank for s in batch_samplers)
        assert all(len(list(s)) == per_rank for s in batch_samplers)


def test_set_epoch_reshuffles_deterministically():
    a, b = _sampler(seed=3), _sampler(seed=3)
    first = list(a)
    assert list(a) == first  # same epoch, same order
    assert list(b) == first  # same seed, same order
    a.sampler.set_epoch(1)
    second = list(a)
    assert second != first
    assert a.global_batches(1) == second
    b.sampler.set_epoch(1)
    assert list(b) == second
    a.sampler.set_epoch(0)
    assert list(a) == first
    assert list(_sampler(seed=4)) != first


def test_default_seed_and_dist_info():
    batch_sampler = _sampler(seed=None)
    assert isinstance(batch_sampler.seed, int)
    assert batch_sampler.seed == batch_sampler.sampler.seed
    assert (batch_sampler.rank, batch_sampler.world_size) == (0, 1)


def test_get_cat_ids_fallback():
    for batch in _sampler(dataset_type=CatIdsDataset):
        _check_batch(batch, UNEVEN, P, K)


def test_one_label_per_image():
    with pytest.raises(ValueError, match='exactly one label'):
        _sampler(dataset_type=MultiLabelDataset)


@pytest.mark.parametrize('p', [1, 2, 5, 7])
def test_any_batch_size_that_k_divides(p):
    # P follows from the batch size: batch_size // K classes per batch.
    batch_sampler = _sampler(batch_size=p * K, rank=0, world_size=1)
    assert batch_sampler.batch_size == p * K
    assert batch_sampler.num_classes_per_batch == p
    batches = list(batch_sampler)
    for batch in batches:
        _check_batch(batch, UNEVEN, p, K)
    assert set().union(*batches) == set(range(len(UNEVEN)))


def test_too_many_classes_per_batch():
    with pytest.raises(
        ValueError,
        match=r'^batch_size=32: 8 classes of 4 images per batch, more than '
        r'the 7 classes .*; use a batch size of at most 28 \(7 x 4\) or '
        r'raise batch_sampler.num_samples_per_class$',
    ):
        _sampler(p=8)


@pytest.mark.parametrize('bad', [0, -1, 2.0, True])
def test_invalid_batch_size_or_k(bad):
    with pytest.raises(
        ValueError, match=r'^batch_sampler.num_samples_per_class=.*positive'
    ):
        _sampler(k=bad)
    with pytest.raises(ValueError, match=r'^batch_size=.*positive'):
        _sampler(batch_size=bad)


@pytest.mark.parametrize(
    'batch_size, examples', [(13, '12 or 16'), (2, '4 or 8'), (6, '4 or 8')]
)
def test_batch_size_not_a_multiple_of_k(batch_size, examples):
    with pytest.raises(ValueError) as info:
        _sampler(batch_size=batch_size)
    assert str(info.value) == (
        f'batch_size={batch_size}: not a multiple of '
        'batch_sampler.num_samples_per_class=4; use a batch size that 4 '
        f'divides (e.g. {examples})'
    )


def test_classes_per_batch_names_the_config_key():
    check = SCRIMClassBalancedBatchSampler.classes_per_batch
    assert check(12, 4) == 3
    with pytest.raises(
        ValueError, match=r'^train_dataloader.batch_size=5: not a multiple'
    ):
        check(5, 2, key='train_dataloader.batch_size')


def test_sampler_without_seed_and_epoch():
    sampler = SequentialSampler(FakeDataset(UNEVEN))
    with pytest.raises(
        ValueError, match=r'^sampler=SequentialSampler: .*DefaultSampler'
    ):
        SCRIMClassBalancedBatchSampler(sampler, P * K, K)


def test_invalid_rank():
    with pytest.raises(ValueError, match=r'^rank=2: .*world_size=2'):
        _sampler(rank=2, world_size=2)


def test_dataset_without_labels():
    with pytest.raises(
        ValueError, match=r'^dataset=LabelledDataset: .*get_gt'
    ):
        _sampler(dataset_type=LabelledDataset)


def test_empty_dataset():
    with pytest.raises(ValueError, match=r'^dataset=FakeDataset: is empty'):
        _sampler(labels=[])


def _loader(batch_size: int = P * K, **cfg):
    cfg = dict(
        dataset=FakeDataset(UNEVEN),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(
            type='SCRIMClassBalancedBatchSampler',
            num_samples_per_class=K,
        ),
        batch_size=batch_size,
        num_workers=0,
        **cfg,
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return Runner.build_dataloader(cfg, seed=1)


def _set_epoch(loader, epoch: int) -> None:
    """Set the epoch as mmengine's training does, through its hook."""
    runner = SimpleNamespace(
        train_loop=SimpleNamespace(dataloader=loader), epoch=epoch
    )
    DistSamplerSeedHook().before_train_epoch(runner)


def test_runner_dataloader():
    loader = _loader()
    batch_sampler = loader.batch_sampler
    assert isinstance(batch_sampler, SCRIMClassBalancedBatchSampler)
    assert isinstance(batch_sampler.sampler, DefaultSampler)
    assert batch_sampler.seed == 1  # the Runner's seed
    assert len(loader) == len(batch_sampler) == 5
    seen = Counter()
    for batch in loader:
        assert len(batch['index']) == P * K
        _check_batch(batch['index'], UNEVEN, P, K)
        seen.update(batch['index'])
    assert set(seen) == set(range(len(UNEVEN)))


def test_runner_dataloader_epochs_and_resume():
    loader = _loader()
    first = [batch['index'] for batch in loader]
    _set_epoch(loader, 2)
    assert loader.batch_sampler.sampler.epoch == 2
    second = [batch['index'] for batch in loader]
    assert second != first
    assert second == loader.batch_sampler.global_batches(2)
    # A resumed run builds a new loader with the same seed and sets the
    # epoch it continues at: it gets that epoch's batches again.
    resumed = _loader()
    _set_epoch(resumed, 2)
    assert [batch['index'] for batch in resumed] == second


def test_runner_dataloader_takes_p_from_batch_size():
    # The Runner hands the dataloader's batch_size to the batch sampler.
    loader = _loader(2 * K)
    assert loader.batch_sampler.num_classes_per_batch == 2
    batches = [batch['index'] for batch in loader]
    assert len(batches) == len(loader) == 7  # 13 chunks, 3 of class 0
    for batch in batches:
        _check_batch(batch, UNEVEN, 2, K)


def test_runner_dataloader_wrong_batch_size():
    with pytest.raises(
        ValueError, match=r'^batch_size=13: not a multiple of .*=4; '
    ):
        _loader(P * K + 1)


def test_runner_dataloader_num_batch_per_epoch():
    # The Runner slices the dataset to 2 x 12 images: classes 0-3.
    loader = _loader(num_batch_per_epoch=2)
    assert len(loader.dataset) == 2 * P * K
    for batch in loader:
        _check_batch(batch['index'], UNEVEN, P, K)
        assert max(batch['index']) < 2 * P * K
