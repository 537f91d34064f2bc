# SCRIM, ResNet-50 (ImageNet-1k pretrained), FGVC-Aircraft at 448 px:
# the shared recipe (configs/_base_/scrim_r50_recipe.py: model, schedule,
# runtime) on the FGVC-Aircraft data set with its class-balanced sampler.
# Assumes 8 GPUs x 8 images = total batch 64; see the recipe for the
# schedule and --auto-scale-lr.
_base_ = [
    '../_base_/scrim_r50_recipe.py',
    '../_base_/datasets/scrim_aircraft_448.py',
]

model = dict(num_classes=100)
