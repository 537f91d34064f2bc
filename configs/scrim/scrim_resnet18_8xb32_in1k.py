# Full SCRIM mixed into mmpretrain's ResNet-18 ImageNet-1k recipe
# (resnet18_8xb32_in1k: 224 px, 8 GPUs x 32 images = 256, SGD, 100 epochs).
# ResNet-18's stages 3 and 4 (256 / 512 channels) feed the CPL neck and the
# FPL navigators. An example of the mixing on any mmpretrain config: SCRIM
# is meant for fine-grained data. The runtime base
# (configs/_base_/scrim_runtime.py) adds gradient clipping per branch
# (max_norm 5; the recipe has none) and the class-balanced batch sampler.
# The sampler fits ImageNet-1k too: a per-GPU batch of 32 is 16 classes x 2
# images, far fewer than the 1000 classes, whereas uniform sampling gives
# a batch of 32 about 0.5 same-class pairs, so almost no anchor of the
# part-contrastive loss would have a positive.
_base_ = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py',
    '../_base_/scrim_runtime.py',
]
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', backbone=dict(out_indices=(2, 3)),
             neck=dict(type='CPLNeck'), head=dict(type='SCRIMHead'))
# fmt: on
train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper
