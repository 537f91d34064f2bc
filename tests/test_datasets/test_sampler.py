# Copyright (c) scrim-mm contributors. All rights reserved.
from collections import Counter
from typing import Dict, List, Sequence

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import DATA_SAMPLERS

from scrim_mm.datasets.samplers import SCRIMClassBalancedSampler

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


def _sampler(labels=UNEVEN, p=P, k=K, **kwargs):
    kwargs.setdefault('seed', 0)
    return SCRIMClassBalancedSampler(
        FakeDataset(labels),
        num_classes_per_batch=p,
        num_samples_per_class=k,
        **kwargs,
    )


def _batches(indices: List[int], size: int) -> List[List[int]]:
    assert len(indices) % size == 0
    return [indices[i : i + size] for i in range(0, len(indices), size)]


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
    assert DATA_SAMPLERS.get('SCRIMClassBalancedSampler') is (
        SCRIMClassBalancedSampler
    )


@pytest.mark.parametrize('epoch', [0, 1, 5])
def test_batches_hold_p_classes_of_k_images(epoch):
    sampler = _sampler(rank=0, world_size=1)
    sampler.set_epoch(epoch)
    indices = list(sampler)
    assert len(indices) == len(sampler)
    # Chunks: 3 + 1 + 2 + 1 + 1 + 3 + 2 = 13, at most 3 per class, so
    # B = max(ceil(13 / 3), 3) = 5.
    assert sampler.num_global_batches == 5
    assert len(sampler) == 5 * P * K
    for batch in _batches(indices, P * K):
        _check_batch(batch, UNEVEN, P, K)
    assert set(indices) == set(range(len(UNEVEN)))


def test_one_dominant_class_sets_the_number_of_batches():
    labels = [0] * 20 + [1] * 2 + [2] * 2
    sampler = _sampler(labels, p=2, k=2, rank=0, world_size=1)
    # Class 0 has 10 chunks and no batch may hold two of them.
    assert sampler.num_global_batches == 10
    indices = list(sampler)
    for batch in _batches(indices, 4):
        _check_batch(batch, labels, 2, 2)
    assert set(indices) == set(range(len(labels)))


@pytest.mark.parametrize('world_size', [2, 4])
def test_distributed_shares(world_size):
    samplers = [
        _sampler(rank=r, world_size=world_size) for r in range(world_size)
    ]
    for epoch in (0, 3):
        for s in samplers:
            s.set_epoch(epoch)
        shares = [list(s) for s in samplers]
        glob = samplers[0].global_batches()
        # Every rank yields the same number of indices, in P x K batches.
        assert len({len(share) for share in shares}) == 1
        assert all(len(share) == len(samplers[0]) for share in shares)
        assert len(glob) == world_size * len(samplers[0]) // (P * K)
        for rank, share in enumerate(shares):
            batches = _batches(share, P * K)
            # The ranks take disjoint positions of one global batch list.
            assert batches == glob[rank::world_size]
            for batch in batches:
                _check_batch(batch, UNEVEN, P, K)
        # Together they cover every index at least once (with padding,
        # some indices occur more than once).
        union = set().union(*map(set, shares))
        assert union == set(range(len(UNEVEN)))


@pytest.mark.parametrize('world_size', [1, 2, 4])
def test_distributed_shares_partition_without_padding(world_size):
    # 8 classes x 8 images, P = K = 4: 16 chunks, 4 batches, no padding.
    labels = [c for c in range(8) for _ in range(8)]
    shares = [
        list(_sampler(labels, p=4, k=4, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    flat = [i for share in shares for i in share]
    assert sorted(flat) == list(range(len(labels)))


def test_ranks_pad_to_equal_length():
    # 5 batches over 2 and 4 ranks: padded to 6 and 8 batches.
    for world_size, per_rank in ((2, 3), (4, 2)):
        samplers = [
            _sampler(rank=r, world_size=world_size) for r in range(world_size)
        ]
        assert all(len(s) == per_rank * P * K for s in samplers)
        assert all(len(list(s)) == per_rank * P * K for s in samplers)


def test_set_epoch_reshuffles_deterministically():
    a, b = _sampler(seed=3), _sampler(seed=3)
    first = list(a)
    assert list(a) == first  # same epoch, same order
    assert list(b) == first  # same seed, same order
    a.set_epoch(1)
    second = list(a)
    assert second != first
    b.set_epoch(1)
    assert list(b) == second
    a.set_epoch(0)
    assert list(a) == first
    assert list(_sampler(seed=4)) != first


def test_default_seed_and_dist_info():
    sampler = SCRIMClassBalancedSampler(
        FakeDataset(UNEVEN), num_classes_per_batch=P, num_samples_per_class=K
    )
    assert isinstance(sampler.seed, int)
    assert (sampler.rank, sampler.world_size) == (0, 1)


def test_get_cat_ids_fallback():
    sampler = SCRIMClassBalancedSampler(CatIdsDataset(UNEVEN), P, K, seed=0)
    for batch in _batches(list(sampler), P * K):
        _check_batch(batch, UNEVEN, P, K)


def test_too_many_classes_per_batch():
    with pytest.raises(ValueError, match=r'\(8\).*\(7\)'):
        _sampler(p=8)


@pytest.mark.parametrize('bad', [0, -1, 2.0])
def test_invalid_p_or_k(bad):
    with pytest.raises(ValueError, match='positive integer'):
        _sampler(p=bad)
    with pytest.raises(ValueError, match='positive integer'):
        _sampler(k=bad)


def test_explicit_batch_size_is_checked():
    _sampler(batch_size=P * K)
    with pytest.raises(ValueError, match=r'batch_size \(8\).*3 x 4 = 12'):
        _sampler(batch_size=8)


def _loader(batch_size: int, **sampler_kwargs):
    cfg = dict(
        dataset=FakeDataset(UNEVEN),
        sampler=dict(
            type='SCRIMClassBalancedSampler',
            num_classes_per_batch=P,
            num_samples_per_class=K,
            **sampler_kwargs,
        ),
        batch_size=batch_size,
        num_workers=0,
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return Runner.build_dataloader(cfg, seed=1)


def test_runner_dataloader():
    loader = _loader(P * K)
    assert isinstance(loader.sampler, SCRIMClassBalancedSampler)
    assert loader.sampler.seed == 1
    assert len(loader) == len(loader.sampler) // (P * K)
    seen = Counter()
    for batch in loader:
        assert len(batch['index']) == P * K
        _check_batch(batch['index'], UNEVEN, P, K)
        seen.update(batch['index'])
    assert set(seen) == set(range(len(UNEVEN)))


def test_runner_dataloader_wrong_batch_size():
    loader = _loader(P * K + 1)
    with pytest.raises(ValueError, match='must equal'):
        next(iter(loader))


def test_dataset_without_labels():
    with pytest.raises(TypeError, match='get_gt_labels'):
        SCRIMClassBalancedSampler(LabelledDataset(UNEVEN), P, K, seed=0)
