# Copyright (c) scrim-mm contributors. All rights reserved.
