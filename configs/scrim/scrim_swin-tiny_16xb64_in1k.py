# Full SCRIM mixed into mmpretrain's Swin-T ImageNet-1k recipe
# (swin-tiny_16xb64_in1k: 224 px, 16 GPUs x 64 images = 1024, AdamW,
# Mixup / CutMix). Swin-T's stages 3 and 4 (384 / 768 channels) feed the
# CPL neck and the FPL navigators. An example of the mixing on any
# mmpretrain config: SCRIM is meant for fine-grained data.
_base_ = ['mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py']
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', backbone=dict(out_indices=(2, 3)),
             neck=dict(type='CPLNeck'), head=dict(type='SCRIMHead'))
# fmt: on
