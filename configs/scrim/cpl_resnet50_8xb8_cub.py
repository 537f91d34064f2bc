# mmpretrain's ResNet-50 CUB-200-2011 recipe (resnet50_8xb8_cub: ImageNet-21k
# pretrained ResNet-50, 448 px, 8 GPUs x 8 images = 64, SGD + cosine, 100
# epochs) with SCRIM's coarse parts (CPL) mixed in: the plain
# ImageClassifier keeps its backbone, data and schedule; only the neck and
# the head change. Backbone stages 3 and 4 (1024 / 2048 channels) feed a
# CPLNeck, and a CPL-only SCRIMHead (num_fpl_parts=0, its default)
# classifies concat(GAP(stage 4), part vectors) with the part classifiers
# and the part-contrastive loss. mmpretrain's DefaultSampler rarely puts
# two images of a class in a batch of 8, so the contrastive term would
# often be zero: the runtime base (configs/_base_/scrim_runtime.py) adds
# the class-balanced batch sampler (4 classes x 2 images per GPU) and
# gradient clipping (max_norm 5; without navigators it is one global clip).
_base_ = [
    'mmpretrain::resnet/resnet50_8xb8_cub.py',
    '../_base_/scrim_runtime.py',
]

custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# A plain ImageClassifier gives its neck no way to see the backbone: the
# channels of the two stage maps are written here, once for the neck and
# once for the head; the head takes the rest (global feature channels,
# CPL-only mode) from them.
model = dict(
    backbone=dict(out_indices=(2, 3)),
    neck=dict(_delete_=True, type='CPLNeck', in_channels=(1024, 2048)),
    head=dict(
        _delete_=True,
        type='SCRIMHead',
        num_classes=200,
        part_channels=(1024, 2048),
    ),
)
train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper
