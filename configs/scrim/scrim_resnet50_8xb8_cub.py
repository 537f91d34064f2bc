# Full SCRIM mixed into mmpretrain's ResNet-50 CUB-200-2011 recipe
# (resnet50_8xb8_cub: ImageNet-21k pretrained ResNet-50, 448 px,
# 8 GPUs x 8 images = 64, SGD + cosine, 100 epochs). The model becomes a
# SCRIMClassifier on backbone stages 3 and 4; its neck and heads take their
# channels, strides and fusion sizes from the backbone, and the class count
# (200) from the recipe's head. Data and schedule are the recipe's; for the
# part-contrastive loss and the ranking loss add the class-balanced batch
# sampler and gradient clipping (README, "Using SCRIM inside your own
# mmpretrain config").
_base_ = ['mmpretrain::resnet/resnet50_8xb8_cub.py']
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', backbone=dict(out_indices=(2, 3)),
             neck=dict(type='CPLNeck'), head=dict(type='SCRIMHead'))
# fmt: on
