# Copyright (c) scrim-mm contributors. All rights reserved.
"""Greedy hard NMS, batched over images without leaving the device."""

import torch
from torch import Tensor


def _iou_one_to_many(box: Tensor, boxes: Tensor) -> Tensor:
    """IoU (B, A) of one box (B, 4) per image with (A, 4) or (B, A, 4)."""
    box = box[:, None, :]  # (B, 1, 4)
    inter_w = (
        torch.minimum(box[..., 2], boxes[..., 2])
        - torch.maximum(box[..., 0], boxes[..., 0])
    ).clamp(min=0)
    inter_h = (
        torch.minimum(box[..., 3], boxes[..., 3])
        - torch.maximum(box[..., 1], boxes[..., 1])
    ).clamp(min=0)
    inter = inter_w * inter_h
    area_box = (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return inter / (area_box + area - inter)


def batched_hard_nms(
    boxes: Tensor, scores: Tensor, iou_thr: float, max_num: int
) -> Tensor:
    """Greedy hard NMS on every image of a batch, returning ``max_num`` picks.

    NTS-Net's selection: in descending score order, a box is kept while
    its IoU with every kept box is below ``iou_thr``, up to ``max_num``;
    only the picks loop, as batched float32 ops with no host sync. If
    fewer survive, the best unpicked boxes (suppressed included) fill the
    rest, so every image gets ``max_num`` distinct indices. Ties go to the
    lower index; NaN scores count as ``-inf``.

    Args:
        boxes (Tensor): Boxes ``(x1, y1, x2, y2)``, (A, 4) shared by the
            batch or (B, A, 4).
        scores (Tensor): Scores (B, A); not differentiated through.
        iou_thr (float): A box is suppressed when its IoU with a kept box is
            ``>= iou_thr``.
        max_num (int): Number of boxes per image, at most ``A``.

    Returns:
        Tensor: (B, max_num) long indices into the boxes, in pick order.
    """
    if scores.dim() != 2:
        raise ValueError(
            f'`scores` must be (B, A), got {tuple(scores.shape)}.'
        )
    num_imgs, num_boxes = scores.shape
    shape_ok = boxes.dim() in (2, 3) and boxes.shape[-2:] == (num_boxes, 4)
    if not shape_ok or (boxes.dim() == 3 and boxes.shape[0] != num_imgs):
        raise ValueError(
            f'`boxes` must be (A, 4) or (B, A, 4) with '
            f'(B, A) = {(num_imgs, num_boxes)}, got '
            f'{tuple(boxes.shape)}.'
        )
    if not 0 < max_num <= num_boxes:
        raise ValueError(
            f'`max_num` must be in [1, {num_boxes}] (the number '
            f'of boxes), got {max_num}.'
        )

    boxes = boxes.detach().float()
    scores = scores.detach().float().nan_to_num(nan=float('-inf'))
    device = scores.device
    # Rank of every box in its image's descending score order; turning the
    # scores into unique integer keys makes each pick one argmax.
    order = scores.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(
        1, order, torch.arange(num_boxes, device=device).expand_as(order)
    )
    # Keys: alive boxes in (A, 2A], suppressed unpicked ones in [1, A],
    # picked ones 0. The argmax is the best alive box, else the best unpicked.
    fallback_key = num_boxes - rank
    alive_key = fallback_key + num_boxes
    alive = torch.ones_like(scores, dtype=torch.bool)
    picked = torch.zeros_like(alive)
    batch_idx = torch.arange(num_imgs, device=device)
    keep = []
    for _ in range(max_num):
        key = torch.where(alive, alive_key, fallback_key)
        key = key.masked_fill(picked, 0)
        idx = key.argmax(dim=1)  # (B,)
        keep.append(idx)
        picked[batch_idx, idx] = True
        if boxes.dim() == 2:
            box = boxes[idx]
        else:
            box = boxes[batch_idx, idx]
        # A NaN IoU (two empty boxes) compares False, i.e. suppresses.
        alive = alive & (_iou_one_to_many(box, boxes) < iou_thr) & ~picked
    return torch.stack(keep, dim=1)
