# SCRIM fine-tuning schedule: mmpretrain's CUB schedule (SGD lr 0.01 at a
# total batch of 64, momentum 0.9, nesterov, weight decay 5e-4; 5 epochs of
# linear warm-up, then cosine annealing to epoch 100; validation every epoch;
# auto_scale_lr base_batch_size=64) plus what SCRIM adds:
# - the layers SCRIM adds to an ImageNet-pretrained backbone (CPL neck, FPL
#   navigators and teacher, fusion head) start from random weights and learn
#   at 10x the backbone's rate (lr_mult=10, i.e. 0.1 at batch 64). The
#   backbone keeps the 0.01 that mmpretrain fine-tunes ResNet-50 on CUB with;
#   the multiplier is our default, not a number from the anchor papers.
#   The FPL navigators are the exception: SCRIMOptimWrapperConstructor
#   gives them paramwise_cfg.navigator_lr_mult (default 0.3) x the base
#   rate, through the custom key 'fpl_head.navigators', which wins over
#   'fpl_head' (mmengine applies the longest matching key).
# - gradient clipping, per branch: the navigators' hinge ranking loss can run
#   away early in training, so gradients are clipped; the navigators are
#   clipped on their own (SCRIMOptimWrapperConstructor), so their large
#   ranking gradient never scales down the backbone and classifier updates.
_base_ = ['mmpretrain::_base_/schedules/cub_bs64.py']

optim_wrapper = dict(
    constructor='SCRIMOptimWrapperConstructor',
    paramwise_cfg=dict(
        # A key applies to every parameter whose name contains it ('head'
        # alone would also catch fpl_head.*); both are listed for clarity.
        custom_keys={
            'neck': dict(lr_mult=10.0),
            'fpl_head': dict(lr_mult=10.0),
            'head': dict(lr_mult=10.0),
        }
    ),
    clip_grad=dict(max_norm=5.0),
)
