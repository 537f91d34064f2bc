# mmpretrain's ResNet-50 CUB-200-2011 recipe (resnet50_8xb8_cub: ImageNet-21k
# pretrained ResNet-50, 448 px, 8 GPUs x 8 images = 64, SGD + cosine, 100
# epochs) with SCRIM's coarse parts (CPL) mixed in: the plain
# ImageClassifier keeps its backbone, data and schedule; only the neck and
# the head change. Backbone stages 3 and 4 (1024 / 2048 channels) feed a
# CPLNeck, and a CPL-only SCRIMHead (num_fpl_parts=0) classifies
# concat(GAP(stage 4), part vectors) with the part classifiers and the
# part-contrastive loss. mmpretrain's DefaultSampler rarely puts two images
# of a class in a batch of 8, so the contrastive term is often zero; see
# README, "Using SCRIM inside your own mmpretrain config", for the sampler.
_base_ = ['mmpretrain::resnet/resnet50_8xb8_cub.py']

custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(out_indices=(2, 3)),
    neck=dict(
        _delete_=True,
        type='CPLNeck',
        in_channels=(1024, 2048),
        num_parts=2,
        embed_dims=512,
    ),
    head=dict(
        _delete_=True,
        type='SCRIMHead',
        num_classes=200,
        in_channels=2048,
        part_channels=(1024, 2048),
        num_parts=2,
        num_fpl_parts=0,
    ),
)
