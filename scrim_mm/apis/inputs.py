# Copyright (c) scrim-mm contributors. All rights reserved.
import os
import os.path as osp
from typing import List

__all__ = ['IMAGE_EXTENSIONS', 'list_images']

#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def list_images(path: str) -> List[str]:
    """An image file, or every image under a folder (recursively, sorted).

    Args:
        path (str): An image file or a folder.

    Returns:
        list[str]: The image paths.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The folder holds no file with an image extension.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: no such image file or folder.')
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found += [
            osp.join(root, name)
            for name in sorted(files)
            if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        ]
    if not found:
        raise ValueError(
            f'{path} holds no image (looked for files ending in '
            f'{", ".join(IMAGE_EXTENSIONS)}).'
        )
    return found
