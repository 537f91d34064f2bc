# SCRIM demo: ResNet-18 from scratch on the synthetic CUB-layout demo set
# (tools/misc/make_demo_dataset.py: 4 classes, 60 train / 20 test images per
# class, 96 px) on the CPU in a few minutes. `make demo` runs it. The real
# recipes are configs/scrim/scrim_r50_{cub,cars,aircraft}.py.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

num_classes = 4
img_size = 96
data_root = 'data/demo_cub'
classes = [
    'Black_footed_Albatross',
    'Laysan_Albatross',
    'Sooty_Albatross',
    'Groove_billed_Ani',
]

model = dict(
    type='SCRIMClassifier',
    data_preprocessor=dict(
        num_classes=num_classes,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True,
    ),
    backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
    neck=dict(
        type='CPLNeck',
        in_channels=(256, 512),
        num_parts=2,
        reduction=16,
        embed_dims=128,
        stage_names=('s3', 's4'),
    ),
    fpl_head=dict(
        type='FPLHead',
        num_classes=num_classes,
        in_channels=(256, 512),
        feat_channels=512,
        stage_strides=(16, 32),
        num_train_parts=4,
        num_test_parts=2,
        crop_size=48,
        stage_names=('s3', 's4'),
    ),
    head=dict(
        type='SCRIMHead',
        num_classes=num_classes,
        in_channels=512,
        part_channels=(256, 512),
        num_parts=2,
        fpl_channels=512,
        num_fpl_parts=4,
        stage_names=('s3', 's4'),
    ),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]

# No worker processes: mmpretrain's own tools/train.py defaults
# persistent_workers to True, which PyTorch refuses without workers.
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='CUB',
        data_root=data_root,
        split='train',
        classes=classes,
        pipeline=train_pipeline,
    ),
    # 4 classes x 2 images: the part-contrastive loss needs positives.
    sampler=dict(
        type='SCRIMClassBalancedSampler',
        num_classes_per_batch=4,
        num_samples_per_class=2,
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='CUB',
        data_root=data_root,
        split='test',
        classes=classes,
        pipeline=test_pipeline,
    ),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1,))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4),
    # The navigators' hinge ranking loss can run away early in training
    # from scratch; clipping keeps every loss finite (see README).
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, T_max=15, end=16),
]
train_cfg = dict(by_epoch=True, max_epochs=16, val_interval=4)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=1),
)
randomness = dict(seed=0)

# Fixed input sizes (96 px images, 48 px part crops): cuDNN picks its
# fastest convolution algorithms once, on the first iterations.
env_cfg = dict(cudnn_benchmark=True)
