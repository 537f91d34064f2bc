# Copyright (c) scrim-mm contributors. All rights reserved.
"""An image loader whose errors name the file and say what is wrong."""

from typing import Optional

import mmcv
import mmengine.fileio as fileio
from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS

__all__ = ['SCRIMLoadImageFromFile', 'truncation_reason']

_JPEG = b'\xff\xd8\xff'
_PNG = b'\x89PNG\r\n\x1a\n'


def _jpeg_complete(data: bytes) -> Optional[bool]:
    """Walk the JPEG markers up to the end-of-image marker.

    Returns:
        bool | None: True if ``FF D9`` (end of image) is reached, False if
        the data ends first, None if the marker structure is not JPEG's
        (left to the decoder).
    """
    size, pos = len(data), 2
    while True:
        if pos >= size:
            return False
        if data[pos] != 0xFF:
            return None
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            return False
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # markers without a length field
        if pos + 2 > size:
            return False
        pos += (data[pos] << 8) | data[pos + 1]
        if marker != 0xDA:
            continue
        # Entropy-coded data of a scan: up to the next marker. In it, FF
        # is followed by 00 (a stuffed FF) or by a restart marker D0-D7.
        while True:
            pos = data.find(b'\xff', pos)
            if pos < 0 or pos + 1 >= size:
                return False
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
            elif following == 0xFF:
                pos += 1
            else:
                break


def _png_complete(data: bytes) -> bool:
    """Walk the PNG chunks up to ``IEND``."""
    size, pos = len(data), len(_PNG)
    while pos + 8 <= size:
        length = int.from_bytes(data[pos : pos + 4], 'big')
        if data[pos + 4 : pos + 8] == b'IEND':
            return True
        pos += 12 + length  # length, type, data, CRC
    return False


def truncation_reason(data: bytes) -> Optional[str]:
    """Tell whether JPEG or PNG bytes are cut short.

    Some decoders (OpenCV before 5, Pillow with ``LOAD_TRUNCATED_IMAGES``)
    return a partly grey image for a truncated file instead of failing.
    This walks the file structure instead: the markers of a JPEG up to its
    end-of-image marker (``FF D9``), the chunks of a PNG up to ``IEND``.
    Data after the end (e.g. an appended video) is ignored. Other formats
    are left to the decoder.

    Args:
        data (bytes): The file content.

    Returns:
        str | None: Why the file is truncated, or None if it looks complete
        (or is not a JPEG or PNG).
    """
    if data.startswith(_JPEG):
        if _jpeg_complete(data) is False:
            return (
                f'truncated JPEG ({len(data)} bytes, the data ends before '
                'the end-of-image marker)'
            )
    elif data.startswith(_PNG):
        if not _png_complete(data):
            return (
                f'truncated PNG ({len(data)} bytes, the data ends before '
                'the IEND chunk)'
            )
    return None


@TRANSFORMS.register_module()
class SCRIMLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with errors that name the file.

    mmcv's loader reports an unreadable image as a bare ``AssertionError``
    ("failed to load image: <path>", gone under ``python -O``), an empty
    file as an OpenCV assertion without the path, and, depending on the
    OpenCV build, may decode a truncated JPEG into a partly grey image
    without any error. This loader raises instead:

    * ``FileNotFoundError`` naming the path for a missing file;
    * ``OSError`` naming the path and the reason for an empty, truncated
      (see :func:`truncation_reason`) or undecodable file.

    With ``ignore_empty=True`` such files give None, as in mmcv (the dataset
    then draws another sample). The arguments are mmcv's, plus
    ``check_truncated``.

    Args:
        check_truncated (bool): Refuse JPEG / PNG files without their end
            marker. Defaults to True.
        **kwargs: Arguments of mmcv's ``LoadImageFromFile`` (``to_float32``,
            ``color_type``, ``imdecode_backend``, ``ignore_empty``,
            ``backend_args``, ...).
    """

    def __init__(self, check_truncated: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check_truncated = check_truncated

    def _read(self, filename: str) -> bytes:
        if self.file_client_args is not None:
            client = fileio.FileClient.infer_client(
                self.file_client_args, filename
            )
            return client.get(filename)
        return fileio.get(filename, backend_args=self.backend_args)

    def _fail(
        self, filename: str, reason: str, error: Optional[Exception] = None
    ) -> None:
        if self.ignore_empty:
            return None
        message = (
            f'Cannot load image {filename}: {reason}. Expected a complete '
            'image file (JPEG, PNG, ...); replace it, or remove it from the '
            "dataset's annotation files."
        )
        raise OSError(message) from error

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image at ``results['img_path']``.

        Args:
            results (dict): With ``img_path``.

        Returns:
            dict | None: With ``img``, ``img_shape`` and ``ori_shape``; None
            for an unreadable file when ``ignore_empty`` is set.
        """
        filename = results['img_path']
        try:
            data = self._read(filename)
        except FileNotFoundError as e:
            if self.ignore_empty:
                return None
            raise FileNotFoundError(
                f'Image {filename} does not exist; expected it under the '
                'data root as listed in the annotation files of the dataset.'
            ) from e
        except Exception as e:
            return self._fail(filename, f'it cannot be read ({e})', e)
        if not data:
            return self._fail(filename, 'the file is empty (0 bytes)')
        if self.check_truncated:
            reason = truncation_reason(data)
            if reason is not None:
                return self._fail(filename, reason)
        try:
            img = mmcv.imfrombytes(
                data, flag=self.color_type, backend=self.imdecode_backend
            )
        except Exception as e:
            return self._fail(filename, f'the decoder failed ({e})', e)
        if img is None:
            return self._fail(
                filename,
                f'not a decodable image ({len(data)} bytes, starting with '
                f'{data[:8]!r})',
            )
        if self.to_float32:
            img = img.astype('float32')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
