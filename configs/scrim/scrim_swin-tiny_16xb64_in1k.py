# Full SCRIM mixed into mmpretrain's Swin-T ImageNet-1k recipe
# (swin-tiny_16xb64_in1k: 224 px, 16 GPUs x 64 images = 1024, AdamW,
# Mixup / CutMix). Swin-T's stages 3 and 4 (384 / 768 channels) feed the
# CPL neck and the FPL navigators. An example of the mixing on any
# mmpretrain config: SCRIM is meant for fine-grained data. The runtime base
# (configs/_base_/scrim_runtime.py) replaces the recipe's global gradient
# clipping (max_norm 5) by the same clipping per branch and adds the
# class-balanced batch sampler. The sampler fits ImageNet-1k too: a per-GPU
# batch of 64 is 32 classes x 2 images, far fewer than the 1000 classes,
# whereas uniform sampling gives a batch of 64 about 2 same-class pairs, so
# almost no anchor of the part-contrastive loss would have a positive.
# Mixup / CutMix pair an image with a random one of its batch, of its own
# class only about once in 63.
_base_ = [
    'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
    '../_base_/scrim_runtime.py',
]
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', backbone=dict(out_indices=(2, 3)),
             neck=dict(type='CPLNeck'), head=dict(type='SCRIMHead'))
# fmt: on
train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper
