# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tests of the FPL side: anchors, NMS, crops, navigator, losses, head."""

import math
from typing import List

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torchvision.ops import box_iou

import scrim_mm  # noqa: F401
from scrim_mm.models.heads import FPLHead
from scrim_mm.models.heads.fpl_head import default_anchor_cfg
from scrim_mm.models.losses import RegionRankingLoss
from scrim_mm.models.ops import (
    MAX_REGION_FRAC,
    Navigator,
    batched_hard_nms,
    crop_regions,
    fit_anchor_levels,
    generate_anchors,
    input_size_problem,
)

S1, S2 = 2 ** (1 / 3), 2 ** (2 / 3)
NTS_SCALES = ((S1, S2), (S1, S2), (1.0, S1, S2))
NTS_RATIOS = (0.667, 1.0, 1.5)


def nts_anchors(img_shape, stride=32):
    cfg = default_anchor_cfg(stride)
    return generate_anchors(
        img_shape,
        (stride, 2 * stride, 4 * stride),
        cfg['sizes'],
        cfg['scales'],
        cfg['ratios'],
    )


# ---------------------------------------------------------------- anchors
def test_anchor_count_and_first_boxes_448():
    anchors = generate_anchors(
        (448, 448), (32, 64, 128), (48, 96, 192), NTS_SCALES, NTS_RATIOS
    )
    assert anchors.shape == (1614, 4)
    assert anchors.dtype == torch.float32
    assert torch.equal(anchors, nts_anchors((448, 448)))

    # Hand-computed: level 1, position (y=0, x=0), centre (16, 16).
    def box(cx, cy, size, scale, ratio):
        h = size * scale / math.sqrt(ratio)
        w = size * scale * math.sqrt(ratio)
        return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]

    expected = [
        box(16, 16, 48, s, r) for s in (S1, S2) for r in NTS_RATIOS
    ]  # scale-major, then ratio
    expected.append(box(48, 16, 48, S1, 0.667))  # next x position
    expected = torch.tensor(expected, dtype=torch.float32)
    torch.testing.assert_close(anchors[:7], expected)
    # First anchor: w = 48 * 2^(1/3) * sqrt(0.667), h = 48 * 2^(1/3) /
    # sqrt(0.667), i.e. about 49.39 x 74.05 around (16, 16).
    torch.testing.assert_close(
        anchors[0], torch.tensor([-8.6955, -21.0247, 40.6955, 53.0247])
    )
    # Second row of level 1 starts after 14 positions of 6 anchors.
    torch.testing.assert_close(
        anchors[14 * 6], torch.tensor(box(16, 48, 48, S1, 0.667))
    )
    # Level 2 starts after 14 * 14 * 6; level 3 after another 7 * 7 * 6.
    torch.testing.assert_close(
        anchors[14 * 14 * 6], torch.tensor(box(32, 32, 96, S1, 0.667))
    )
    lvl3 = 14 * 14 * 6 + 7 * 7 * 6
    torch.testing.assert_close(
        anchors[lvl3], torch.tensor(box(64, 64, 192, 1.0, 0.667))
    )
    # Last anchor: level 3, position (3, 3), centre (448, 448).
    torch.testing.assert_close(
        anchors[-1], torch.tensor(box(448, 448, 192, S2, 1.5))
    )


@pytest.mark.parametrize('size', [(224, 224), (320, 256), (128, 192)])
def test_anchor_count_matches_navigator(size):
    torch.manual_seed(0)
    stride = 32
    anchors = nts_anchors(size, stride)
    nav = Navigator(8, 16, (6, 6, 9))
    feat = torch.randn(2, 8, size[0] // stride, size[1] // stride)
    scores = nav(feat)
    assert scores.shape == (2, anchors.shape[0])
    if size == (224, 224):
        # 7x7x6 + 4x4x6 + 2x2x9
        assert anchors.shape[0] == 294 + 96 + 36


def test_navigator_order_matches_anchors():
    # A score that depends only on position and anchor type shows the order.
    nav = Navigator(1, 1, (2, 3))
    with torch.no_grad():
        for conv in nav.convs:
            conv.weight.zero_()
            conv.bias.fill_(1.0)
        for lvl, conv in enumerate(nav.score_convs):
            conv.weight.zero_()
            conv.bias.copy_(torch.arange(conv.out_channels) + 10.0 * lvl)
    scores = nav(torch.zeros(1, 1, 4, 6))
    # Level 0: 4x6 positions x 2 types; level 1: 2x3 positions x 3 types.
    expected = torch.cat(
        [torch.arange(2.0).repeat(24), (torch.arange(3.0) + 10).repeat(6)]
    )
    torch.testing.assert_close(scores[0], expected)


def test_input_size_problem_is_the_one_check_of_the_strides():
    assert input_size_problem(96, 128, (16, 32)) is None
    assert input_size_problem(100, 100, (16, 32)) == (
        'the FPL stage strides (16, 32) need multiples of 32; resize or '
        'crop to a multiple of 32 (e.g. 96 or 128)'
    )
    # smaller than the largest stride, or one side off
    assert 'multiples of 32' in input_size_problem(16, 16, (16, 32))
    assert 'multiples of 48' in input_size_problem(96, 100, (16, 48))
    assert input_size_problem(0, 32, (32,)) is not None


def test_anchor_errors():
    with pytest.raises(ValueError, match=r'^sizes=\(48,\): 1 entries'):
        generate_anchors((64, 64), (32, 64), (48,), (1.0,), (1.0,))


def test_fit_anchor_levels_by_hand():
    """Levels are kept while their widest square box (size x the largest
    scale) is at most 0.4 of the smaller input side."""
    assert MAX_REGION_FRAC == 0.4
    s4, s3 = default_anchor_cfg(32), default_anchor_cfg(16)
    # 448: limit 179.2; stage-4 widest boxes 48 S2 = 76.2, 96 S2 = 152.4,
    # 192 S2 = 304.8: two levels, sizes unchanged.
    num, sizes = fit_anchor_levels(s4['sizes'], s4['scales'], (448, 448))
    assert num == 2
    assert sizes == pytest.approx([48.0, 96.0, 192.0])
    # 128: limit 51.2 < 76.2, not even the first level fits: it is kept,
    # shrunk so that its widest box is 51.2.
    num, sizes = fit_anchor_levels(s4['sizes'], s4['scales'], (128, 128))
    assert num == 1
    assert sizes[0] == pytest.approx(0.4 * 128 / 2 ** (2 / 3))
    assert sizes[0] * S2 == pytest.approx(51.2)
    # Stage 3 at 128: 24 S2 = 38.1 fits, 48 S2 = 76.2 does not.
    num, sizes = fit_anchor_levels(s3['sizes'], s3['scales'], (128, 128))
    assert num == 1
    assert sizes[0] == pytest.approx(24.0)
    # The smaller side sets the limit: 448 x 128 is 128's case.
    num, sizes = fit_anchor_levels(s4['sizes'], s4['scales'], (448, 128))
    assert num == 1
    assert sizes[0] == pytest.approx(0.4 * 128 / 2 ** (2 / 3))
    # max_frac = 1: limit 448 >= 304.8, all three levels.
    num, sizes = fit_anchor_levels(
        s4['sizes'], s4['scales'], (448, 448), max_frac=1.0
    )
    assert num == 3
    assert sizes == pytest.approx([48.0, 96.0, 192.0])


# -------------------------------------------------------------------- NMS
def reference_nms(boxes, scores, thr, max_num) -> List[int]:
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        if len(keep) == max_num:
            break
        ious = box_iou(boxes[i : i + 1], boxes[keep]) if keep else None
        if ious is None or bool((ious < thr).all()):
            keep.append(i)
    for i in order:  # under-filled: best not-yet-picked boxes
        if len(keep) == max_num:
            break
        if i not in keep:
            keep.append(i)
    return keep


def random_boxes(generator, *shape):
    xy = torch.rand(*shape, 2, generator=generator) * 100
    wh = torch.rand(*shape, 2, generator=generator) * 60 + 1
    return torch.cat([xy, xy + wh], dim=-1)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize('batched_boxes', [False, True])
def test_batched_hard_nms_matches_reference(seed, batched_boxes):
    g = torch.Generator().manual_seed(seed)
    num_imgs, num_boxes = 5, 120
    if batched_boxes:
        boxes = random_boxes(g, num_imgs, num_boxes)
    else:
        boxes = random_boxes(g, num_boxes)
    scores = torch.randn(num_imgs, num_boxes, generator=g)
    for thr, max_num in [(0.25, 6), (0.5, 10), (0.05, 40)]:
        keep = batched_hard_nms(boxes, scores, thr, max_num)
        assert keep.shape == (num_imgs, max_num)
        assert keep.dtype == torch.long
        for b in range(num_imgs):
            img_boxes = boxes[b] if batched_boxes else boxes
            ref = reference_nms(img_boxes, scores[b], thr, max_num)
            assert keep[b].tolist() == ref


def test_batched_hard_nms_no_overlap_and_fill():
    g = torch.Generator().manual_seed(7)
    anchors = nts_anchors((448, 448))
    scores = torch.randn(4, anchors.shape[0], generator=g)
    keep = batched_hard_nms(anchors, scores, 0.25, 6)
    for b in range(4):
        kept = anchors[keep[b]]
        iou = box_iou(kept, kept)
        iou.fill_diagonal_(0)
        assert (iou < 0.25).all()
        # First pick is the best box.
        assert keep[b, 0] == scores[b].argmax()

    # Only 2 disjoint clusters of identical boxes: the other slots are the
    # best remaining boxes in score order.
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 3 + [[50.0, 50, 60, 60]] * 3)
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.8, 0.3, 0.2]])
    keep = batched_hard_nms(boxes, scores, 0.25, 5)
    assert keep.tolist() == [[1, 3, 2, 4, 5]]
    with pytest.raises(ValueError, match='max_num'):
        batched_hard_nms(boxes, scores, 0.25, 7)

    # IoU exactly at the threshold suppresses (keep only while IoU < thr).
    boxes = torch.tensor([[0.0, 0, 3, 1], [1.0, 0, 4, 1], [9.0, 0, 10, 1]])
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    assert batched_hard_nms(boxes, scores, 0.5, 2).tolist() == [[0, 2]]
    assert batched_hard_nms(boxes, scores, 0.51, 2).tolist() == [[0, 1]]


def test_batched_hard_nms_fp32_under_autocast():
    g = torch.Generator().manual_seed(3)
    boxes = random_boxes(g, 80)
    # Differences far below bf16 resolution (all would round to 1.0).
    scores = 1 + torch.rand(3, 80, generator=g) * 1e-3
    assert (scores.bfloat16() == 1).all()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        keep = batched_hard_nms(boxes, scores, 0.3, 8)
    for b in range(3):
        assert keep[b].tolist() == reference_nms(boxes, scores[b], 0.3, 8)


# ------------------------------------------------------------------ crops
def test_crop_regions_quadrants():
    torch.manual_seed(0)
    img = torch.randn(2, 3, 16, 16)
    boxes = torch.tensor(
        [
            [[0.0, 0, 8, 8], [8.0, 8, 16, 16]],
            [[8.0, 0, 16, 8], [0.0, 8, 8, 16]],
        ]
    )
    crops = crop_regions(img, boxes, 4)
    assert crops.shape == (4, 3, 4, 4)
    expected = [
        img[0:1, :, :8, :8],
        img[0:1, :, 8:, 8:],
        img[1:2, :, :8, 8:],
        img[1:2, :, 8:, :8],
    ]
    expected = torch.cat(
        [
            F.interpolate(e, size=(4, 4), mode='bilinear', align_corners=False)
            for e in expected
        ]
    )
    torch.testing.assert_close(crops, expected)

    # Upsampling the top-left quadrant of a ramp, non-square output. The
    # crop samples the whole image (no clamping at the quadrant's inner
    # edges), so it is the ramp at the bin centres, clamped at the image
    # border only: value(y, x) = 16 y + x in pixel-index coordinates.
    ys = torch.arange(16.0)
    ramp = (16 * ys[:, None] + ys[None, :]).expand(1, 3, 16, 16)
    crop = crop_regions(ramp, torch.tensor([[[0.0, 0, 8, 8]]]), (16, 12))
    yc = ((torch.arange(16.0) + 0.5) * 8 / 16 - 0.5).clamp(min=0)
    xc = ((torch.arange(12.0) + 0.5) * 8 / 12 - 0.5).clamp(min=0)
    expected = (16 * yc[:, None] + xc[None, :]).expand(1, 3, 16, 12)
    torch.testing.assert_close(crop, expected)


def test_crop_regions_zero_padding_and_detached():
    img = torch.rand(1, 3, 16, 16) + 1  # strictly positive
    boxes = torch.tensor(
        [[[-32.0, -32, -16, -16], [-8.0, 0, 8, 8]]], requires_grad=True
    )
    crops = crop_regions(img, boxes, (4, 8))
    assert not crops.requires_grad
    assert (crops[0] == 0).all()  # fully outside
    # Half outside: bins more than a pixel out are zeros, inside bins equal
    # the in-image crop.
    assert (crops[1, :, :, :3] == 0).all()
    expected = F.interpolate(
        img[..., :8, :8], size=(4, 4), mode='bilinear', align_corners=False
    )
    torch.testing.assert_close(crops[1:, :, :, 4:], expected)


# ------------------------------------------------------------------- loss
def test_region_ranking_loss_by_hand():
    scores = torch.tensor([[0.5, 2.0, 1.0], [0.0, 0.0, 3.0]])
    part_losses = torch.tensor([[0.1, 0.3, 0.2], [1.0, 1.0, 0.5]])
    # Image 0: order by loss 0 < 2 < 1; pairs (i better than j):
    # (0,2): relu(1 - 0.5 + 1.0) = 1.5; (0,1): relu(1 - 0.5 + 2) = 2.5;
    # (2,1): relu(1 - 1 + 2) = 2.0. Sum 6.0.
    # Image 1: region 2 is best, 0 and 1 tie (no pair between them):
    # (2,0): relu(1 - 3 + 0) = 0; (2,1): 0. Sum 0.
    loss = RegionRankingLoss()(scores, part_losses)
    torch.testing.assert_close(loss, torch.tensor(6.0 / 2))
    weighted = MODELS.build(
        dict(type='RegionRankingLoss', margin=1.0, loss_weight=0.5)
    )
    torch.testing.assert_close(
        weighted(scores, part_losses), torch.tensor(1.5)
    )
    # Margin 2 on image 1: (2,0), (2,1) give relu(2 - 3) = 0; image 0
    # grows by 1 per pair.
    torch.testing.assert_close(
        RegionRankingLoss(margin=2.0)(scores, part_losses),
        torch.tensor(9.0 / 2),
    )
    # Gradient reaches the scores, not the part losses.
    scores.requires_grad_(True)
    part_losses.requires_grad_(True)
    RegionRankingLoss()(scores.bfloat16(), part_losses).backward()
    assert part_losses.grad is None
    # Image 0, all three hinges active: d/dI_0 = -2, d/dI_1 = +2,
    # d/dI_2 = +1 - 1 = 0; image 1 inactive. Divided by B = 2.
    torch.testing.assert_close(
        scores.grad, torch.tensor([[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    )


# ------------------------------------------------------------------- head
R18_HEAD = dict(
    type='FPLHead',
    num_classes=5,
    in_channels=(256, 512),
    feat_channels=512,
    stage_strides=(16, 32),
    crop_size=32,
)


def r18_head(**kwargs):
    return MODELS.build({**R18_HEAD, **kwargs})


def r18_feats(num_imgs=2, size=128):
    return [
        torch.randn(num_imgs, 256, size // 16, size // 16),
        torch.randn(num_imgs, 512, size // 32, size // 32),
    ]


def test_fpl_head_defaults():
    """The part benchmark's validated setting is the default."""
    head = MODELS.build(
        dict(
            type='FPLHead',
            num_classes=5,
            in_channels=(256, 512),
            feat_channels=512,
            stage_strides=(16, 32),
        )
    )
    assert (head.num_train_parts, head.num_test_parts) == (4, 2)
    assert head.crop_size is None
    assert len(head.teacher_fcs) == 2  # a teacher per stage
    assert head.explore == 0.5


def test_fpl_head_shapes_train_eval():
    torch.manual_seed(0)
    head = r18_head()
    assert isinstance(head, FPLHead)
    feats = r18_feats()
    head.train()
    boxes, scores = head.select(feats, (128, 128))
    # M = 4 regions per stage in training, K = 2 at inference.
    assert boxes.shape == (2, 2, 4, 4) and scores.shape == (2, 2, 4)
    assert boxes.dtype == scores.dtype == torch.float32
    assert not boxes.requires_grad and scores.requires_grad
    # Boxes are anchors: centres inside the image, sizes of the levels.
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    assert (centres > 0).all() and (centres < 128).all()
    # Only the first level of each stage fits 128 px. Smallest anchor
    # side: stage 3, 24 * 2^(1/3) * sqrt(0.667) = 24.7; largest: stage 4,
    # shrunk to a widest square box of 0.4 * 128 = 51.2, times sqrt(1.5).
    sides = boxes[..., 2:] - boxes[..., :2]
    assert (sides > 24).all()
    assert (sides <= 0.4 * 128 * math.sqrt(1.5) + 1e-3).all()
    crops = head.crop(torch.randn(2, 3, 128, 128), boxes)
    assert crops.shape == (2 * 2 * 4, 3, 32, 32)

    head.eval()
    with torch.no_grad():
        boxes_k, scores_k = head.select(feats, (128, 128))
    assert boxes_k.shape == (2, 2, 2, 4) and scores_k.shape == (2, 2, 2)
    assert head.crop(torch.randn(2, 3, 128, 128), boxes_k).shape == (
        8,
        3,
        32,
        32,
    )
    # Greedy NMS: the K picks are the first K of the M picks of a
    # training selection without exploration noise.
    plain = r18_head(explore=0.0)
    plain.load_state_dict(head.state_dict())
    plain.train()
    with torch.no_grad():
        boxes_m, _ = plain.select(feats, (128, 128))
    torch.testing.assert_close(boxes_k, boxes_m[:, :, :2])


def test_fpl_head_boxes_fitted_to_a_small_input():
    """At 128 px no returned box is wider than 0.4 of the side (times the
    stretch of the ratio 1.5), and every stage keeps its first level."""
    torch.manual_seed(0)
    head = r18_head().eval()
    with torch.no_grad():
        boxes, scores = head.select(r18_feats(), (128, 128))
    assert boxes.shape == (2, 2, 2, 4) and scores.shape == (2, 2, 2)
    limit = 0.4 * 128 * math.sqrt(1.5) + 1e-3
    assert ((boxes[..., 2] - boxes[..., 0]) <= limit).all()
    assert ((boxes[..., 3] - boxes[..., 1]) <= limit).all()
    # Stage 4 (stride 32): ceil(128 / 32)^2 positions x (2 scales x 3
    # ratios) of its first level; stage 3 (stride 16): ceil(128 / 16)^2 x 6.
    assert len(head._anchor_cache) == 2  # cached by the forward
    anchors = head.get_anchors(1, (128, 128), torch.device('cpu'))
    num = anchors.shape[0]
    assert num == anchors.shape[0] == math.ceil(128 / 32) ** 2 * (2 * 3)
    anchors3 = head.get_anchors(0, (128, 128), torch.device('cpu'))
    num3 = anchors3.shape[0]
    assert num3 == anchors3.shape[0] == math.ceil(128 / 16) ** 2 * (2 * 3)
    # Every returned box is one of the kept anchors.
    for b in range(2):
        for box in boxes[b, 1]:
            assert ((anchors - box).abs().sum(1) < 1e-4).any()


def test_fpl_head_derived_crop_size():
    """crop_size=None: half the input size of the batch."""
    head = r18_head(crop_size=None)
    assert head.crop_size is None
    boxes = torch.tensor([[0.0, 0, 32, 32], [16.0, 8, 48, 40]])
    boxes = boxes.expand(1, 2, 2, 4)
    square = torch.randn(1, 3, 96, 96)
    crops = head.crop(square, boxes)
    assert crops.shape == (4, 3, 48, 48)
    torch.testing.assert_close(
        crops, crop_regions(square, boxes.reshape(1, 4, 4), (48, 48))
    )
    # (H, W) = (128, 64): crops of 64 x 32
    tall = torch.randn(1, 3, 128, 64)
    assert head.crop(tall, boxes).shape == (4, 3, 64, 32)
    # A given size is kept whatever the input.
    fixed = r18_head(crop_size=40)
    assert fixed.crop(square, boxes).shape == (4, 3, 40, 40)
    assert fixed.crop(tall, boxes).shape == (4, 3, 40, 40)


def test_fpl_head_crop_order():
    head = r18_head(crop_size=8)
    # Pixel value = x + 100 * b: the mean of a crop identifies its box.
    inputs = torch.arange(64.0) + 100 * torch.arange(2.0)[:, None]
    inputs = inputs[:, None, None, :].expand(2, 3, 64, 64).contiguous()
    x0 = 4 + 8.0 * torch.arange(6).view(2, 3)  # (s, n), off the border
    boxes = torch.zeros(2, 2, 3, 4)
    boxes[..., 0] = x0
    boxes[..., 2] = x0 + 8
    boxes[..., 3] = 8
    crops = head.crop(inputs, boxes)
    assert crops.shape == (12, 3, 8, 8)
    expected = (x0 + 3.5) + 100 * torch.arange(2.0)[:, None, None]
    torch.testing.assert_close(crops.mean((1, 2, 3)), expected.flatten())


def test_fpl_head_resnet50_channels():
    torch.manual_seed(0)
    head = r18_head(
        num_classes=3,
        in_channels=(1024, 2048),
        feat_channels=2048,
        crop_size=16,
    )
    feats = [torch.randn(1, 1024, 8, 8), torch.randn(1, 2048, 4, 4)]
    boxes, scores = head.select(feats, (128, 128))
    assert boxes.shape == (1, 2, 4, 4) and scores.shape == (1, 2, 4)
    part_feats = torch.randn(1, 2, 4, 2048)
    losses = head.loss(
        part_feats, scores, torch.tensor([2]), torch.randn(1, 2048)
    )
    assert set(losses) == {
        'loss_teacher_s3',
        'loss_rank_s3',
        'loss_teacher_s4',
        'loss_rank_s4',
    }


def test_fpl_head_anchor_cache():
    head = r18_head()
    feats = r18_feats()
    head.select(feats, (128, 128))
    anchors = head.get_anchors(1, (128, 128), torch.device('cpu'))
    num = anchors.shape[0]
    assert head.get_anchors(1, (128, 128), torch.device('cpu')) is anchors
    # Stage 4 anchors at 128: the first level only (4x4x6); the other two
    # (2x2x6 + 1x1x9) are fitted out.
    assert anchors.shape == (96, 4) and num == 96
    assert len(head._anchor_cache) == 2
    # At 448 the last level is fitted out: 14x14x6 + 7x7x6.
    anchors = head.get_anchors(1, (448, 448), torch.device('cpu'))
    num = anchors.shape[0]
    assert anchors.shape == (1176 + 294, 4) and num == 1176 + 294
    assert len(head._anchor_cache) == 3


def test_fpl_head_gradients():
    torch.manual_seed(0)
    head = r18_head()
    feats = [f.requires_grad_(True) for f in r18_feats()]
    boxes, scores = head.select(feats, (128, 128))
    part_feats = torch.randn(2, 2, 4, 512, requires_grad=True)
    image_feats = torch.randn(2, 512, requires_grad=True)
    labels = torch.tensor([0, 3])
    losses = head.loss(part_feats, scores, labels, image_feats)
    for loss in losses.values():
        assert loss.dim() == 0 and torch.isfinite(loss)

    # Rank losses: navigators only (not the teacher, not the CPL maps).
    (losses['loss_rank_s3'] + losses['loss_rank_s4']).backward(
        retain_graph=True
    )
    assert head.teacher_fcs[0].weight.grad is None
    assert part_feats.grad is None
    assert all(f.grad is None for f in feats)
    for nav in head.navigators:
        for p in nav.parameters():
            assert p.grad is not None
        # The first conv feeds every level.
        assert nav.convs[0].weight.grad.abs().sum() > 0

    head.zero_grad(set_to_none=True)
    # Teacher losses: the teachers (one per stage) only; they are probes
    # of the features (neither crops nor image), never the navigators.
    (losses['loss_teacher_s3'] + losses['loss_teacher_s4']).backward()
    for fc in head.teacher_fcs:
        assert fc.weight.grad.abs().sum() > 0
    assert part_feats.grad is None and image_feats.grad is None
    for p in head.navigators.parameters():
        assert p.grad is None


def test_fpl_head_teacher_loss_value_and_soft_labels():
    torch.manual_seed(0)
    head = r18_head(teacher_loss=dict(type='CrossEntropyLoss', loss_weight=2))
    part_feats = torch.randn(2, 2, 3, 512)
    image_feats = torch.randn(2, 512)
    scores = torch.randn(2, 2, 3)
    labels = torch.tensor([1, 4])
    losses = head.loss(part_feats, scores, labels, image_feats)
    logits = head.teacher(part_feats)
    assert logits.shape == (2, 2, 3, 5)
    # The teacher of a stage learns on its 3 crops of each image and on
    # the whole image: the mean CE over 6 + 2 rows.
    ce = F.cross_entropy(
        torch.cat(
            [logits[:, 0].reshape(6, 5), head.teacher_fcs[0](image_feats)]
        ),
        torch.cat([labels.repeat_interleave(3), labels]),
    )
    torch.testing.assert_close(losses['loss_teacher_s3'], 2 * ce)
    per_crop = F.cross_entropy(
        logits[:, 1].reshape(6, 5),
        labels.repeat_interleave(3),
        reduction='none',
    ).view(2, 3)
    # The ranking sees the per-crop CE of the crops only, capped at chance.
    assert (per_crop > math.log(5)).any()
    per_crop = per_crop.clamp(max=math.log(5))
    torch.testing.assert_close(
        losses['loss_rank_s4'], RegionRankingLoss()(scores[:, 1], per_crop)
    )
    # One-hot scores (Mixup / CutMix format) give the same losses.
    soft = head.loss(
        part_feats, scores, F.one_hot(labels, 5).float(), image_feats
    )
    for key in losses:
        torch.testing.assert_close(soft[key], losses[key])


def test_fpl_head_validation():
    with pytest.raises(ValueError, match=r'^num_test_parts=5: .*=4'):
        r18_head(num_train_parts=4, num_test_parts=5)
    with pytest.raises(ValueError, match=r'^stage_strides=\(32,\): 1 value'):
        r18_head(stage_strides=(32,))
    with pytest.raises(ValueError, match=r'^crop_size=\(0, 0\): not a size'):
        r18_head(crop_size=0)
    # The level strides follow the stage stride: not a setting.
    with pytest.raises(ValueError) as err:
        r18_head(anchor_cfgs=[dict(strides=(16, 48, 64)), dict()])
    assert str(err.value).startswith(
        "anchor_cfgs['s3']={'strides': (16, 48, 64)}: unknown keys "
        "['strides']; use sizes, scales, ratios"
    )
    for key in ('num_classes', 'in_channels', 'feat_channels'):
        cfg = dict(R18_HEAD)
        del cfg[key]
        with pytest.raises(TypeError, match=f"required .*'{key}'"):
            MODELS.build(cfg)
    head = r18_head()
    assert head.stage_names == ('s3', 's4')
    with pytest.raises(ValueError, match=r'^img_shape=100x100: the FPL'):
        head.select(r18_feats(size=100), (100, 100))
    with pytest.raises(ValueError) as err:
        head.select([r18_feats()[0], torch.randn(2, 512, 5, 5)], (128, 128))
    assert str(err.value).startswith(
        'stage_strides[1]=32: the s4 map of a 128x128 input is 5x5, not 4x4'
    )


def test_fpl_head_custom_anchor_cfgs():
    head = r18_head(
        anchor_cfgs=[
            dict(sizes=(24, 48), scales=(1.0,)),
            dict(ratios=(1.0,)),
        ]
    )
    assert [n.num_anchors_per_level for n in head.navigators] == [
        (3, 3),
        (2, 2, 3),
    ]
    boxes, scores = head.select(r18_feats(), (128, 128))
    assert boxes.shape == (2, 2, 4, 4)
    # At 128 (limit 51.2) stage 3 keeps both its levels (widest boxes 24
    # and 48): 8x8x3 + 4x4x3; stage 4 its first, shrunk: 4x4x(2x1).
    cpu = torch.device('cpu')
    assert head.get_anchors(0, (128, 128), cpu).shape[0] == 192 + 48
    assert head.get_anchors(1, (128, 128), cpu).shape[0] == 32


def test_fpl_head_autocast_bf16():
    torch.manual_seed(0)
    head = r18_head()
    feats = r18_feats()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        boxes, scores = head.select(feats, (128, 128))
        crops = head.crop(torch.randn(2, 3, 128, 128), boxes)
        part_feats = torch.randn(2, 2, 4, 512).bfloat16()
        losses = head.loss(
            part_feats, scores, torch.tensor([0, 1]), torch.randn(2, 512)
        )
    assert boxes.dtype == torch.float32 and scores.dtype == torch.float32
    assert crops.shape == (16, 3, 32, 32)
    for loss in losses.values():
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    sum(losses.values()).backward()
    for p in head.navigators.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    # Selected boxes never overlap beyond the threshold.
    for b in range(2):
        for s in range(2):
            iou = box_iou(boxes[b, s], boxes[b, s]).fill_diagonal_(0)
            assert (iou < 0.25).all()


def test_fpl_head_explore_perturbs_training_selection_only():
    torch.manual_seed(0)
    plain = r18_head(explore=0.0)
    explorer = r18_head(explore=2.0)
    explorer.load_state_dict(plain.state_dict())
    feats = r18_feats()
    plain.train()
    explorer.train()
    torch.manual_seed(1)
    boxes_p, scores_p = plain.select(feats, (128, 128))
    torch.manual_seed(1)
    boxes_e, scores_e = explorer.select(feats, (128, 128))
    # Other regions are tried ...
    assert not torch.equal(boxes_p, boxes_e)
    # ... and their plain navigator scores are returned for the ranking
    # loss: every returned score is the score of the returned anchor.
    all_scores = plain._navigate(1, feats[1])
    anchors = plain.get_anchors(1, (128, 128), torch.device('cpu'))
    for b in range(2):
        idx = [
            int(((anchors - box).abs().sum(1) < 1e-4).nonzero()[0])
            for box in boxes_e[b, 1]
        ]
        torch.testing.assert_close(scores_e[b, 1], all_scores[b, idx])
    # Inference is unaffected.
    plain.eval()
    explorer.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            plain.select(feats, (128, 128))[0],
            explorer.select(feats, (128, 128))[0],
        )
    with pytest.raises(ValueError, match='explore=-1'):
        r18_head(explore=-1)


def test_fpl_head_rank_cap_at_chance_ties_worse_than_guessing():
    head = r18_head()
    # A teacher that reads its logits off the first 5 feature channels.
    with torch.no_grad():
        for fc in head.teacher_fcs:
            fc.weight.zero_()
            fc.weight[:, :5] = torch.eye(5)
            fc.bias.zero_()
    # One image of class 0, three regions per stage: true-class logit 5
    # (CE 0.027), -1 (CE 2.47) and -2 (CE 3.40); chance is ln 5 = 1.61.
    feats = torch.zeros(1, 2, 3, 512)
    feats[0, :, :, 0] = torch.tensor([5.0, -1.0, -2.0])
    scores = torch.zeros(1, 2, 3, requires_grad=True)
    losses = head.loss(feats, scores, torch.tensor([0]), torch.zeros(1, 512))
    # Equal scores: every ranked pair costs the margin, 1. Uncapped, the
    # pairs would be (0, 1), (0, 2) and (1, 2): 3.0. Capped, regions 1 and
    # 2 are both worse than guessing and tie: 2.0.
    uncapped = F.cross_entropy(
        feats[0, 1, :, :5], torch.zeros(3, dtype=torch.long), reduction='none'
    )
    assert RegionRankingLoss()(
        torch.zeros(1, 3), uncapped[None]
    ).item() == pytest.approx(3.0)
    for name in ('s3', 's4'):
        assert losses[f'loss_rank_{name}'].item() == pytest.approx(2.0)
    losses['loss_rank_s4'].backward()
    # Region 0 is pushed up against both; 1 and 2 down once each.
    torch.testing.assert_close(
        scores.grad[0, 1], torch.tensor([-2.0, 1.0, 1.0])
    )


def test_fpl_head_teacher_per_stage():
    torch.manual_seed(0)
    head = r18_head()
    assert len(head.teacher_fcs) == 2
    part_feats = torch.randn(2, 2, 3, 512)
    logits = head.teacher(part_feats)
    torch.testing.assert_close(
        logits[:, 0], head.teacher_fcs[0](part_feats[:, 0])
    )
    torch.testing.assert_close(
        logits[:, 1], head.teacher_fcs[1](part_feats[:, 1])
    )
    losses = head.loss(
        part_feats,
        torch.randn(2, 2, 3),
        torch.tensor([0, 1]),
        torch.randn(2, 512),
    )
    losses['loss_teacher_s3'].backward()
    assert head.teacher_fcs[0].weight.grad.abs().sum() > 0
    grad = head.teacher_fcs[1].weight.grad
    assert grad is None or grad.abs().sum() == 0


def test_fpl_head_teach_on_image_leaves_the_ranking_to_the_crops():
    torch.manual_seed(0)
    head = r18_head()
    part_feats = torch.randn(2, 2, 3, 512)
    scores = torch.randn(2, 2, 3)
    labels = torch.tensor([1, 4])
    losses = head.loss(part_feats, scores, labels, torch.randn(2, 512))
    other = head.loss(part_feats, scores, labels, torch.randn(2, 512))
    # Other image features change what the teachers learn ...
    assert not torch.allclose(
        losses['loss_teacher_s3'], other['loss_teacher_s3']
    )
    # ... but not the ranking, which reads the crops only.
    torch.testing.assert_close(losses['loss_rank_s4'], other['loss_rank_s4'])
