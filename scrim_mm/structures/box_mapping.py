# Copyright (c) scrim-mm contributors. All rights reserved.
"""Map boxes from the network input back to the original image.

SCRIM predicts its regions (``pred_boxes``) in network-input pixels. The
test pipeline decides how that input was cut from the original image, and
what it leaves in a sample's metainfo (``PackInputs``' default
``meta_keys``) is:

* ``ori_shape``: (h, w) of the image as loaded;
* ``scale_factor``: (w_scale, h_scale) of the resize (mmcv's ``Resize``,
  mmpretrain's ``ResizeEdge``, ``RandomResize`` ...), new size / old size;
* ``img_shape``: (h, w) of the final input;
* ``flip`` / ``flip_direction``: set by ``RandomFlip``.

No mmcv / mmpretrain crop records where it cut (mmcv's ``CenterCrop`` only
updates ``img_shape``). So when ``img_shape`` differs from the resized
size, the difference is taken as mmcv's ``CenterCrop`` (the crop of every
mmpretrain test pipeline), with its exact offsets; a pipeline that stores a
``crop_bbox`` (x1, y1, x2, y2 in resized pixels) in the metainfo gets that
offset instead. Supported test pipelines are therefore: one resize (or
none), then optionally a centre crop (a crop larger than the image pads at
the bottom / right, as ``CenterCrop(auto_pad=True)`` and ``Pad`` do), then
optionally a flip of the result.
"""

from typing import Mapping, Sequence, Tuple

import cv2
import numpy as np
import torch

__all__ = ['boxes_to_original', 'input_geometry', 'input_region', 'input_view']


def _pair(value, key: str) -> Tuple[float, float]:
    """Read a 2-sequence (or a scalar twice) from the metainfo."""
    if isinstance(value, torch.Tensor):
        value = value.flatten().tolist()
    if isinstance(value, (int, float)):
        return float(value), float(value)
    if not isinstance(value, Sequence) or len(value) < 2:
        raise ValueError(f'metainfo[{key!r}]={value!r}: expected two numbers.')
    return float(value[0]), float(value[1])


def input_geometry(metainfo: Mapping) -> dict:
    """How the network input was cut from the original image.

    Args:
        metainfo (Mapping): A sample's metainfo (``DataSample.metainfo``),
            with ``ori_shape`` and ``img_shape`` at least.

    Returns:
        dict: ``scale`` (sx, sy) original -> resized, ``offset`` (x, y) of
        the input's top-left corner in resized pixels, ``input_size``
        (w, h), ``ori_size`` (w, h) and ``flip`` (None, ``'horizontal'``,
        ``'vertical'`` or ``'diagonal'``).

    Raises:
        KeyError: ``ori_shape`` or ``img_shape`` is missing.
        ValueError: A shape or scale factor is not positive.
    """
    for key in ('ori_shape', 'img_shape'):
        if key not in metainfo:
            raise KeyError(
                f'The sample metainfo has no {key!r} (keys: '
                f"{sorted(metainfo)}); keep it in the test pipeline's "
                'PackInputs meta_keys to map boxes to the original image.'
            )
    ori_h, ori_w = _pair(metainfo['ori_shape'], 'ori_shape')
    in_h, in_w = _pair(metainfo['img_shape'], 'img_shape')
    sx, sy = _pair(metainfo.get('scale_factor', (1.0, 1.0)), 'scale_factor')
    if min(ori_h, ori_w, in_h, in_w, sx, sy) <= 0:
        raise ValueError(
            f'metainfo ori_shape={metainfo["ori_shape"]}, img_shape='
            f'{metainfo["img_shape"]}, scale_factor={(sx, sy)}: expected '
            'positive sizes and scale factors.'
        )
    if metainfo.get('crop_bbox') is not None:
        x1, y1 = _pair(metainfo['crop_bbox'], 'crop_bbox')
    else:
        # mmcv CenterCrop's offsets, computed on the resized image; a crop
        # larger than the image pads at the bottom / right (offset 0).
        res_w, res_h = round(ori_w * sx), round(ori_h * sy)
        x1 = max(0, int(round((res_w - in_w) / 2.0)))
        y1 = max(0, int(round((res_h - in_h) / 2.0)))
    flip = metainfo.get('flip_direction') if metainfo.get('flip') else None
    return dict(
        scale=(sx, sy),
        offset=(float(x1), float(y1)),
        input_size=(in_w, in_h),
        ori_size=(ori_w, ori_h),
        flip=flip,
    )


def boxes_to_original(
    boxes: torch.Tensor, metainfo: Mapping, clip: bool = True
) -> torch.Tensor:
    """Map (N, 4) x1, y1, x2, y2 boxes from input to original pixels.

    Args:
        boxes (torch.Tensor): Boxes in network-input pixels, shape (N, 4).
        metainfo (Mapping): The sample's metainfo, see
            :func:`input_geometry`.
        clip (bool): Clip the result to the original image.
            Defaults to True.

    Returns:
        torch.Tensor: The boxes in original-image pixels, float, (N, 4).
    """
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(
            f'boxes must have shape (N, 4), got {tuple(boxes.shape)}.'
        )
    geo = input_geometry(metainfo)
    in_w, in_h = geo['input_size']
    out = boxes.detach().float().clone()
    if geo['flip'] in ('horizontal', 'diagonal'):
        out[:, [0, 2]] = in_w - out[:, [2, 0]]
    if geo['flip'] in ('vertical', 'diagonal'):
        out[:, [1, 3]] = in_h - out[:, [3, 1]]
    (sx, sy), (ox, oy) = geo['scale'], geo['offset']
    out[:, 0::2] = (out[:, 0::2] + ox) / sx
    out[:, 1::2] = (out[:, 1::2] + oy) / sy
    if clip:
        ori_w, ori_h = geo['ori_size']
        out[:, 0::2] = out[:, 0::2].clamp(0, ori_w)
        out[:, 1::2] = out[:, 1::2].clamp(0, ori_h)
    return out


def input_region(metainfo: Mapping) -> torch.Tensor:
    """The part of the original image the network input shows.

    Args:
        metainfo (Mapping): The sample's metainfo, see
            :func:`input_geometry`.

    Returns:
        torch.Tensor: (4,) x1, y1, x2, y2 in original pixels, clipped to
        the image (padding outside it is dropped).
    """
    in_w, in_h = input_geometry(metainfo)['input_size']
    whole = torch.tensor([[0.0, 0.0, in_w, in_h]])
    return boxes_to_original(whole, metainfo)[0]


def input_view(image: np.ndarray, metainfo: Mapping) -> np.ndarray:
    """Cut the network input's view out of the original image.

    The same resize, crop (or bottom / right zero padding) and flip as the
    test pipeline, from :func:`input_geometry`, in one affine warp, so maps
    on the network-input grid (e.g. part attentions) can be laid over it.

    Args:
        image (np.ndarray): The original image, (H, W) or (H, W, C), of
            size ``ori_shape``.
        metainfo (Mapping): The sample's metainfo.

    Returns:
        np.ndarray: The view, of size ``img_shape``, same dtype.
    """
    geo = input_geometry(metainfo)
    ori_w, ori_h = geo['ori_size']
    if image.shape[:2] != (int(ori_h), int(ori_w)):
        raise ValueError(
            f'image of shape {image.shape[:2]} but metainfo ori_shape='
            f'{(int(ori_h), int(ori_w))}: pass the original image.'
        )
    (sx, sy), (ox, oy) = geo['scale'], geo['offset']
    in_w, in_h = (int(v) for v in geo['input_size'])
    # Pixel centres as cv2.resize maps them: (x + 0.5) * s - 0.5.
    affine = np.array(
        [[sx, 0.0, 0.5 * sx - 0.5 - ox], [0.0, sy, 0.5 * sy - 0.5 - oy]],
        dtype=np.float64,
    )
    view = cv2.warpAffine(
        image, affine, (in_w, in_h), flags=cv2.INTER_LINEAR, borderValue=0
    )
    if geo['flip'] in ('horizontal', 'diagonal'):
        view = view[:, ::-1]
    if geo['flip'] in ('vertical', 'diagonal'):
        view = view[::-1]
    return np.ascontiguousarray(view)
