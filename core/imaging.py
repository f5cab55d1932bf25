"""Encoding masks and cut-outs as PNG for the web app's responses."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

# Crop margin around the product in /predict cut-outs, as a fraction of the product's larger side.
CROP_MARGIN = 0.04
PNG_COMPRESS_LEVEL = 1  # cut-outs: level 1 is several times faster than the default and barely larger
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def mask_png(mask: Image.Image) -> bytes:
    """Encode an 8-bit mask as PNG about 3x faster than Pillow (the hot path of every /predict).

    Pillow tries the five PNG row filters on every row, which costs more than compressing; masks are long runs of 0
    and 255, so unfiltered rows with zlib's run-length strategy are both faster and smaller.
    """
    arr = np.asarray(mask, dtype=np.uint8)
    h, w = arr.shape
    rows = np.zeros((h, w + 1), np.uint8)  # each row starts with filter type 0 (none)
    rows[:, 1:] = arr
    comp = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    idat = comp.compress(rows.tobytes()) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return _PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bytes(img: Image.Image) -> bytes:
    """Encode an image as PNG quickly."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def cutout(rgb: Image.Image, mask: Image.Image, bbox: tuple[int, int, int, int] | None,
           margin: float = CROP_MARGIN) -> Image.Image:
    """RGBA cut-out of the product: the photo with the mask as alpha, cropped to bbox plus a margin when given."""
    rgba = rgb.convert("RGBA")
    rgba.putalpha(mask)
    return crop(rgba, bbox, margin)


def crop_box(size: tuple[int, int], bbox: tuple[int, int, int, int] | None,
             margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) that crop() cuts from an image of size (w, h): bbox plus the margin, within the image."""
    w, h = size
    if bbox is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = bbox
    pad = int(round(max(x1 - x0, y1 - y0) * margin))
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)


def crop(rgba: Image.Image, bbox: tuple[int, int, int, int] | None, margin: float = CROP_MARGIN) -> Image.Image:
    """The image cropped to bbox plus a margin (a fraction of the larger side), or itself when bbox is None."""
    if bbox is None:
        return rgba
    return rgba.crop(crop_box(rgba.size, bbox, margin))
