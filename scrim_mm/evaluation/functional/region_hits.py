# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tensor helpers to score predicted regions against part annotations.

Every function is a batched torch op (no Python loop over boxes) and works
on any device. Boxes are ``(x1, y1, x2, y2)`` in pixels; a point on a box's
edge counts as inside.
"""

from typing import Optional, Tuple

import torch

__all__ = [
    'box_centres',
    'object_hits',
    'part_distances',
    'part_hits',
    'points_in_boxes',
    'random_derangement',
    'select_stage_regions',
]


def box_centres(boxes: torch.Tensor) -> torch.Tensor:
    """Centres of boxes.

    Args:
        boxes (torch.Tensor): Boxes (..., 4), x1, y1, x2, y2.

    Returns:
        torch.Tensor: Centres (..., 2), x, y.
    """
    return (boxes[..., 0:2] + boxes[..., 2:4]) / 2


def points_in_boxes(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Which points lie inside their image's box.

    Args:
        points (torch.Tensor): Points (N, P, 2), x, y. Leading dimensions
            broadcast with those of ``boxes`` (e.g. points (N, 1, P, 2)
            against boxes (N, S, 4) gives (N, S, P)).
        boxes (torch.Tensor): One box per image (N, 4), x1, y1, x2, y2.

    Returns:
        torch.Tensor: Bool (N, P), True where point p of image n lies in
        box n, edges included.
    """
    x, y = points[..., 0], points[..., 1]
    box = boxes.unsqueeze(-2)
    return (
        (x >= box[..., 0])
        & (x <= box[..., 2])
        & (y >= box[..., 1])
        & (y <= box[..., 3])
    )


def part_hits(
    boxes: torch.Tensor,
    points: torch.Tensor,
    visible: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Whether a region holds at least one visible part keypoint.

    Args:
        boxes (torch.Tensor): Regions (N, 4) (or (..., 4), broadcast with
            ``points``' leading dimensions).
        points (torch.Tensor): Part keypoints (N, P, 2).
        visible (torch.Tensor, optional): Bool (N, P), the keypoints that
            count. Defaults to None (all).

    Returns:
        torch.Tensor: Bool (N,).
    """
    inside = points_in_boxes(points, boxes)
    if visible is not None:
        inside = inside & visible.bool()
    return inside.any(-1)


def part_distances(
    boxes: torch.Tensor,
    points: torch.Tensor,
    visible: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Distance from a region's centre to its nearest visible keypoint.

    Unlike a hit, it does not grow easier with the region's size: a large
    box that holds the part by covering much of the image still has its
    centre wherever it sits.

    Args:
        boxes (torch.Tensor): Regions (N, 4) (or (..., 4), broadcast with
            ``points``' leading dimensions).
        points (torch.Tensor): Part keypoints (N, P, 2).
        visible (torch.Tensor, optional): Bool (N, P), the keypoints that
            count. Defaults to None (all).

    Returns:
        torch.Tensor: Distances (N,) in pixels; ``inf`` where no keypoint
        counts.
    """
    centres = box_centres(boxes).unsqueeze(-2)
    dist = (points - centres).norm(dim=-1)
    if dist.shape[-1] == 0:  # no keypoint at all
        return dist.new_full(dist.shape[:-1], float('inf'))
    if visible is not None:
        dist = dist.masked_fill(~visible.bool(), float('inf'))
    return dist.amin(-1)


def object_hits(
    boxes: torch.Tensor, object_boxes: torch.Tensor
) -> torch.Tensor:
    """Whether a region's centre lies inside the object box.

    Args:
        boxes (torch.Tensor): Regions (N, 4).
        object_boxes (torch.Tensor): Object boxes (N, 4) of the same images.

    Returns:
        torch.Tensor: Bool (N,).
    """
    centres = box_centres(boxes).unsqueeze(-2)
    return points_in_boxes(centres, object_boxes).squeeze(-1)


def select_stage_regions(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    stages: torch.Tensor,
    num_stages: int,
    k: int = 1,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best-scored regions of every stage of one image.

    Args:
        boxes (torch.Tensor): Regions (R, 4), e.g. SCRIM's ``pred_boxes``.
        scores (torch.Tensor): Their scores (R,), ``pred_box_scores``.
        stages (torch.Tensor): Their stage indices (R,), ``pred_box_stages``,
            in ``[0, num_stages)``.
        num_stages (int): Number of stages S.
        k (int): Regions kept per stage; ``-1`` keeps as many as the most
            populated stage has. Defaults to 1.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: Boxes (S, k', 4) sorted by
        decreasing score (``[:, 0]`` is each stage's best region) and a bool
        mask (S, k') of the slots that hold a region (a stage with fewer
        than k' regions is padded with zero boxes), with k' = ``k`` clipped
        to the number of regions R.
    """
    stages = stages.long().view(-1)
    if stages.numel() and (stages.min() < 0 or stages.max() >= num_stages):
        raise ValueError(
            f'stage indices {stages.unique().tolist()} out of range for '
            f'{num_stages} stages.'
        )
    num = boxes.shape[0]
    if k == -1:
        counts = torch.bincount(stages, minlength=num_stages)
        k = int(counts.max()) if num else 0
    elif k < 1:
        raise ValueError(f'k must be positive or -1, got {k}.')
    k = min(k, num)
    member = stages.view(1, -1) == torch.arange(
        num_stages, device=stages.device
    ).view(-1, 1)
    masked = scores.float().view(1, -1).expand(num_stages, -1)
    masked = masked.masked_fill(~member, float('-inf'))
    order = masked.argsort(dim=1, descending=True, stable=True)[:, :k]
    valid = member.gather(1, order)
    top = boxes.float()[order] * valid.unsqueeze(-1)
    return top, valid


def random_derangement(num: int, seed: int = 0) -> torch.Tensor:
    """A seeded random permutation without fixed points.

    A uniformly drawn cyclic permutation (Sattolo's cycles): ``perm[i] !=
    i`` for every ``i`` once ``num >= 2``.

    Args:
        num (int): Length.
        seed (int): Seed of the generator. Defaults to 0.

    Returns:
        torch.Tensor: Long (num,); for ``num < 2`` the identity (no
        derangement exists).
    """
    if num < 2:
        return torch.arange(num)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(num, generator=gen)
    perm = torch.empty_like(order)
    # Each element maps to the next one along a random cycle.
    perm[order] = order.roll(-1)
    return perm
