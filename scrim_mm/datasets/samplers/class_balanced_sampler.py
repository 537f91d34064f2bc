# Copyright (c) scrim-mm contributors. All rights reserved.
import math
import sys
from typing import Iterator, List, Optional, Sized

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, Sampler


@DATA_SAMPLERS.register_module()
class SCRIMClassBalancedSampler(Sampler):
    """Class-balanced (P x K) sampler for SCRIM's part-contrastive loss.

    The contrastive part loss of SCRIM's CPL modules pulls together part
    features of the *same class* and pushes apart those of different classes
    within a batch (the MAMC constraint of Sun et al., "Multi-Attention
    Multi-Class Constraint for Fine-grained Image Recognition", ECCV 2018).
    With uniform sampling and hundreds of classes, a batch of 16 images
    rarely holds two images of one class, so almost every anchor has no
    positive and the loss vanishes. Like MAMC's sampler, this one builds
    every batch from ``P = num_classes_per_batch`` distinct classes with
    ``K = num_samples_per_class`` images each.

    Each epoch (the order is a function of ``seed`` and the epoch given to
    :meth:`set_epoch`, identical on every rank):

    1. The indices of each class are shuffled and cut into chunks of ``K``.
       A class with fewer than ``K`` images, or the last chunk of a class,
       is padded by re-sampling images of the same class (from the class's
       other images when it has at least ``K``, so a chunk repeats an image
       only when its class has fewer than ``K``).
    2. The chunks are grouped into batches of ``P`` chunks of distinct
       classes, drawing the classes at random (weighted by their chunks
       left). The number of batches is the smallest possible, ``B =
       max(ceil(#chunks / P), max chunks of one class)``; slots a batch
       cannot fill with a distinct class's chunk are filled with a freshly
       sampled chunk of another class not yet in the batch.
    3. The batch order is shuffled, ``B`` is padded to a multiple of the
       world size with extra random batches, and rank ``r`` takes batches
       ``r, r + world_size, ...``.

    Consequently, per epoch: every rank yields the same number of batches,
    :meth:`__len__` ``= P * K * ceil(B / world_size)`` indices; the ranks
    receive disjoint sets of batches of one global list, and every index of
    the dataset is in at least one of its batches. Indices may occur more
    than once (the padding of steps 1-3), so the ranks' index sets are
    disjoint only when no padding was needed. Within a batch the ``K``
    indices of a class are consecutive.

    Note:
        The per-rank dataloader ``batch_size`` **must** equal ``P * K``;
        otherwise batches straddle the class groups. The sampler raises a
        ``ValueError`` when it is given ``batch_size``, or when it is
        iterated by a torch ``BatchSampler`` (what a ``DataLoader`` with
        ``batch_size`` builds) of another batch size. A config reads::

            train_dataloader = dict(
                batch_size=16,  # = 4 x 4
                sampler=dict(
                    type='SCRIMClassBalancedSampler',
                    num_classes_per_batch=4,
                    num_samples_per_class=4),
                ...)

    Args:
        dataset (Sized): The dataset. It must provide ``get_gt_labels()``
            (mmpretrain datasets) or ``get_cat_ids(idx)`` (one label each).
        num_classes_per_batch (int): ``P``, distinct classes per batch.
        num_samples_per_class (int): ``K``, images of each class per batch.
        seed (int, optional): Random seed, identical on every rank. If None,
            a seed is drawn and synchronised across ranks as mmengine's
            ``DefaultSampler`` does. Defaults to None.
        rank (int, optional): This process's rank; from
            ``mmengine.dist.get_dist_info()`` if None. Defaults to None.
        world_size (int, optional): Number of processes; from
            ``mmengine.dist.get_dist_info()`` if None. Defaults to None.
        batch_size (int, optional): The dataloader's per-rank batch size,
            checked against ``P * K`` when given. Defaults to None.
    """

    def __init__(
        self,
        dataset: Sized,
        num_classes_per_batch: int,
        num_samples_per_class: int,
        seed: Optional[int] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        batch_size: Optional[int] = None,
    ) -> None:
        for name, value in (
            ('num_classes_per_batch', num_classes_per_batch),
            ('num_samples_per_class', num_samples_per_class),
        ):
            valid = isinstance(value, int) and not isinstance(value, bool)
            if not valid or value < 1:
                raise ValueError(
                    f'{name} must be a positive integer, got {value!r}'
                )
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(
                f'invalid rank {self.rank} for world size '
                f'{self.world_size}'
            )
        self.dataset = dataset
        self.num_classes_per_batch = num_classes_per_batch
        self.num_samples_per_class = num_samples_per_class
        self.batch_size = num_classes_per_batch * num_samples_per_class
        if batch_size is not None:
            self._check_batch_size(batch_size)
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0

        labels = self._get_labels(dataset)
        classes, inverse = np.unique(labels, return_inverse=True)
        self.class_indices: List[np.ndarray] = [
            np.flatnonzero(inverse == c) for c in range(len(classes))
        ]
        if num_classes_per_batch > len(classes):
            raise ValueError(
                f'num_classes_per_batch ({num_classes_per_batch}) is larger '
                f'than the number of classes with images in the dataset '
                f'({len(classes)}): a batch needs that many distinct '
                'classes.'
            )
        k = num_samples_per_class
        self._num_chunks = np.array(
            [math.ceil(len(idx) / k) for idx in self.class_indices]
        )
        # The fewest batches that hold every chunk: no batch holds two chunks
        # of one class, and each holds at most P chunks.
        self.num_global_batches = int(
            max(
                math.ceil(self._num_chunks.sum() / num_classes_per_batch),
                self._num_chunks.max(),
            )
        )
        self.num_batches = math.ceil(self.num_global_batches / self.world_size)
        self.num_samples = self.num_batches * self.batch_size

    @staticmethod
    def _get_labels(dataset: Sized) -> np.ndarray:
        """Return one integer label per index of ``dataset``."""
        num = len(dataset)
        if num == 0:
            raise ValueError('the dataset is empty')
        if hasattr(dataset, 'get_gt_labels'):
            # A dataset sliced by the Runner (``num_batch_per_epoch``)
            # forwards to the full one: keep the first ``len`` labels.
            labels = np.asarray(dataset.get_gt_labels())[:num]
        elif hasattr(dataset, 'get_cat_ids'):
            cat_ids = [list(dataset.get_cat_ids(i)) for i in range(num)]
            if any(len(ids) != 1 for ids in cat_ids):
                raise ValueError(
                    'SCRIMClassBalancedSampler needs exactly '
                    'one label per sample'
                )
            labels = np.array([ids[0] for ids in cat_ids])
        else:
            raise TypeError(
                f'{type(dataset).__name__} has neither get_gt_labels() nor '
                'get_cat_ids(): cannot group its samples by class'
            )
        if labels.shape != (num,):
            raise ValueError(
                'SCRIMClassBalancedSampler needs exactly one '
                f'label per sample, got labels of shape '
                f'{labels.shape} for {num} samples'
            )
        return labels.astype(np.int64)

    def _check_batch_size(self, batch_size: int) -> None:
        if batch_size != self.batch_size:
            raise ValueError(
                f'the dataloader batch_size ({batch_size}) must equal '
                f'num_classes_per_batch x num_samples_per_class = '
                f'{self.num_classes_per_batch} x '
                f'{self.num_samples_per_class} = {self.batch_size} for '
                'SCRIMClassBalancedSampler'
            )

    def _check_caller_batch_size(self) -> None:
        """Check the batch size of the ``BatchSampler`` iterating us.

        A ``DataLoader`` built with ``batch_size`` wraps the sampler in a
        ``BatchSampler`` whose ``__iter__`` calls ``iter(sampler)``; the
        sampler is never told the batch size, so it is read from that
        caller's frame. Best effort: nothing is checked for other callers.
        """
        try:
            # 0: this method, 1: __iter__, 2: the caller of iter(self).
            caller = sys._getframe(2).f_locals.get('self')
        except (AttributeError, ValueError):
            return
        if isinstance(caller, BatchSampler) and caller.sampler is self:
            self._check_batch_size(caller.batch_size)

    def _chunk(self, rng: np.random.Generator, cls: int) -> np.ndarray:
        """Draw a fresh chunk of ``K`` indices of one class."""
        idx = self.class_indices[cls]
        k = self.num_samples_per_class
        if len(idx) >= k:
            return rng.choice(idx, k, replace=False)
        return np.concatenate([idx, rng.choice(idx, k - len(idx))])

    def _class_chunks(
        self, rng: np.random.Generator, cls: int
    ) -> List[np.ndarray]:
        """Shuffle one class and cut it into padded chunks of ``K``."""
        k = self.num_samples_per_class
        idx = rng.permutation(self.class_indices[cls])
        num = len(idx)
        if num < k:
            return [self._chunk(rng, cls)]
        chunks = [idx[i : i + k] for i in range(0, num, k)]
        missing = k - len(chunks[-1])
        if missing:
            # Pad from the class's other images: no repeat inside the chunk.
            rest = idx[: num - len(chunks[-1])]
            pad = rng.choice(rest, missing, replace=False)
            chunks[-1] = np.concatenate([chunks[-1], pad])
        return chunks

    def _complete_classes(
        self, rng: np.random.Generator, members: List[int]
    ) -> List[int]:
        """Complete a batch's classes with random other classes."""
        missing = self.num_classes_per_batch - len(members)
        if missing:
            free = np.setdiff1d(
                np.arange(len(self.class_indices)), members, assume_unique=True
            )
            members = (
                members + rng.choice(free, missing, replace=False).tolist()
            )
        return members

    def global_batches(self, epoch: Optional[int] = None) -> List[List[int]]:
        """Return the batches of all ranks for an epoch.

        Args:
            epoch (int, optional): The epoch; the one set by
                :meth:`set_epoch` if None. Defaults to None.

        Returns:
            list[list[int]]: ``world_size * ceil(B / world_size)`` batches of
            ``P * K`` dataset indices each; rank ``r`` iterates over batches
            ``r, r + world_size, ...`` in this order.
        """
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed % 2**32, epoch])
        p = self.num_classes_per_batch
        num_classes = len(self.class_indices)
        queues = [self._class_chunks(rng, c) for c in range(num_classes)]
        left = np.array([len(q) for q in queues])
        batches = []
        num_global = self.num_global_batches
        for b in range(num_global):
            remaining = num_global - b
            # A class with a chunk for every remaining batch must be in this
            # one; taking as many classes as possible keeps the rest
            # feasible (left <= remaining and sum(left) <= P * remaining).
            forced = np.flatnonzero(left == remaining)
            optional = np.flatnonzero((left > 0) & (left < remaining))
            take = min(p - len(forced), len(optional))
            chosen = forced.tolist()
            if take > 0:
                weights = left[optional] / left[optional].sum()
                chosen += rng.choice(
                    optional, take, replace=False, p=weights
                ).tolist()
            chunks = {}
            for cls in chosen:
                chunks[cls] = queues[cls][len(queues[cls]) - left[cls]]
                left[cls] -= 1
            members = self._complete_classes(rng, chosen)
            for cls in members[len(chosen) :]:
                chunks[cls] = self._chunk(rng, cls)
            order = rng.permutation(len(members))
            batches.append(
                np.concatenate([chunks[members[i]] for i in order]).tolist()
            )
        assert not left.any()
        batches = [batches[i] for i in rng.permutation(len(batches))]
        # Pad with extra random batches so every rank gets as many.
        for _ in range(self.num_batches * self.world_size - len(batches)):
            members = self._complete_classes(rng, [])
            batches.append(
                np.concatenate([self._chunk(rng, c) for c in members]).tolist()
            )
        return batches

    def __iter__(self) -> Iterator[int]:
        """Iterate over this rank's indices, ``P * K`` per batch."""
        self._check_caller_batch_size()
        batches = self.global_batches()[self.rank :: self.world_size]
        return iter([int(i) for batch in batches for i in batch])

    def __len__(self) -> int:
        """The number of indices this rank yields per epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: each epoch gets its own (reproducible) order.

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = epoch
