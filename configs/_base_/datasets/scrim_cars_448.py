# Stanford Cars at 448 px for SCRIM: the pipelines and the class-balanced
# sampler of scrim_cub_448.py (resize to 600x600, random crop 448, flip;
# resize 600, centre crop 448; per-GPU batch 8 = P x K = 4 x 2) on
# mmpretrain's `StanfordCars` (196 classes, 8144 train / 8041 test) in
# data/stanfordcars. Either official layout works: car_ims/ + cars_annos.mat,
# or cars_train/ + cars_test/ + devkit/ (see README, "Datasets").
_base_ = ['./scrim_cub_448.py']

dataset_type = 'StanfordCars'
data_root = 'data/stanfordcars'

data_preprocessor = dict(num_classes=196)

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='train')
)
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test')
)
test_dataloader = val_dataloader
