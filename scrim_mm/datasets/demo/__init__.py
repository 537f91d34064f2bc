# Copyright (c) scrim-mm contributors. All rights reserved.
"""Synthetic fine-grained demo sets in benchmark layouts (numpy + Pillow).

``make_dataset`` writes a data set in the layout of CUB-200-2011, Stanford
Cars or FGVC-Aircraft that mmpretrain's ``CUB``, ``StanfordCars`` and
``FGVCAircraft`` read. Every image shows the same bird-like object on
clutter; the class is told by a small mark on the body:

* ``difficulty='easy'`` (:func:`render_image`): the mark's shape, colour
  and texture depend on the class;
* ``difficulty='hard'`` (:func:`render_hard_image`): every mark has the
  same shape and colour, the class is its texture, and look-alike
  distractor marks with other textures lie on the body and the background.

The output is a function of the settings and the seed.
"""

from .drawing import (
    MAX_CLASSES,
    PART_COLOURS,
    PART_SHAPES,
    PART_TEXTURES,
    part_type,
    render_image,
)
from .generate import (
    DIFFICULTY_DEFAULTS,
    MANIFEST_FILE,
    PARTS_FILE,
    is_complete,
    make_dataset,
    resolve_settings,
)
from .hard import (
    CLASS_TEXTURES,
    DISTRACTOR_TEXTURES,
    MARK_COLOUR,
    MARK_DARK,
    MARK_SIDE,
    MAX_HARD_CLASSES,
    hard_part_type,
    mark_side_range,
    render_hard_image,
    texture_pattern,
    texture_period,
)
from .layouts import (
    CUB_PARTS,
    DIFFICULTIES,
    LAYOUTS,
    class_names,
    max_num_classes,
    plan_images,
    write_annotations,
)

__all__ = [
    'CLASS_TEXTURES',
    'CUB_PARTS',
    'DIFFICULTIES',
    'DIFFICULTY_DEFAULTS',
    'DISTRACTOR_TEXTURES',
    'LAYOUTS',
    'MANIFEST_FILE',
    'MARK_COLOUR',
    'MARK_DARK',
    'MARK_SIDE',
    'MAX_CLASSES',
    'MAX_HARD_CLASSES',
    'PARTS_FILE',
    'PART_COLOURS',
    'PART_SHAPES',
    'PART_TEXTURES',
    'class_names',
    'hard_part_type',
    'is_complete',
    'make_dataset',
    'mark_side_range',
    'max_num_classes',
    'part_type',
    'plan_images',
    'render_hard_image',
    'render_image',
    'resolve_settings',
    'texture_pattern',
    'texture_period',
    'write_annotations',
]
