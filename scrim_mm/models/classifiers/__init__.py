# Copyright (c) scrim-mm contributors. All rights reserved.
from .scrim_classifier import SCRIMClassifier

__all__ = ['SCRIMClassifier']
