# Copyright (c) scrim-mm contributors. All rights reserved.
"""Every SCRIM loss and gradient stays finite on degenerate batches.

A ResNet-18 SCRIM (the demo model) at 64 px, in training mode: batch size
1, a batch of a single class, all-equal scores (navigator and classifier
weights zeroed, so every anchor and every class scores the same), all-zero
images, soft (Mixup) labels of a single class, and bf16 autocast.
"""

import copy

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

LOSS_KEYS = {
    f'loss_{name}'
    for name in (
        'fused',
        'raw',
        'cpl_s3',
        'cpl_s4',
        'contrast_s3',
        'contrast_s4',
        'diversity_s3',
        'diversity_s4',
        'teacher_s3',
        'teacher_s4',
        'rank_s3',
        'rank_s4',
    )
}
SIZE = 64


@pytest.fixture(scope='module')
def model(demo_config):
    cfg = Config.fromfile(demo_config).model
    cfg.fpl_head.crop_size = 32
    torch.manual_seed(0)
    net = MODELS.build(cfg)
    net.init_weights()
    return net.train()


def samples(labels) -> list:
    return [DataSample().set_gt_label(int(i)) for i in labels]


def check_finite(model, inputs, data_samples, autocast=False):
    """Run the loss and backward; return the losses after the checks."""
    model.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        losses = model.loss(inputs, data_samples)
    assert set(losses) == LOSS_KEYS
    for key, value in losses.items():
        assert value.dim() == 0, key
        assert torch.isfinite(value), f'{key} = {value.item()}'
    sum(losses.values()).backward()
    with_grad = 0
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        with_grad += 1
        assert torch.isfinite(param.grad).all(), f'grad of {name}'
    # The backbone, neck, heads and navigators all get gradients.
    assert with_grad > 0.9 * len(list(model.parameters()))
    return losses


def test_batch_of_one(model):
    torch.manual_seed(1)
    losses = check_finite(model, torch.randn(1, 3, SIZE, SIZE), samples([2]))
    # No other image of the class: the contrastive loss has no positive.
    assert losses['loss_contrast_s3'] == 0


def test_batch_of_one_class(model):
    torch.manual_seed(2)
    check_finite(model, torch.randn(4, 3, SIZE, SIZE), samples([3] * 4))


def test_all_zero_images(model):
    losses = check_finite(
        model, torch.zeros(4, 3, SIZE, SIZE), samples([0, 0, 1, 1])
    )
    # Identical images give identical crops: the teacher losses tie and
    # the ranking loss has no ordered pair.
    assert losses['loss_rank_s3'] == 0
    check_finite(model, torch.zeros(1, 3, SIZE, SIZE), samples([1]))


def test_all_equal_scores(model):
    flat = copy.deepcopy(model)
    with torch.no_grad():
        for module in (
            list(flat.fpl_head.navigators.modules())
            + [flat.fpl_head.teacher_fcs[0]]
            + list(flat.head.modules())
        ):
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
    torch.manual_seed(3)
    inputs = torch.randn(4, 3, SIZE, SIZE)
    _, scores = flat.fpl_head.select(
        flat.neck(flat.backbone(inputs)).enhanced, (SIZE, SIZE)
    )
    assert (scores == scores.flatten()[0]).all()  # really all equal
    losses = check_finite(flat, inputs, samples([0, 1, 2, 3]))
    num_classes = flat.head.num_classes
    # Uniform logits: the cross-entropy is log(C).
    expected = torch.log(torch.tensor(float(num_classes)))
    assert torch.isclose(losses['loss_fused'], expected, atol=1e-5)


def test_soft_labels_of_one_class(model):
    torch.manual_seed(4)
    data_samples = [
        DataSample().set_gt_score(torch.tensor([0.0, 0.0, 1.0, 0.0]))
        for _ in range(2)
    ]
    check_finite(model, torch.randn(2, 3, SIZE, SIZE), data_samples)


def test_bf16_autocast_zero_images_batch_of_one(model):
    check_finite(
        model, torch.zeros(1, 3, SIZE, SIZE), samples([0]), autocast=True
    )


def test_bf16_autocast_navigator_gradients_stay_sane(model):
    # oneDNN's bf16 weight gradient of a 3x3 stride-2 convolution on a 1x1
    # map (here the last conv of the stage-4 navigator at 64 px) returns
    # garbage (up to inf) on AVX-512 CPUs with torch 2.14; the FPL head
    # runs its navigators in fp32 under CPU autocast.
    nav_convs = model.fpl_head.navigators[1].convs
    dtypes = []
    hook = nav_convs[2].register_forward_hook(
        lambda module, args, out: dtypes.append((args[0].shape, out.dtype))
    )
    try:
        for seed in range(3):
            torch.manual_seed(seed)
            check_finite(
                model,
                torch.randn(4, 3, SIZE, SIZE),
                samples([0, 0, 1, 1]),
                autocast=True,
            )
            for name, param in model.named_parameters():
                if param.grad is not None:
                    assert param.grad.abs().max() < 1e4, name
    finally:
        hook.remove()
    assert {tuple(shape[-2:]) for shape, _ in dtypes} == {(1, 1)}
    assert {dtype for _, dtype in dtypes} == {torch.float32}
