# Copyright (c) scrim-mm contributors. All rights reserved.
import contextlib
from typing import Iterator, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class SCRIMCPUAmpOptimWrapper(OptimWrapper):
    """Mixed-precision optimizer wrapper for training on the CPU.

    mmengine's ``AmpOptimWrapper`` refuses to run without an accelerator.
    On the CPU, bfloat16 autocast needs no loss scaling (bf16 has float32's
    exponent range), so this wrapper only opens ``torch.autocast('cpu')``
    around the forward pass and otherwise behaves as ``OptimWrapper``.
    ``tools/train.py --amp`` selects it when no GPU is available.

    Args:
        dtype (str | torch.dtype): The autocast dtype. Defaults to
            ``'bfloat16'``.
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(
        self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            if not isinstance(getattr(torch, dtype, None), torch.dtype):
                raise ValueError(
                    f'SCRIMCPUAmpOptimWrapper: dtype={dtype!r} is not a '
                    "torch dtype; expected 'bfloat16' or 'float16'."
                )
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context plus CPU autocast."""
        with (
            super().optim_context(model),
            torch.autocast(device_type='cpu', dtype=self.cast_dtype),
        ):
            yield
