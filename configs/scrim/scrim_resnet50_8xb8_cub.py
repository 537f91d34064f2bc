# Full SCRIM mixed into mmpretrain's ResNet-50 CUB-200-2011 recipe
# (resnet50_8xb8_cub: ImageNet-21k pretrained ResNet-50, 448 px,
# 8 GPUs x 8 images = 64, SGD + cosine, 100 epochs). The model becomes a
# SCRIMClassifier on backbone stages 3 and 4; its neck and heads take their
# channels, strides and fusion sizes from the backbone, and the class count
# (200) from the recipe's head. Data and schedule are the recipe's, plus
# what SCRIM's losses need (configs/_base_/scrim_runtime.py): the
# class-balanced batch sampler (each per-GPU batch of 8 is 4 classes x 2
# images) for the part-contrastive loss, and gradient clipping per branch
# for the navigators' ranking loss.
_base_ = [
    'mmpretrain::resnet/resnet50_8xb8_cub.py',
    '../_base_/scrim_runtime.py',
]
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', backbone=dict(out_indices=(2, 3)),
             neck=dict(type='CPLNeck'), head=dict(type='SCRIMHead'))
# fmt: on
train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper
