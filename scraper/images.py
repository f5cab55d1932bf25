"""Verify downloaded image bytes with Pillow and fingerprint them (perceptual hash) for near-duplicate detection."""
from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, UnidentifiedImageError

from .config import ImageConfig

log = logging.getLogger(__name__)

# The formats we keep, by what Pillow detects in the bytes (never by URL or Content-Type), and their file extension:
# the ones both training (tf.io.decode_image) and the web app can read. AVIF is not one: TensorFlow cannot decode it.
FORMAT_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the photo upright (the table of Pillow's ImageOps.exif_transpose).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


class ImageRejected(Exception):
    """Downloaded bytes that are not a usable product photo; `reason` is the failure key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}" + (f": {detail}" if detail else ""))
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """A verified image: its real format and upright size, plus a 64-bit perceptual hash."""

    format: str
    ext: str
    width: int
    height: int
    phash: int


def phash_of(image: Image.Image) -> int:
    """64-bit perceptual hash of an image as an int (compare with popcount of XOR)."""
    return int(str(imagehash.phash(image)), 16)


def upright(im: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation, as the labeller sees it; `im` itself when it needs no turn or its
    EXIF is unreadable (so `upright(im) is not im` tells whether it was turned)."""
    try:
        orientation = int(im.getexif().get(ORIENTATION_TAG, 1))
    except (OSError, ValueError, KeyError, TypeError, SyntaxError) as exc:
        # Broken EXIF must not cost us the photo.
        log.info("ignoring unreadable EXIF (%s)", exc)
        return im
    # Transposed directly rather than with ImageOps.exif_transpose, which also re-encodes the EXIF block and raises
    # struct.error on a malformed tag that nothing here needs.
    return im.transpose(UPRIGHT[orientation]) if orientation in UPRIGHT else im


def inspect_image(data: bytes, cfg: ImageConfig) -> ImageInfo:
    """Decode and check image bytes: real format, fully decodable, EXIF orientation applied, min side; or reject."""
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) between MAX_IMAGE_PIXELS and 2x: treat both as a bomb with our own limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format or ""
                if fmt not in FORMAT_EXT:
                    raise ImageRejected("unsupported_format", fmt or "unknown")
                if im.width * im.height > cfg.max_pixels:
                    raise ImageRejected("too_many_pixels", f"{im.width}x{im.height}")
                im.verify()
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # verify() does not decode pixel data: a truncated file only fails here
                turned = upright(im)
                width, height = turned.size
                if min(width, height) < cfg.min_side:
                    raise ImageRejected("too_small", f"{width}x{height}")
                return ImageInfo(fmt, FORMAT_EXT[fmt], width, height, phash_of(turned))
    except UnidentifiedImageError as exc:
        raise ImageRejected("not_an_image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)[:80]) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("corrupt_image", str(exc)[:80]) from exc
