# Full SCRIM mixed into mmpretrain's ConvNeXt-T ImageNet-1k recipe
# (convnext-tiny_32xb128_in1k: 224 px, 32 GPUs x 128 images = 4096, AdamW,
# Mixup / CutMix, EMA). ConvNeXt pools inside the backbone unless
# gap_before_final_norm=False, which keeps stages 3 and 4 (384 / 768
# channels) as maps; the recipe has no neck to replace. An example of the
# mixing on any mmpretrain config: SCRIM is meant for fine-grained data.
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']
custom_imports = dict(imports=['scrim_mm'], allow_failed_imports=False)

# fmt: off
model = dict(type='SCRIMClassifier', head=dict(type='SCRIMHead'),
             backbone=dict(out_indices=(2, 3), gap_before_final_norm=False))
# fmt: on
