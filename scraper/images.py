"""Verify downloaded image bytes with Pillow and fingerprint them (perceptual hash) for near-duplicate detection."""
from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, UnidentifiedImageError

from core.images import upright

from .config import ImageConfig

log = logging.getLogger(__name__)

# The formats we keep, by what Pillow detects in the bytes (never by URL or Content-Type), and their file extension:
# the ones both training (tf.io.decode_image) and the web app can read. AVIF is not one: TensorFlow cannot decode it.
FORMAT_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


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
