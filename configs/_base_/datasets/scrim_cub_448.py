# CUB-200-2011 at 448 px for SCRIM: mmpretrain's own CUB settings (resize to
# 600x600, random crop 448 and horizontal flip for training; resize 600 and
# centre crop 448 for testing; data/CUB_200_2011; 200 classes) with the
# class-balanced batch sampler in the training loader (mmpretrain's
# DefaultSampler stays as its source of seed and epoch). The part-contrastive
# loss needs several images of one class in a batch: each per-GPU batch of 8
# is P x K = 4 classes x 2 images. Another per-GPU batch_size that K = 2
# divides works too: P = batch_size // K.
# Configs that inherit this import the plugin (custom_imports) themselves:
# mmengine refuses a key that two bases both set.
_base_ = ['mmpretrain::_base_/datasets/cub_bs8_448.py']

train_dataloader = dict(
    batch_size=8,
    batch_sampler=dict(
        type='SCRIMClassBalancedBatchSampler',
        num_samples_per_class=2,
    ),
)

# tools/test.py --tta: the test view and its horizontal flip (un-flipped
# first; SCRIMAverageClsScoreTTA takes the regions from it).
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=600),
    dict(type='CenterCrop', crop_size=448),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            ],
            [dict(type='PackInputs')],
        ],
    ),
]
