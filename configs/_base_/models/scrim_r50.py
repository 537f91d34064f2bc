# SCRIM on ResNet-50: dual CPL (stages 3 and 4) + dual FPL + fusion.
# Shapes at 448x448: stage 3 (B, 1024, 28, 28), stage 4 (B, 2048, 14, 14).
# The channels, strides and fusion sizes of the neck and the heads follow
# from the backbone (SCRIMClassifier derives them); the method's own
# settings are the class defaults (docs/method.md), the main ones written
# out below at those values. The class count is
# model.num_classes, set by each recipe; the data preprocessor comes from
# the dataset base (mmpretrain keeps it at the top level of a config).
model = dict(
    type='SCRIMClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(2, 3),
        style='pytorch',
    ),
    neck=dict(
        type='CPLNeck', num_parts=2, reduction=16, pool='avg', embed_dims=512
    ),
    # M = 4 regions per stage in training, K = 2 in the fusion; crops of
    # half the input (224 px at 448); anchors fitted to the input.
    fpl_head=dict(type='FPLHead', navigator_channels=128, nms_iou=0.25),
    head=dict(
        type='SCRIMHead',
        contrastive_loss=dict(
            type='PartContrastiveLoss', mode='mamc', loss_weight=1.0
        ),
        # Cross-X's hierarchical weights: 0.25 on stage 3, 0.5 on stage 4.
        contrastive_weights=(0.25, 0.5),
        pred_mode='fused',
    ),
)

# tools/test.py --tta: average the class scores of the views; the regions
# come from the un-flipped view (tta_pipeline: see the dataset configs).
tta_model = dict(type='SCRIMAverageClsScoreTTA')
