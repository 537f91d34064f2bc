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

# The channels, strides and fusion sizes follow from the backbone, the
# anchors and crops from the input size (SCRIMClassifier, FPLHead); every
# method setting is the class default, the one the part benchmark validated
# (docs/method.md lists them).
model = dict(
    type='SCRIMClassifier',
    num_classes=num_classes,
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True,
    ),
    backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
    # At their defaults; written out so that --cfg-options can reach them
    # (e.g. model.fpl_head.num_train_parts=6).
    neck=dict(type='CPLNeck'),
    fpl_head=dict(type='FPLHead'),
    head=dict(type='SCRIMHead'),
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
# tools/test.py --tta: average the class scores of the test view and its
# horizontal flip; the regions come from the un-flipped view (first).
tta_model = dict(type='SCRIMAverageClsScoreTTA')
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            ],
            [dict(type='PackInputs')],
        ],
    ),
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
    sampler=dict(type='DefaultSampler', shuffle=True),
    # 4 classes x 2 images: the part-contrastive loss needs positives.
    batch_sampler=dict(
        type='SCRIMClassBalancedBatchSampler',
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
    # The navigators' hinge ranking loss can run away early in training
    # from scratch; clipping keeps every loss finite (see README). The
    # navigators are clipped on their own, so their ranking gradient never
    # scales down the backbone and classifier updates.
    constructor='SCRIMOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4),
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
