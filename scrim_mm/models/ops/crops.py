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

    The crop step of NTS-Net (Yang et al., ECCV 2018) as used by SCRIM's FPL
    (Multimedia Tools and Applications, 2024). NTS-Net zero-padded the
    normalised image and resized integer crops bilinearly; here a single
    :func:`torchvision.ops.roi_align` call (``aligned=True``: a box
    ``(x1, y1, x2, y2)`` covers the continuous pixel range, pixel ``i``
    spanning ``[i, i + 1)``) samples every output bin bilinearly at
    ``sampling_ratio ** 2`` points and averages them. Sampling points more
    than half a pixel outside the image read zeros (zero padding of the
    normalised input, as NTS-Net); points closer to the image read the
    border pixel (roi_align clamps them).

    The result is detached: no gradient flows to the boxes (or whatever
    produced them) nor to the inputs.

    Args:
        inputs (Tensor): Images of shape (B, C, H, W).
        boxes (Tensor): Boxes of shape (B, N, 4), ``(x1, y1, x2, y2)`` in
            input pixels; they may extend beyond the image.
        out_size (int | Sequence[int]): Output size ``(h, w)``, or one int
            for a square output.
        sampling_ratio (int): Sampling points per bin and axis. Defaults
            to 2.

    Returns:
        Tensor: Crops of shape (B * N, C, h, w), ordered image-major
        (``b * N + n``).
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
    # Image index of every box. ``expand`` rather than
    # ``repeat_interleave(num_boxes)``: under ``torch.jit.trace`` (the FLOP
    # counter, ONNX export) ``num_boxes`` is a CPU tensor, which
    # ``repeat_interleave`` refuses next to CUDA inputs.
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
