# mmpretrain's Swin-L CUB-200-2011 recipe (swin-large_8xb8_cub-384px:
# ImageNet-21k pretrained Swin-L, 384 px, 8 GPUs x 8 images = 64, AdamW,
# gradient clipping, 100 epochs) with SCRIM's coarse parts (CPL) mixed in:
# only the neck and the head change. Swin-L's stages 3 and 4 give NCHW maps
# of 768 and 1536 channels at strides 16 and 32 (24x24 and 12x12 at 384 px);
# a CPLNeck and a CPL-only SCRIMHead (num_fpl_parts=0, its default) replace
# the global pooling and the linear head. The stage-3 output norm (norm2) is
# new and starts from its default initialisation. The runtime base
# (configs/_base_/scrim_runtime.py) adds the class-balanced batch sampler
# (4 classes x 2 images per GPU, positives for the part-contrastive loss);
# its clipping (max_norm 5) is the recipe's own, one global clip without
# navigators.
_base_ = [
    'mmpretrain::swin_transformer/swin-large_8xb8_cub-384px.py',
    '../_base_/scrim_runtime.py',
]

custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# A plain ImageClassifier gives its neck no way to see the backbone: the
# channels of the two stage maps are written here, once for the neck and
# once for the head; the head takes the rest (global feature channels,
# CPL-only mode) from them.
model = dict(
    backbone=dict(out_indices=(2, 3)),
    neck=dict(_delete_=True, type='CPLNeck', in_channels=(768, 1536)),
    head=dict(
        _delete_=True,
        type='SCRIMHead',
        num_classes=200,
        part_channels=(768, 1536),
    ),
)
train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
optim_wrapper = _base_.scrim_optim_wrapper
