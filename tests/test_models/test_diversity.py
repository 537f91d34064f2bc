# Copyright (c) scrim-mm contributors. All rights reserved.
"""Spatial diversity of the CPL parts (``PartDiversityLoss``)."""

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from scrim_mm.analysis.part_diversity import part_diversity
from scrim_mm.models.necks import OSME
from scrim_mm.models.ops import part_attention_maps


def _blob_feats(batch: int = 8, size: int = 8) -> torch.Tensor:
    """Features where channels 0-3 fire at one spot, 4-7 at another."""
    g = torch.Generator().manual_seed(0)
    feat = torch.rand(batch, 16, size, size, generator=g) * 0.1
    for b in range(batch):
        (y0, x0), (y1, x1) = torch.randint(0, size, (2, 2), generator=g)
        if (y0, x0) == (y1, x1):
            y1, x1 = (y1 + 3) % size, (x1 + 3) % size
        feat[b, 0:4, y0, x0] += 3.0
        feat[b, 4:8, y1, x1] += 3.0
    # A shared "objectness" channel group that dominates every map.
    feat[:, 8:] += 1.0
    return feat


def test_loss_hand_computation():
    loss = MODELS.build(dict(type='PartDiversityLoss', sharpness=1.0))
    maps = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    maps = maps.view(1, 2, 2, 2)
    # standardised maps: 1 -> sqrt(3), 0 -> -1/sqrt(3)
    hi, lo = 3**0.5, -(3**-0.5)
    e_hi, e_lo = torch.exp(torch.tensor(hi)), torch.exp(torch.tensor(lo))
    s0 = torch.stack([e_hi, e_lo, e_lo, e_lo]) / (e_hi + 3 * e_lo)
    s1 = s0.flip(0)
    expected = (s0 @ s1) / (s0.norm() * s1.norm())
    assert loss(maps).item() == pytest.approx(expected.item(), rel=1e-5)
    # identical parts: cosine 1
    same = maps[:, :1].expand(1, 2, 2, 2)
    assert loss(same).item() == pytest.approx(1.0, rel=1e-5)
    # one part: nothing to compare
    assert loss(maps[:, :1]).item() == 0.0
    # weight
    heavy = MODELS.build(
        dict(type='PartDiversityLoss', sharpness=1.0, loss_weight=3.0)
    )
    assert heavy(maps).item() == pytest.approx(3 * expected.item(), rel=1e-5)


def test_low_sharpness_loss_follows_map_correlation():
    """As sharpness goes to 0, 1 - L tends to s^2 (1 - Pearson r)."""
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(4, 2, 8, 8, generator=g)
    maps[1, 1] = maps[1, 0] * 2 + 1  # r = 1
    maps[2, 1] = -maps[2, 0]  # r = -1
    centred = maps.flatten(2) - maps.flatten(2).mean(dim=2, keepdim=True)
    unit = torch.nn.functional.normalize(centred, dim=2)
    r = (unit[:, 0] * unit[:, 1]).sum(dim=1)
    s = 0.02
    loss = MODELS.build(dict(type='PartDiversityLoss', sharpness=s))
    got = torch.stack([(1 - loss(maps[i : i + 1])) / s**2 for i in range(4)])
    torch.testing.assert_close(got, 1 - r, atol=0.02, rtol=0.02)
    assert got[1].abs() < 0.02 and (got[2] - 2).abs() < 0.02


def test_loss_errors_name_the_problem():
    with pytest.raises(ValueError, match='sharpness=0'):
        MODELS.build(dict(type='PartDiversityLoss', sharpness=0))
    with pytest.raises(ValueError, match=r'maps.shape=\(2, 3\)'):
        MODELS.build(dict(type='PartDiversityLoss'))(torch.zeros(2, 3))


def test_measures_flag_identical_parts():
    feat = _blob_feats()
    m = torch.rand(8, 1, 16)
    same = part_diversity(feat, m.expand(8, 2, 16))
    for key in ('excitation_cos', 'map_cos', 'map_corr', 'same_peak'):
        assert same[key].shape == (8,)
        torch.testing.assert_close(same[key], torch.ones(8))
    # parts that pick the two blob groups
    m = torch.full((8, 2, 16), 0.01)
    m[:, 0, 0:4] = 1.0
    m[:, 1, 4:8] = 1.0
    apart = part_diversity(feat, m)
    assert (apart['same_peak'] == 0).all()
    assert (apart['map_corr'] < 0.2).all()
    assert (apart['excitation_cos'] < 0.2).all()
    with pytest.raises(ValueError, match='at least 2 parts'):
        part_diversity(feat, m[:, :1])


def _train_osme(diversity_weight: float, steps: int = 150) -> dict:
    """Train OSME so both parts see the blobs; measure the part overlap."""
    torch.manual_seed(0)
    feat = _blob_feats()
    osme = OSME(16, num_parts=2, reduction=2)
    loss_fn = MODELS.build(dict(type='PartDiversityLoss'))
    opt = torch.optim.SGD(osme.parameters(), lr=0.5)
    for _ in range(steps):
        m = osme(feat)
        # a task term that wants every part to see the blobs (the
        # classifiers do this in SCRIM): attention on blob channels
        maps = part_attention_maps(feat, m).flatten(2)
        task = -maps.amax(dim=2).mean()
        loss = task + diversity_weight * loss_fn(part_attention_maps(feat, m))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return {
            k: v.mean().item()
            for k, v in part_diversity(feat, osme(feat)).items()
        }


def test_diversity_loss_separates_collapsed_parts():
    """Without the loss both parts peak at one blob; with it they split."""
    collapsed = _train_osme(0.0)
    distinct = _train_osme(1.0)
    assert collapsed['same_peak'] > 0.9
    assert distinct['same_peak'] < 0.2
    assert distinct['map_corr'] < collapsed['map_corr'] - 0.05


def test_head_diversity_term_reaches_osme_and_features():
    """The term trains OSME and the stage maps."""
    torch.manual_seed(0)
    neck = MODELS.build(
        dict(type='CPLNeck', in_channels=(16, 32), embed_dims=8)
    )
    head = MODELS.build(
        dict(
            type='SCRIMHead',
            num_classes=2,
            in_channels=32,
            part_channels=(16, 32),
            num_fpl_parts=0,
        )
    )
    maps = (
        torch.rand(4, 16, 8, 8, requires_grad=True),
        torch.rand(4, 32, 4, 4, requires_grad=True),
    )
    out = neck(maps)
    samples = [DataSample().set_gt_label(i % 2) for i in range(4)]
    losses = head.loss(out, samples)
    # None weights: 0.3 on s3 (1.5 x the 0.2 of the last stage, s4)
    expected = 0.3 * MODELS.build(dict(type='PartDiversityLoss'))(
        part_attention_maps(out.feats[0], out.excitations[0])
    )
    torch.testing.assert_close(losses['loss_diversity_s3'], expected)
    losses['loss_diversity_s3'].backward()
    assert neck.osmes[0].excite_weight.grad.abs().sum() > 0
    assert maps[0].grad.abs().sum() > 0
    assert neck.osmes[1].excite_weight.grad is None
    # disabled
    head = MODELS.build(
        dict(
            type='SCRIMHead',
            num_classes=2,
            in_channels=32,
            part_channels=(16, 32),
            num_fpl_parts=0,
            diversity_loss=None,
        )
    )
    assert not any('diversity' in k for k in head.loss(out, samples))
