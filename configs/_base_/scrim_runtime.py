# What SCRIM's losses need from a training run, for configs that mix SCRIM
# into another (mmpretrain) config:
# - the class-balanced P x K batch sampler: the part-contrastive loss needs
#   several images of a class in a batch. Each batch holds K = 2 images of
#   each of P = batch_size // K classes, so any batch size that K divides
#   works; the loader's sampler (mmengine's DefaultSampler) stays as the
#   source of the seed and the epoch.
# - gradient clipping per branch: the navigators' hinge ranking loss can run
#   away early in training, so gradients are clipped, the navigators on
#   their own (SCRIMOptimWrapperConstructor), so that their large ranking
#   gradient never scales down the backbone and classifier updates. It
#   replaces any clipping of the mixed config (_delete_), e.g. a global
#   one. The constructor also sets the navigators' learning rate:
#   paramwise_cfg.navigator_lr_mult, 0.3x the base rate by default.
#
# mmengine refuses a key that two bases both set, and every mmpretrain
# config sets train_dataloader and optim_wrapper, so this base holds the two
# settings under names of their own; a mixing config adds this file to its
# _base_ list and two lines:
#     train_dataloader = dict(batch_sampler=_base_.scrim_batch_sampler)
#     optim_wrapper = _base_.scrim_optim_wrapper
# (docs/mixing.md). The configs import the plugin (custom_imports) themselves.
scrim_batch_sampler = dict(
    type='SCRIMClassBalancedBatchSampler', num_samples_per_class=2
)
scrim_optim_wrapper = dict(
    constructor='SCRIMOptimWrapperConstructor',
    clip_grad=dict(_delete_=True, max_norm=5.0),
)
