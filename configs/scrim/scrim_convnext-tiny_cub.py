# The full SCRIMClassifier (dual CPL + dual FPL + fusion) on mmpretrain's
# ConvNeXt-T (ImageNet-1k pretrained, convnext-tiny_32xb128_in1k), mixed into
# mmpretrain's CUB-200-2011 recipe resnet50_8xb8_cub: its data (448 px), its
# schedule (SGD lr 0.01, momentum 0.9, nesterov, wd 5e-4, warm-up + cosine,
# 100 epochs) and its runtime are kept. Assumes 8 GPUs x 8 images = 64, each
# per-GPU batch P x K = 4 classes x 2 images. The schedule is the ResNet-50
# one, untuned for ConvNeXt.
# ConvNeXt-T stages 3 and 4: 384 / 768 channels at strides 16 / 32 (28x28
# and 14x14 at 448 px); gap_before_final_norm=False keeps them as maps.
# Besides the model, the runtime base (configs/_base_/scrim_runtime.py)
# adds what full SCRIM's losses need: the class-balanced batch sampler
# (positives for the part-contrastive loss) and gradient clipping per
# branch (the navigators' ranking loss).
_base_ = [
    'mmpretrain::resnet/resnet50_8xb8_cub.py',
    '../_base_/scrim_runtime.py',
]

custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# mmpretrain's ConvNeXt-T ImageNet-1k weights (convnext-tiny_32xb128_in1k).
pretrained = 'https://download.openmmlab.com/mmclassification/v0/convnext/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth'  # noqa: E501

# The neck and heads take their channels (384 / 768), strides and fusion
# sizes from the backbone, at the ResNet-50 method defaults otherwise.
model = dict(
    _delete_=True,
    type='SCRIMClassifier',
    num_classes=200,
    backbone=dict(
        type='ConvNeXt',
        arch='tiny',
        out_indices=(2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone'
        ),
    ),
)

train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper

# tools/test.py --tta: average the class scores of the test view and its
# horizontal flip; the regions come from the un-flipped view.
tta_model = dict(type='SCRIMAverageClsScoreTTA')
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=600),
    dict(type='CenterCrop', crop_size=448),
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

# Fixed input sizes (448 px images, 224 px part crops): cuDNN picks its
# fastest convolution algorithms once, on the first iterations.
env_cfg = dict(cudnn_benchmark=True)
