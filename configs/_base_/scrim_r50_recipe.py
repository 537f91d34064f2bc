# The ResNet-50 SCRIM recipe that configs/scrim/scrim_r50_{cub,cars,aircraft}
# share: the model (ImageNet-1k pretrained ResNet-50), mmpretrain's CUB
# schedule with SCRIM's additions and the runtime. A dataset recipe adds its
# dataset base (configs/_base_/datasets/scrim_*_448.py) and model.num_classes.
# Assumes 8 GPUs x 8 images = total batch 64 (auto_scale_lr base_batch_size
# 64); each per-GPU batch is P x K = 4 classes x 2 images from the
# class-balanced sampler of the dataset base. With another total batch, add
# --auto-scale-lr to scale the learning rate linearly (any per-GPU batch
# that K = 2 divides: P = batch // K). Schedule: SGD lr 0.01 (new SCRIM
# layers x10, navigators x0.3), momentum 0.9, nesterov, wd 5e-4, 5 warm-up
# epochs + cosine, 100 epochs.
_base_ = [
    './models/scrim_r50.py',
    './schedules/scrim_sgd_100e.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# mmpretrain's ResNet-50 ImageNet-1k weights (resnet50_8xb32_in1k).
pretrained = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone'
        )
    ),
)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'
    ),
)

# Fixed input sizes (448 px images, 224 px part crops): cuDNN picks its
# fastest convolution algorithms once, on the first iterations.
env_cfg = dict(cudnn_benchmark=True)
