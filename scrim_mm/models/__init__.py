# Copyright (c) scrim-mm contributors. All rights reserved.
from .classifiers import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .tta import *  # noqa: F401,F403
