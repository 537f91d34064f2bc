# Copyright (c) scrim-mm contributors. All rights reserved.
"""Batched, zero-padded, resized crops of the network input."""

from typing import Sequence, Union

import torch
from torch import Tensor
from torchvision.ops import roi_align


def crop_regions(
    inputs: Tensor,
    boxes: Tensor,
    out_size: Union[int, Sequence[int]],
    sampling_ratio: int = 2,
) -> Tensor:
    """Cut boxes out of the input images and resize them, in one op.

    NTS-Net's crop step as one :func:`torchvision.ops.roi_align` call
    (``aligned=True``: pixel ``i`` spans ``[i, i + 1)``), averaging
    ``sampling_ratio ** 2`` bilinear samples per bin. Samples over half a
    pixel outside the image read zeros (NTS-Net's zero padding), closer
    ones the border pixel. Detached from boxes and inputs.

    Args:
        inputs (Tensor): Images (B, C, H, W).
        boxes (Tensor): Boxes (B, N, 4), ``(x1, y1, x2, y2)`` in input
            pixels; they may extend beyond the image.
        out_size (int | Sequence[int]): Output size ``(h, w)`` or one int.
        sampling_ratio (int): Sampling points per bin and axis. Defaults to 2.

    Returns:
        Tensor: Crops (B * N, C, h, w), image-major (``b * N + n``).
    """
    if inputs.dim() != 4:
        raise ValueError(
            f'`inputs` must be (B, C, H, W), got {tuple(inputs.shape)}.'
        )
    if (
        boxes.dim() != 3
        or boxes.shape[-1] != 4
        or boxes.shape[0] != (inputs.shape[0])
    ):
        raise ValueError(
            f'`boxes` must be (B, N, 4) with B = '
            f'{inputs.shape[0]}, got {tuple(boxes.shape)}.'
        )
    if isinstance(out_size, int):
        out_size = (out_size, out_size)
    out_size = (int(out_size[0]), int(out_size[1]))
    num_imgs, num_boxes = boxes.shape[:2]
    # Image index of every box; not repeat_interleave, which refuses the
    # CPU tensor num_boxes of jit.trace (FLOPs, ONNX) next to CUDA inputs.
    batch_idx = (
        torch.arange(num_imgs, device=boxes.device, dtype=inputs.dtype)
        .view(-1, 1)
        .expand(num_imgs, num_boxes)
        .reshape(-1)
    )
    rois = torch.cat(
        [batch_idx[:, None], boxes.detach().reshape(-1, 4).to(inputs.dtype)],
        dim=1,
    )
    crops = roi_align(
        inputs.detach(),
        rois,
        output_size=out_size,
        spatial_scale=1.0,
        sampling_ratio=sampling_ratio,
        aligned=True,
    )
    return crops.detach()
