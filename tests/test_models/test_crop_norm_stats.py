# Copyright (c) scrim-mm contributors. All rights reserved.
"""Separate batch-norm statistics for the crop pass (``CropNormStats``)."""

import torch
import torch.nn as nn
from mmpretrain.structures import DataSample

from scrim_mm.models.ops import CropNormStats

from .test_scrim_classifier import R18, build, scrim_cfg


def _samples(n):
    return [DataSample().set_gt_label(i % 2) for i in range(n)]


def test_full_image_stats_see_only_full_images():
    torch.manual_seed(0)
    model = build(scrim_cfg(R18, num_classes=2, crop_size=32))
    model.train()
    bn = model.backbone.bn1
    before = bn.running_mean.clone()
    seen = []
    handle = bn.register_forward_hook(
        lambda m, args, out: seen.append(args[0].detach())
    )
    inputs = torch.randn(2, 3, 64, 64)
    model.loss(inputs, _samples(2))
    handle.remove()
    assert len(seen) == 2  # the full images, then the crops
    full, crops = seen
    assert crops.shape[0] == 2 * 2 * 6
    m = bn.momentum
    expected = (1 - m) * before + m * full.mean(dim=(0, 2, 3))
    torch.testing.assert_close(bn.running_mean, expected)
    stats = model.crop_norm_stats
    crop_mean = stats.bn1__running_mean
    # copied from the full-image statistics at the first crop pass
    torch.testing.assert_close(
        crop_mean, (1 - m) * expected + m * crops.mean(dim=(0, 2, 3))
    )
    assert bool(stats.initialised)


def test_eval_crop_pass_uses_crop_stats_and_restores():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    stats = CropNormStats(net)
    net.train()
    with stats.swap(net):
        net(torch.randn(8, 3, 4, 4) + 5.0)
    own = net[1].running_mean.clone()
    crop = stats.__getattr__('1__running_mean').clone()
    assert not torch.allclose(own, crop)
    net.eval()
    x = torch.randn(2, 3, 4, 4)
    with stats.swap(net):
        inside = net(x)
        assert torch.equal(net[1].running_mean, crop)
    torch.testing.assert_close(net[1].running_mean, own)
    manual = nn.functional.batch_norm(
        net[0](x),
        crop,
        stats.__getattr__('1__running_var'),
        net[1].weight,
        net[1].bias,
        training=False,
    )
    torch.testing.assert_close(inside, manual)


def test_state_dict_round_trip_and_switch():
    torch.manual_seed(0)
    model = build(scrim_cfg(R18, num_classes=2, crop_size=32))
    model.train()
    model.loss(torch.randn(2, 3, 64, 64), _samples(2))
    state = model.state_dict()
    assert 'crop_norm_stats.layer4__1__bn2__running_var' in state
    other = build(scrim_cfg(R18, num_classes=2, crop_size=32))
    other.load_state_dict(state)
    model.eval()
    other.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), other(x))
