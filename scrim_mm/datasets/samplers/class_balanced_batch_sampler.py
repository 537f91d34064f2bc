# Copyright (c) scrim-mm contributors. All rights reserved.
import math
from typing import Iterator, List, Optional, Sized

import numpy as np
from mmengine.dist import get_dist_info
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, Sampler


@DATA_SAMPLERS.register_module()
class SCRIMClassBalancedBatchSampler(BatchSampler):
    """Class-balanced (P x K) batch sampler for SCRIM's part-contrastive loss.

    The contrastive part loss of SCRIM's CPL modules pulls together part
    features of the *same class* and pushes apart those of different classes
    within a batch (the MAMC constraint of Sun et al., "Multi-Attention
    Multi-Class Constraint for Fine-grained Image Recognition", ECCV 2018).
    With uniform sampling and hundreds of classes, a batch of 16 images
    rarely holds two images of one class, so almost every anchor has no
    positive and the loss vanishes. Like MAMC's sampler, this one builds
    every batch from ``P`` distinct classes with ``K =
    num_samples_per_class`` images each. ``P`` follows from the
    dataloader's ``batch_size``: ``P = batch_size // K``, so any batch size
    that ``K`` divides works (e.g. ``--cfg-options
    train_dataloader.batch_size=4`` with ``K = 2`` gives 2 classes x 2
    images).

    It is set through the ``batch_sampler`` key of an mmengine dataloader
    config, as mmdet's ``AspectRatioBatchSampler`` is. mmengine's Runner
    builds the dataloader's ``sampler`` first and hands it over with the
    dataloader's ``batch_size``. The sampler supplies the dataset, the seed
    (the Runner's, or one synchronised across ranks) and the epoch (set by
    mmengine through ``batch_sampler.sampler.set_epoch``); its own order is
    not used, because a P x K batch list must be planned over the whole
    dataset, identically on every rank. mmengine's ``DefaultSampler`` fits.
    A config reads::

        train_dataloader = dict(
            batch_size=8,  # P x K: 4 classes x 2 images
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_sampler=dict(
                type='SCRIMClassBalancedBatchSampler',
                num_samples_per_class=2),
            ...)

    Each epoch (the order is a function of the sampler's ``seed`` and
    ``epoch``, identical on every rank):

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

    Consequently, per epoch: every rank yields ``len(self) = ceil(B /
    world_size)`` batches; the ranks receive disjoint sets of batches of one
    global list, and every index of the dataset is in at least one of its
    batches. Indices may occur more than once (the padding of steps 1-3), so
    the ranks' index sets are disjoint only when no padding was needed.
    Within a batch the ``K`` indices of a class are consecutive.

    Args:
        sampler (Sampler): The dataloader's sampler, with the attributes
            ``dataset`` (which must provide ``get_gt_labels()``, as
            mmpretrain datasets do, or ``get_cat_ids(idx)`` with one label
            each), ``seed`` and ``epoch``, e.g. mmengine's
            ``DefaultSampler``.
        batch_size (int): The dataloader's per-rank batch size (mmengine's
            Runner passes it); a multiple of ``num_samples_per_class``.
        num_samples_per_class (int): ``K``, images of each class per batch;
            each batch holds ``batch_size // K`` distinct classes.
        rank (int, optional): This process's rank; from
            ``mmengine.dist.get_dist_info()`` if None. Defaults to None.
        world_size (int, optional): Number of processes; from
            ``mmengine.dist.get_dist_info()`` if None. Defaults to None.
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int,
        num_samples_per_class: int,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ) -> None:
        p = self.classes_per_batch(batch_size, num_samples_per_class)
        k = num_samples_per_class
        missing = [
            attr
            for attr in ('dataset', 'seed', 'epoch')
            if not hasattr(sampler, attr)
        ]
        if missing:
            raise ValueError(
                f'sampler={type(sampler).__name__}: has no '
                f'{", ".join(missing)}, from which the P x K batch sampler '
                "takes its data and order; set the dataloader's sampler to "
                "dict(type='DefaultSampler')"
            )
        super().__init__(sampler, batch_size, drop_last=False)
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(
                f'rank={self.rank}: not a rank of world_size='
                f'{self.world_size}; give 0 <= rank < world_size'
            )
        #: int: ``P``, distinct classes per batch (``batch_size // K``).
        self.num_classes_per_batch = p
        self.num_samples_per_class = k

        labels = self._get_labels(sampler.dataset)
        classes, inverse = np.unique(labels, return_inverse=True)
        self.class_indices: List[np.ndarray] = [
            np.flatnonzero(inverse == c) for c in range(len(classes))
        ]
        if p > len(classes):
            n = len(classes)
            raise ValueError(
                f'batch_size={batch_size}: {p} classes of {k} images per '
                f'batch, more than the {n} classes with images in the '
                'dataset, and a batch needs distinct classes; use a batch '
                f'size of at most {n * k} ({n} x {k}) or raise '
                'batch_sampler.num_samples_per_class'
            )
        num_chunks = np.array(
            [math.ceil(len(idx) / k) for idx in self.class_indices]
        )
        # The fewest batches that hold every chunk: no batch holds two chunks
        # of one class, and each holds at most P chunks.
        self.num_global_batches = int(
            max(math.ceil(num_chunks.sum() / p), num_chunks.max())
        )
        self.num_batches = math.ceil(self.num_global_batches / self.world_size)

    @staticmethod
    def classes_per_batch(
        batch_size: int, num_samples_per_class: int, key: str = 'batch_size'
    ) -> int:
        """Check a batch size against ``K`` and return ``P``.

        The config check of the tools calls it too, before anything is
        built, so both report a bad batch size in the same words.

        Args:
            batch_size (int): The dataloader's per-rank batch size.
            num_samples_per_class (int): ``K``, images of each class per
                batch.
            key (str): The config key of the batch size, for the message.
                Defaults to ``'batch_size'``.

        Returns:
            int: ``P = batch_size // K``, distinct classes per batch.

        Raises:
            ValueError: ``K`` or the batch size is not a positive integer,
                or ``K`` does not divide the batch size.
        """
        k = num_samples_per_class
        for name, value in (
            ('batch_sampler.num_samples_per_class', k),
            (key, batch_size),
        ):
            valid = isinstance(value, int) and not isinstance(value, bool)
            if not valid or value < 1:
                raise ValueError(
                    f'{name}={value!r}: must be a positive integer; set '
                    f'{name} to one'
                )
        if batch_size % k:
            below = max(k, batch_size // k * k)
            raise ValueError(
                f'{key}={batch_size}: not a multiple of '
                f'batch_sampler.num_samples_per_class={k}; use a batch size '
                f'that {k} divides (e.g. {below} or {below + k})'
            )
        return batch_size // k

    @staticmethod
    def _get_labels(dataset: Sized) -> np.ndarray:
        """Return one integer label per index of ``dataset``."""
        name = type(dataset).__name__
        num = len(dataset)
        if num == 0:
            raise ValueError(
                f'dataset={name}: is empty; check its data_root and '
                'annotation file'
            )
        if hasattr(dataset, 'get_gt_labels'):
            # A dataset sliced by the Runner (``num_batch_per_epoch``)
            # forwards to the full one: keep the first ``len`` labels.
            labels = np.asarray(dataset.get_gt_labels())[:num]
        elif hasattr(dataset, 'get_cat_ids'):
            cat_ids = [list(dataset.get_cat_ids(i)) for i in range(num)]
            single = all(len(ids) == 1 for ids in cat_ids)
            # Several labels of one image fail the shape check below.
            labels = np.array([ids[0] for ids in cat_ids] if single else [])
        else:
            raise ValueError(
                f'dataset={name}: has neither get_gt_labels() nor '
                'get_cat_ids(), so its images cannot be grouped by class; '
                'use an mmpretrain dataset or add get_gt_labels()'
            )
        if labels.shape != (num,):
            raise ValueError(
                f'dataset={name}: the P x K batch sampler needs exactly one '
                f'label for each of its {num} images; use a single-label '
                'dataset'
            )
        return labels.astype(np.int64)

    @property
    def seed(self) -> int:
        """int: The seed of the order, the sampler's."""
        return self.sampler.seed

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
            epoch (int, optional): The epoch; the sampler's if None.
                Defaults to None.

        Returns:
            list[list[int]]: ``world_size * ceil(B / world_size)`` batches of
            ``P * K = batch_size`` dataset indices each; rank ``r`` iterates
            over batches ``r, r + world_size, ...`` in this order.
        """
        epoch = self.sampler.epoch if epoch is None else epoch
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

    def __iter__(self) -> Iterator[List[int]]:
        """Iterate over this rank's batches of ``P * K`` indices."""
        batches = self.global_batches()[self.rank :: self.world_size]
        return iter([[int(i) for i in batch] for batch in batches])

    def __len__(self) -> int:
        """The number of batches this rank yields per epoch."""
        return self.num_batches
