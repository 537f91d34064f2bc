# PLACEHOLDER: replaced by the real module.


class SCRIMClassBalancedSampler:
    pass
