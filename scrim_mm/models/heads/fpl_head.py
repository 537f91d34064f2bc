# PLACEHOLDER: replaced by the real module.


class FPLHead:
    pass
