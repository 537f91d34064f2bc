# Full SCRIM mixed into mmpretrain's ConvNeXt-T ImageNet-1k recipe
# (convnext-tiny_32xb128_in1k: 224 px, 32 GPUs x 128 images = 4096, AdamW,
# Mixup / CutMix, EMA). ConvNeXt pools inside the backbone unless
# gap_before_final_norm=False, which keeps stages 3 and 4 (384 / 768
# channels) as maps; the recipe has no neck to replace. An example of the
# mixing on any mmpretrain config: SCRIM is meant for fine-grained data.
# The runtime base (configs/_base_/scrim_runtime.py) adds gradient clipping
# per branch (max_norm 5; the recipe has none) and the class-balanced batch
# sampler. The sampler fits ImageNet-1k too: a per-GPU batch of 128 is 64
# classes x 2 images, far fewer than the 1000 classes, whereas uniform
# sampling gives a batch of 128 about 8 same-class pairs, so most anchors
# of the part-contrastive loss would have no positive. Mixup / CutMix pair
# an image with a random one of its batch, of its own class only about
# once in 127.
_base_ = [
    'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py',
    '../_base_/scrim_runtime.py',
]
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', head=dict(type='SCRIMHead'),
             backbone=dict(out_indices=(2, 3), gap_before_final_norm=False))
# fmt: on
train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper
