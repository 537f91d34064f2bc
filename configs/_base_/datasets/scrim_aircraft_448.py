# FGVC-Aircraft at 448 px for SCRIM: the pipelines and the class-balanced
# sampler of scrim_cub_448.py (resize to 600x600, random crop 448, flip;
# resize 600, centre crop 448; per-GPU batch 8 = P x K = 4 x 2) on
# mmpretrain's `FGVCAircraft` (100 variants; trainval 6667 / test 3333) in
# data/fgvc-aircraft-2013b.
_base_ = ['./scrim_cub_448.py']

dataset_type = 'FGVCAircraft'
data_root = 'data/fgvc-aircraft-2013b'

data_preprocessor = dict(num_classes=100)

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval')
)
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test')
)
test_dataloader = val_dataloader
