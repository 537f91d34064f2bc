# Full SCRIM mixed into mmpretrain's Swin-L CUB-200-2011 recipe
# (swin-large_8xb8_cub-384px: ImageNet-21k pretrained Swin-L, 384 px,
# 8 GPUs x 8 images = 64, AdamW, gradient clipping, 100 epochs). Swin-L's
# stages 3 and 4 (768 / 1536 channels, strides 16 / 32) feed the CPL neck
# and the FPL navigators; the crops (224 px) are re-encoded by the same
# Swin-L, whose 12x12 windows need pad_small_map=True for the 7x7 stage-4
# map of a crop. The stage-3 output norm is new and starts from its default
# initialisation. The runtime base (configs/_base_/scrim_runtime.py) adds
# the class-balanced batch sampler (4 classes x 2 images per GPU) and
# replaces the recipe's global gradient clipping (max_norm 5) by the same
# clipping per branch, the navigators on their own.
_base_ = [
    'mmpretrain::swin_transformer/swin-large_8xb8_cub-384px.py',
    '../_base_/scrim_runtime.py',
]
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier',
             backbone=dict(out_indices=(2, 3), pad_small_map=True),
             neck=dict(type='CPLNeck'), head=dict(type='SCRIMHead'))
# fmt: on
train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper
