# Full SCRIM mixed into mmpretrain's ResNet-18 ImageNet-1k recipe
# (resnet18_8xb32_in1k: 224 px, 8 GPUs x 32 images = 256, SGD, 100 epochs).
# ResNet-18's stages 3 and 4 (256 / 512 channels) feed the CPL neck and the
# FPL navigators. An example of the mixing on any mmpretrain config: SCRIM
# is meant for fine-grained data.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', backbone=dict(out_indices=(2, 3)),
             neck=dict(type='CPLNeck'), head=dict(type='SCRIMHead'))
# fmt: on
