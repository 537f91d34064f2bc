# Copyright (c) scrim-mm contributors. All rights reserved.
"""Tests of the CPL side: OSME, CPLNeck, PartContrastiveLoss, SCRIMHead."""

import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import scrim_mm  # noqa: F401
from scrim_mm.models.necks import CPLOutput
from scrim_mm.models.ops import part_attention_maps

from ._backbones import BACKBONE_IDS, TWO_STAGE_BACKBONES

# ------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machines are small and shared: several intra-op threads
    # competing for the same cores made a ResNet-18 step 30x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _neck(**kwargs):
    cfg = dict(type='CPLNeck', in_channels=(256, 512), embed_dims=32)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _maps(batch=2, channels=(256, 512), sizes=(4, 2)):
    return tuple(torch.randn(batch, c, s, s) for c, s in zip(channels, sizes))


def _head(**kwargs):
    cfg = dict(
        type='SCRIMHead',
        num_classes=4,
        in_channels=512,
        part_channels=(256, 512),
        num_parts=2,
        fpl_channels=64,
        num_fpl_parts=3,
    )
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _samples(labels):
    return [DataSample().set_gt_label(int(label)) for label in labels]


def _assert_finite_grad(embeds, loss):
    assert torch.isfinite(loss).all()
    loss.backward()
    assert embeds.grad is not None
    assert torch.isfinite(embeds.grad).all()


def _mamc_reference(embeds, labels, temperature=0.1):
    """Loop-by-loop MAMC loss, written straight from the definition."""
    x = F.normalize(embeds.double(), dim=-1)
    num_imgs, num_parts, _ = x.shape
    nodes = [(b, p) for b in range(num_imgs) for p in range(num_parts)]

    def group(a, o):
        same_part = a[1] == o[1]
        same_cls = labels[a[0]] == labels[o[0]]
        if a == o:
            return None
        if same_part and same_cls:
            return 'spsc'
        if same_part:
            return 'spdc'
        return 'dpsc' if same_cls else 'dpdc'

    pairings = [
        ('spsc', ('spdc', 'dpsc', 'dpdc')),
        ('spdc', ('dpdc',)),
        ('dpsc', ('dpdc',)),
    ]
    total = 0.0
    for pos_name, neg_names in pairings:
        values = []
        for a in nodes:
            va = x[a]
            pos = [x[o] for o in nodes if group(a, o) == pos_name]
            neg = [x[o] for o in nodes if group(a, o) in neg_names]
            if not pos:
                continue
            term = 0.0
            for vp in pos:
                inner = sum(
                    math.exp(float(va @ vn - va @ vp) / temperature)
                    for vn in neg
                )
                term += math.log(1 + inner)
            values.append(term)
        total += sum(values) / len(values) if values else 0.0
    return total


def _c3s_reference(embeds):
    x = F.normalize(embeds.double(), dim=-1)
    num_imgs, num_parts, _ = x.shape
    pairs = [
        (b, c) for b in range(num_imgs) for c in range(num_imgs) if b != c
    ] or [(0, 0)]
    sim = torch.zeros(num_parts, num_parts, dtype=torch.double)
    for i in range(num_parts):
        for j in range(num_parts):
            sim[i, j] = sum(float(x[b, i] @ x[c, j]) for b, c in pairs) / len(
                pairs
            )
    loss = sum(1 - sim[i, i] for i in range(num_parts))
    loss += sum(
        sim[i, j] for i in range(num_parts) for j in range(i + 1, num_parts)
    )
    return float(loss)


# --------------------------------------------------------------------- OSME


def test_osme_shapes_and_parts_match_per_part_mlp():
    osme = MODELS.build(
        dict(type='OSME', in_channels=64, num_parts=3, reduction=8)
    )
    x = torch.randn(2, 64, 5, 5)
    m = osme(x)
    assert m.shape == (2, 3, 64)
    assert ((m > 0) & (m < 1)).all()
    z = x.mean(dim=(2, 3))
    torch.testing.assert_close(osme(z), m)
    for p in range(3):
        hidden = F.relu(
            F.linear(z, osme.squeeze_weight[p], osme.squeeze_bias[p])
        )
        expect = torch.sigmoid(
            F.linear(hidden, osme.excite_weight[p], osme.excite_bias[p])
        )
        torch.testing.assert_close(m[:, p], expect)
    # different parts get different weights
    assert not torch.allclose(m[:, 0], m[:, 1])
    with pytest.raises(ValueError, match='in_channels=64: the input has 32'):
        osme(torch.randn(2, 32))
    with pytest.raises(ValueError, match='reduction=0: must be positive'):
        MODELS.build(dict(type='OSME', in_channels=64, reduction=0))


# ------------------------------------------------------------------ CPLNeck


@pytest.mark.parametrize(
    'backbone, channels, size', TWO_STAGE_BACKBONES, ids=BACKBONE_IDS
)
def test_cpl_neck_shapes_on_backbones(backbone, channels, size):
    torch.manual_seed(0)
    backbone = MODELS.build(backbone)
    neck = _neck(in_channels=channels, embed_dims=48, num_parts=3)
    with torch.no_grad():
        feats = backbone(torch.randn(2, 3, size, size))
        out = neck(feats)
    assert isinstance(out, CPLOutput)
    for s, c in enumerate(channels):
        h, w = feats[s].shape[2:]
        assert out.feats[s].shape == (2, c, h, w)
        assert out.enhanced[s].shape == (2, c, h, w)
        assert out.excitations[s].shape == (2, 3, c)
        assert out.part_vecs[s].shape == (2, 3, c)
        assert out.part_embeds[s].shape == (2, 3, 48)
    maps = neck.attention_maps(out)
    assert [tuple(a.shape) for a in maps] == [
        (2, 3) + tuple(f.shape[2:]) for f in feats
    ]


def test_cpl_neck_in_indices_and_extra_stages():
    neck = _neck(embed_dims=None)
    extra = torch.randn(2, 128, 8, 8)
    maps = _maps()
    out = neck((extra,) + maps)  # default: the last two
    assert out.feats[0] is maps[0] and out.feats[1] is maps[1]
    neck = _neck(in_indices=(1, 3))
    out = neck((extra, maps[0], extra, maps[1]))
    assert out.feats[0] is maps[0] and out.feats[1] is maps[1]


@pytest.mark.parametrize('pool', ['avg', 'max', ('max', 'avg')])
def test_part_vecs_equal_pooled_part_maps(pool):
    torch.manual_seed(0)
    neck = _neck(pool=pool, embed_dims=None)
    maps = tuple(m.requires_grad_() for m in _maps(batch=3))
    out = neck(maps)
    pools = (pool, pool) if isinstance(pool, str) else pool
    explicit = []
    for s, x in enumerate(maps):
        # the P part maps A_p = F * m_p, materialised on purpose
        parts = x[:, None] * out.excitations[s][..., None, None]
        if pools[s] == 'avg':
            explicit.append(parts.mean(dim=(3, 4)))
        else:
            explicit.append(parts.amax(dim=(3, 4)))
        torch.testing.assert_close(out.part_vecs[s], explicit[s])
        # enhanced map = F * mean_p m_p
        torch.testing.assert_close(out.enhanced[s], parts.mean(dim=1))
        # without projection the embeddings are the part vectors' values
        torch.testing.assert_close(out.part_embeds[s], out.part_vecs[s])
    # the identity holds for the gradients as well
    grads = torch.autograd.grad(
        sum(v.sum() for v in out.part_vecs), maps, retain_graph=True
    )
    grads_ref = torch.autograd.grad(sum(v.sum() for v in explicit), maps)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize('pool', ['avg', 'max'])
def test_part_vectors_do_not_depend_on_where_the_parts_look(pool):
    """Channel re-weighting commutes with pooling: moving the positions of
    a stage map moves its part maps, and leaves the excitations, part
    vectors and embeddings as they were. No loss but the diversity loss
    sees whether the part maps are distinct (docs/part_benchmark.md)."""
    torch.manual_seed(0)
    neck = _neck(pool=pool)
    maps = _maps(batch=3)
    moved = tuple(
        m.flatten(2)[..., torch.randperm(m[0, 0].numel())].view_as(m)
        for m in maps
    )
    out, out_moved = neck(maps), neck(moved)
    for key in ('excitations', 'part_vecs', 'part_embeds'):
        for a, b in zip(getattr(out, key), getattr(out_moved, key)):
            torch.testing.assert_close(a, b)
    # ... while the attention maps do move.
    assert not torch.allclose(
        neck.attention_maps(out)[0], neck.attention_maps(out_moved)[0]
    )


def test_part_embeds_are_a_linear_projection_shared_over_parts():
    neck = _neck(embed_dims=16)
    out = neck(_maps())
    for s in range(2):
        proj = neck.projs[s]
        for p in range(2):
            torch.testing.assert_close(
                out.part_embeds[s][:, p], proj(out.part_vecs[s][:, p])
            )


def test_attention_maps_equal_loop():
    neck = _neck(num_parts=3)
    out = neck(_maps())
    maps = neck.attention_maps(out)
    for s, x in enumerate(out.feats):
        for p in range(3):
            expect = (x * out.excitations[s][:, p, :, None, None]).mean(1)
            torch.testing.assert_close(maps[s][:, p], expect)


def test_cpl_neck_validates_inputs():
    # Built on its own (e.g. in a plain ImageClassifier) the neck checks
    # its stage maps at the first forward pass.
    neck = _neck()
    with pytest.raises(
        ValueError, match=r'in_channels=\(256, 512\): 2 stages'
    ):
        neck(_maps()[1:])
    with pytest.raises(ValueError) as err:
        neck(_maps(channels=(256, 640)))
    msg = str(err.value)
    assert msg.startswith('model.neck.in_channels=(256, 512): ')
    assert '(640, 2, 2)' in msg and 'out_indices' in msg
    # a ResNet-18 with the wrong out_indices gives 128/256 channels
    backbone = MODELS.build(dict(type='ResNet', depth=18, out_indices=(1, 2)))
    with pytest.raises(ValueError) as err:
        neck(backbone(torch.randn(1, 3, 64, 64)))
    assert '(128, 8, 8)' in str(err.value) and '(256, 4, 4)' in str(err.value)
    with pytest.raises(ValueError, match="pool='median': unknown"):
        _neck(pool='median')
    with pytest.raises(
        ValueError, match=r'reduction=\(16, 16, 16\): 3 values'
    ):
        _neck(reduction=(16, 16, 16))
    # Outside a SCRIMClassifier nothing gives the channels.
    with pytest.raises(TypeError, match="required .*'in_channels'"):
        MODELS.build(dict(type='CPLNeck'))
    # The stage names default to the last stages of a four-stage backbone.
    assert _neck().stage_names == ('s3', 's4')
    assert _neck(in_channels=(8,)).stage_names == ('s4',)


# ------------------------------------------------------ PartContrastiveLoss


def _toy_embeds():
    # image 0: parts (1, 0), (0, 1); image 1: (.6, .8), (-.8, .6); scaled
    # to check that the loss normalises.
    return (
        torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [-0.8, 0.6]]])
        * 3.0
    )


@pytest.mark.parametrize('temperature', [1.0, 0.5])
def test_mamc_hand_computed(temperature):
    loss_fn = MODELS.build(
        dict(type='PartContrastiveLoss', mode='mamc', temperature=temperature)
    )
    # Every similarity below is a cosine divided by the temperature.
    t = temperature
    embeds = _toy_embeds()
    # labels (0, 1): no SPSC pair, so only the SPDC-vs-DPDC and
    # DPSC-vs-DPDC pairings count, each averaged over the 4 anchors.
    sp = math.log1p(math.exp(-1.4 / t)) + math.log1p(math.exp(0.2 / t))
    dp = math.log1p(math.exp(-0.8 / t)) + math.log1p(math.exp(0.8 / t))
    expect = (2 * sp) / 4 + (2 * dp) / 4
    loss = loss_fn(embeds, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(expect, abs=1e-5)
    # labels (0, 0): every anchor has one SPSC positive (sim .6) against
    # the two other parts (sims 0 and -.8, or .8 and 0); no DPDC, so the
    # DPSC pairing gives log(1 + 0) = 0.
    a = math.log1p(math.exp(-0.6 / t) + math.exp(-1.4 / t))
    b = math.log1p(math.exp(-0.6 / t) + math.exp(0.2 / t))
    loss = loss_fn(embeds, torch.tensor([3, 3]))
    assert loss.item() == pytest.approx((2 * a + 2 * b) / 4, abs=1e-5)


def test_mamc_matches_loop_reference():
    torch.manual_seed(0)
    embeds = torch.randn(6, 3, 5)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    loss_fn = MODELS.build(
        dict(type='PartContrastiveLoss', mode='mamc', loss_weight=0.5)
    )
    loss = loss_fn(embeds, labels)
    assert loss.item() == pytest.approx(
        0.5 * _mamc_reference(embeds, labels), rel=1e-5
    )


def _structured(labels, num_parts, dims, noise, seed=0):
    """Unit part direction plus unit class direction, with noise."""
    g = torch.Generator().manual_seed(seed)
    part_dirs = F.normalize(torch.randn(num_parts, dims, generator=g), dim=1)
    cls_dirs = F.normalize(
        torch.randn(int(labels.max()) + 1, dims, generator=g), dim=1
    )
    embeds = part_dirs[None] + cls_dirs[labels][:, None]
    return embeds + noise * torch.randn(embeds.shape, generator=g)


def test_mamc_minimum_is_class_structured_not_the_collapse():
    # 4 classes x 2 images, P = 2, D = 128: the batch of the issue that
    # found the raw-cosine loss minimised by the class-agnostic collapse.
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss'))
    labels = torch.arange(4).repeat_interleave(2)
    u = F.normalize(
        torch.randn(128, generator=torch.Generator().manual_seed(1)), dim=0
    )
    collapse = torch.stack([u, -u])[None].expand(8, 2, 128)
    structured = _structured(labels, 2, 128, noise=0.02)
    assert loss_fn(structured, labels) < 0.2 * loss_fn(collapse, labels)
    # Without the temperature (raw cosines) the collapse wins: the
    # failure this guards against.
    raw = MODELS.build(dict(type='PartContrastiveLoss', temperature=1.0))
    assert raw(collapse, labels) < raw(structured, labels)


def test_mamc_minimised_from_random_separates_classes():
    # The loss alone, minimised from random unit vectors, ends with the
    # same part of the same class closer (cosine) than the same part of
    # other classes by at least 0.5 (0.74 measured), and with no
    # collapse of a part onto one point.
    torch.manual_seed(0)
    labels = torch.arange(4).repeat_interleave(2)
    x = F.normalize(torch.randn(8, 2, 128), dim=-1).requires_grad_()
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss'))
    opt = torch.optim.Adam([x], lr=0.05)
    first = None
    for _ in range(300):
        loss = loss_fn(x, labels)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    z = F.normalize(x.detach(), dim=-1)
    same_cls = labels[:, None] == labels[None]
    other_img = ~torch.eye(8, dtype=torch.bool)
    for p in range(2):
        sim = z[:, p] @ z[:, p].t()
        spsc = sim[same_cls & other_img].mean()
        spdc = sim[~same_cls].mean()
        assert spsc - spdc > 0.5
        assert spdc < 0.6


def test_c3s_hand_computed_and_reference():
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss', mode='c3s'))
    # S_00 = S_11 = .6, S_01 = (cos(x00, x11) + cos(x10, x01)) / 2
    # = (-.8 + .8) / 2 = 0, so L = 2 * (1 - .6) + 0.
    assert loss_fn(_toy_embeds()).item() == pytest.approx(0.8, abs=1e-6)
    # B = 1 uses the image itself: S_ii = 1, S_01 = 0
    assert loss_fn(_toy_embeds()[:1]).item() == pytest.approx(0, abs=1e-6)
    torch.manual_seed(0)
    embeds = torch.randn(5, 3, 4)
    assert loss_fn(embeds).item() == pytest.approx(
        _c3s_reference(embeds), rel=1e-5
    )


@pytest.mark.parametrize('mode', ['mamc', 'c3s'])
def test_contrastive_prefers_clustered_parts(mode):
    torch.manual_seed(0)
    num_cls, per_cls, num_parts, dims = 4, 2, 2, 16
    centres = torch.randn(num_cls, num_parts, dims)
    labels = torch.arange(num_cls).repeat_interleave(per_cls)
    clustered = centres[labels] + 0.05 * torch.randn(
        len(labels), num_parts, dims
    )
    perm = torch.randperm(clustered.numel() // dims)
    shuffled = clustered.reshape(-1, dims)[perm].reshape(clustered.shape)
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss', mode=mode))
    assert loss_fn(clustered, labels) < loss_fn(shuffled, labels)


@pytest.mark.parametrize('mode', ['mamc', 'c3s'])
@pytest.mark.parametrize(
    'case', ['unique_labels', 'single_image', 'zeros', 'all_equal']
)
def test_contrastive_is_finite_in_degenerate_batches(mode, case):
    torch.manual_seed(0)
    if case == 'unique_labels':
        embeds, labels = torch.randn(4, 2, 8), torch.arange(4)
    elif case == 'single_image':
        embeds, labels = torch.randn(1, 2, 8), torch.tensor([0])
    elif case == 'zeros':
        embeds, labels = torch.zeros(4, 2, 8), torch.tensor([0, 0, 1, 1])
    else:
        embeds = torch.ones(4, 2, 8)
        labels = torch.tensor([0, 0, 1, 1])
    embeds.requires_grad_()
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss', mode=mode))
    _assert_finite_grad(embeds, loss_fn(embeds, labels))


def test_contrastive_without_any_positive_is_zero():
    # one image, one part: no other embedding at all
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss'))
    embeds = torch.randn(1, 1, 4, requires_grad=True)
    loss = loss_fn(embeds, torch.tensor([0]))
    assert loss.item() == 0
    _assert_finite_grad(embeds, loss)


def test_contrastive_half_precision_input():
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss'))
    embeds = torch.randn(4, 2, 8).half()
    loss = loss_fn(embeds, torch.tensor([0, 0, 1, 1]))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # autocast must not push the similarities to low precision
    embeds, labels = torch.randn(6, 3, 16), torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        amp_loss = loss_fn(embeds, labels)
    assert amp_loss.dtype == torch.float32
    torch.testing.assert_close(amp_loss, loss_fn(embeds, labels))


def test_contrastive_validation():
    with pytest.raises(ValueError, match="'mamc', 'c3s'"):
        MODELS.build(dict(type='PartContrastiveLoss', mode='triplet'))
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss'))
    with pytest.raises(ValueError, match='labels'):
        loss_fn(torch.randn(2, 2, 4))
    with pytest.raises(ValueError, match='3 labels for 2 images'):
        loss_fn(torch.randn(2, 2, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match='temperature=0.0: must be positive'):
        MODELS.build(dict(type='PartContrastiveLoss', temperature=0.0))


# ---------------------------------------------------------------- SCRIMHead


def _head_inputs(batch=4, num_fpl_parts=3):
    torch.manual_seed(0)
    out = _neck()(_maps(batch=batch))
    fpl = torch.randn(batch, num_fpl_parts, 64)
    return out, fpl


def test_head_pre_logits_and_forward_shapes():
    head = _head()
    out, fpl = _head_inputs()
    fused = head.pre_logits(out, fpl)
    assert fused.shape == (4, 512 + 2 * (256 + 512) + 3 * 64)
    torch.testing.assert_close(fused[:, :512], out.feats[-1].mean((2, 3)))
    torch.testing.assert_close(fused[:, 512:1024], out.part_vecs[0].flatten(1))
    torch.testing.assert_close(fused[:, -3 * 64 :], fpl.flatten(1))
    assert head(out, fpl).shape == (4, 4)
    logits = head.forward_all(out, fpl)
    assert set(logits) == {'fused', 'raw', 'cpl_s3', 'cpl_s4'}
    torch.testing.assert_close(logits['fused'], head(out, fpl))


def test_head_loss_keys():
    head = _head(cal_acc=True)
    out, fpl = _head_inputs()
    losses = head.loss(out, _samples([0, 1, 0, 1]), fpl)
    assert set(losses) == {
        'loss_fused',
        'loss_raw',
        'loss_cpl_s3',
        'loss_cpl_s4',
        'loss_contrast_s3',
        'loss_contrast_s4',
        'loss_diversity_s3',
        'loss_diversity_s4',
        'accuracy_top-1',
    }
    for key, value in losses.items():
        assert torch.isfinite(value).all(), key
    # disabled terms disappear
    head = _head(
        raw_loss=None,
        cpl_loss=None,
        contrastive_loss=None,
        diversity_loss=None,
    )
    losses = head.loss(out, _samples([0, 1, 0, 1]), fpl)
    assert set(losses) == {'loss_fused'}
    assert set(head.forward_all(out, fpl)) == {'fused'}


def test_head_contrastive_weights_per_stage():
    head = _head(contrastive_weights=(0.25, 0.5))
    out, fpl = _head_inputs()
    labels = torch.tensor([0, 1, 0, 1])
    losses = head.loss(out, _samples(labels), fpl)
    loss_fn = MODELS.build(dict(type='PartContrastiveLoss'))
    for s, w in zip(('s3', 's4'), (0.25, 0.5)):
        expect = w * loss_fn(out.part_embeds[('s3', 's4').index(s)], labels)
        torch.testing.assert_close(losses[f'loss_contrast_{s}'], expect)


def test_head_diversity_weights_per_stage():
    out, fpl = _head_inputs()
    samples = _samples([0, 1, 0, 1])
    ones = _head(diversity_weights=(1.0, 1.0)).loss(out, samples, fpl)
    default = _head().loss(out, samples, fpl)
    weighted = _head(diversity_weights=(0.5, 2.0)).loss(out, samples, fpl)
    loss_fn = MODELS.build(dict(type='PartDiversityLoss'))
    for i, s in enumerate(('s3', 's4')):
        maps = part_attention_maps(out.feats[i], out.excitations[i])
        expect = loss_fn(maps)
        assert expect.item() > 0.01
        torch.testing.assert_close(ones[f'loss_diversity_{s}'], expect)
        # None: 0.2 on the last stage, 1.5 x 0.2 = 0.3 on the one before
        torch.testing.assert_close(
            default[f'loss_diversity_{s}'], (0.3, 0.2)[i] * expect
        )
        torch.testing.assert_close(
            weighted[f'loss_diversity_{s}'], (0.5, 2.0)[i] * expect
        )
    with pytest.raises(ValueError, match=r'^diversity_weights=\(1.0,\): 1'):
        _head(diversity_weights=(1.0,))


def test_head_default_diversity_weights_grow_on_earlier_stages():
    """None: 0.2 on the last stage, 1.5 times more on each earlier one."""
    assert _head().diversity_weights == pytest.approx((0.3, 0.2))
    three = _head(part_channels=(128, 256, 512))
    assert three.diversity_weights == pytest.approx((0.45, 0.3, 0.2))
    # given weights are kept as they are
    assert _head(diversity_weights=(1.0, 0.5)).diversity_weights == (1.0, 0.5)


def test_head_loss_with_gt_score():
    head = _head()
    out, fpl = _head_inputs()
    labels = torch.tensor([0, 1, 2, 1])
    hard = head.loss(out, _samples(labels), fpl)
    # one-hot scores give the same losses as indices
    onehot = [
        DataSample().set_gt_score(F.one_hot(label, 4).float())
        for label in labels
    ]
    soft = head.loss(out, onehot, fpl)
    for key in hard:
        torch.testing.assert_close(soft[key], hard[key])
    # mixup scores: CE uses the soft targets, the contrastive loss argmax
    lam = 0.7
    perm = torch.tensor([1, 0, 3, 2])
    scores = lam * F.one_hot(labels, 4) + (1 - lam) * F.one_hot(
        labels[perm], 4
    )
    mixed = [
        DataSample().set_gt_label(int(label)).set_gt_score(score)
        for label, score in zip(labels, scores)
    ]
    losses = head.loss(out, mixed, fpl)
    logits = head.forward_all(out, fpl)
    expect = -(scores * logits['fused'].log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(losses['loss_fused'], expect)
    assert not torch.allclose(losses['loss_fused'], hard['loss_fused'])
    torch.testing.assert_close(
        losses['loss_contrast_s4'], hard['loss_contrast_s4']
    )
    with pytest.raises(ValueError, match='cal_acc'):
        _head(cal_acc=True).loss(out, mixed, fpl)


def test_head_predict():
    head = _head()
    head.eval()
    out, fpl = _head_inputs()
    samples = _samples([0, 1, 2, 3])
    preds = head.predict(out, samples, fpl)
    assert len(preds) == 4 and preds[0] is samples[0]
    for pred in preds:
        assert pred.pred_score.shape == (4,)
        assert pred.pred_label.shape == (1,)
        assert pred.pred_score.sum().item() == pytest.approx(1, abs=1e-5)
    expect = head(out, fpl).softmax(1)
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), expect
    )
    # batch size 1 and no data samples
    out1, fpl1 = _head_inputs(batch=1)
    preds = head.predict(out1, fpl_feats=fpl1)
    assert len(preds) == 1 and isinstance(preds[0], DataSample)
    assert preds[0].pred_score.shape == (4,)
    # pred_mode='sum' adds raw and CPL logits to the fused ones
    head_sum = _head(pred_mode='sum')
    head_sum.load_state_dict(head.state_dict())
    summed = torch.stack(
        [p.pred_score for p in head_sum.predict(out, fpl_feats=fpl)]
    )
    logits = head.forward_all(out, fpl)
    torch.testing.assert_close(summed, sum(logits.values()).softmax(1))
    assert not torch.allclose(summed, expect)


def test_head_validates_its_settings():
    out, fpl = _head_inputs()
    # in_channels is the last CPL stage's: None takes it, another is wrong.
    assert _head(in_channels=None).in_channels == 512
    with pytest.raises(ValueError, match=r'^in_channels=1024: .*part_chan'):
        _head(in_channels=1024)
    with pytest.raises(ValueError, match="^pred_mode='max': unknown"):
        _head(pred_mode='max')
    with pytest.raises(ValueError, match=r'^num_classes=0: must be posit'):
        _head(num_classes=0)
    with pytest.raises(ValueError, match=r'^contrastive_weights=\(1.0,\): 1'):
        _head(contrastive_weights=(1.0,))
    for key in ('num_classes', 'part_channels'):
        cfg = dict(type='SCRIMHead', num_classes=4, part_channels=(256, 512))
        del cfg[key]
        with pytest.raises(TypeError, match=f"required .*'{key}'"):
            MODELS.build(cfg)
    with pytest.raises(ValueError, match=r'^fpl_channels=None: num_fpl_pa'):
        _head(fpl_channels=None)
    # CPL-only by default, with Cross-X's contrastive weights.
    head = MODELS.build(
        dict(type='SCRIMHead', num_classes=4, part_channels=(256, 512))
    )
    assert (head.num_fpl_parts, head.in_channels) == (0, 512)
    assert head.contrastive_weights == (0.25, 0.5)
    assert head.stage_names == ('s3', 's4')
    assert head(out).shape == (4, 4)


def test_head_checks_the_cpl_output():
    """A neck that does not match part_channels / num_parts is named."""
    head = _head(num_fpl_parts=0)
    out = _neck(num_parts=3)(_maps(batch=4))
    with pytest.raises(ValueError) as err:
        head(out)
    msg = str(err.value)
    assert msg.startswith('model.head.part_channels=(256, 512), num_parts=2: ')
    assert '((3, 256), (3, 512))' in msg


# ------------------------------------------- CPL-only ImageClassifier


def _cpl_only_classifier():
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
            neck=dict(type='CPLNeck', in_channels=(256, 512)),
            # What a plain ImageClassifier needs: the channels, once each.
            head=dict(
                type='SCRIMHead', num_classes=4, part_channels=(256, 512)
            ),
        )
    )


def test_cpl_only_image_classifier_modes():
    torch.manual_seed(0)
    model = _cpl_only_classifier()
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    assert model(x, mode='tensor').shape == (2, 4)
    preds = model(x, _samples([0, 1]), mode='predict')
    assert len(preds) == 2 and preds[0].pred_score.shape == (4,)
    pre = model.extract_feat(x, stage='pre_logits')
    assert pre.shape == (2, 512 + 2 * (256 + 512))


def test_cpl_only_image_classifier_trains():
    torch.manual_seed(0)
    model = _cpl_only_classifier()
    model.init_weights()
    model.train()
    inputs = torch.randn(8, 3, 64, 64)
    samples = _samples([0, 1] * 4)
    optim = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    totals = []
    for step in range(30):
        losses = model(inputs, samples, mode='loss')
        total = sum(losses.values())
        assert torch.isfinite(total)
        optim.zero_grad()
        total.backward()
        if step == 0:
            first = losses
            grads = {
                'backbone': model.backbone.conv1.weight.grad,
                'osme_s3': model.neck.osmes[0].squeeze_weight.grad,
                'osme_s4': model.neck.osmes[1].excite_weight.grad,
            }
            for name, grad in grads.items():
                assert grad is not None, name
                assert grad.abs().sum() > 0, name
        optim.step()
        # the diversity terms are bounded in [0, 1]; watch the others
        totals.append(
            sum(v.item() for k, v in losses.items() if 'diversity' not in k)
        )
    assert totals[-1] <= 0.5 * totals[0], totals
    for name in ('s3', 's4'):
        key = f'loss_diversity_{name}'
        assert losses[key] <= first[key] + 0.05, key
    # the classification terms are learnt, not only the metric ones
    assert losses['loss_fused'] < 0.1 * first['loss_fused']
    assert losses['loss_contrast_s4'] < first['loss_contrast_s4']


def test_metric_loss_trains_osme_and_diversity_reaches_the_backbone():
    """The metric loss trains OSME and the embedding, not the stage maps;
    the diversity term on the part maps and the part classifiers' inputs
    train both."""
    torch.manual_seed(0)
    neck = _neck()
    maps = tuple(m.requires_grad_() for m in _maps(batch=3))
    out = neck(maps)
    for s in range(2):
        # the embeddings hold the values of the main path
        torch.testing.assert_close(
            out.part_embeds[s], neck.projs[s](out.part_vecs[s])
        )
    metric_loss = sum(e.square().sum() for e in out.part_embeds)
    diversity_loss = sum(
        part_attention_maps(f, m).square().sum()
        for f, m in zip(out.feats, out.excitations)
    )
    for loss, through in ((metric_loss, False), (diversity_loss, True)):
        grads = torch.autograd.grad(
            loss,
            list(maps) + [neck.osmes[0].excite_weight],
            allow_unused=True,
            retain_graph=True,
        )
        assert grads[2] is not None and grads[2].abs().sum() > 0
        for g in grads[:2]:
            if through:
                assert g is not None and g.abs().sum() > 0
            else:
                assert g is None or g.abs().sum() == 0
    g = torch.autograd.grad(sum(v.sum() for v in out.part_vecs), maps)
    assert all(x.abs().sum() > 0 for x in g)


def test_part_embeddings_without_grad_match_the_main_path():
    neck = _neck()
    with torch.no_grad():
        out = neck(_maps())
    for s in range(2):
        torch.testing.assert_close(
            out.part_embeds[s], neck.projs[s](out.part_vecs[s])
        )
