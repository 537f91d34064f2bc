# Copyright (c) scrim-mm contributors. All rights reserved.
"""Backbones returning two NCHW stage maps, shared by the model tests.

Each entry is ``(backbone config, (C3, C4) channels, input size)``: stage 3
at stride 16 and stage 4 at stride 32, small inputs for the CPU.
"""

TWO_STAGE_BACKBONES = [
    (dict(type='ResNet', depth=18, out_indices=(2, 3)), (256, 512), 64),
    (dict(type='ResNet', depth=50, out_indices=(2, 3)), (1024, 2048), 64),
    (
        dict(
            type='ConvNeXt',
            arch='tiny',
            out_indices=(2, 3),
            gap_before_final_norm=False,
        ),
        (384, 768),
        64,
    ),
    (
        dict(
            type='SwinTransformer',
            arch='tiny',
            img_size=64,
            out_indices=(2, 3),
            pad_small_map=True,
        ),
        (384, 768),
        64,
    ),
]
BACKBONE_IDS = ['resnet18', 'resnet50', 'convnext-tiny', 'swin-tiny']
