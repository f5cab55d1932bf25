"""Decoding untrusted image bytes into upright RGB images, and the model's input resize (shared by every part)."""
from __future__ import annotations

import io
import logging
import math
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .refine import fit_within, shrink_within

log = logging.getLogger(__name__)

# MPO is what many phones write (a JPEG with a second, depth or preview, frame appended): served as its first frame.
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
_JPEG_FORMATS = ("JPEG", "MPO")  # libjpeg decodes these: EXIF is in the header and draft() decodes at reduced scale
ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the photo upright (Pillow's ImageOps.exif_transpose table). Applied
# directly rather than with exif_transpose, which also re-encodes the EXIF block and raises struct.error on a
# malformed tag nothing here reads.
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
# The model learnt from 500-px photos shrunk to its input by sampling (no antialiasing): ~3 photo pixels per input
# pixel. libjpeg's reduced-scale decode (1/2, 1/4, 1/8) may go down to this ratio but no further, or the model sees a
# smoother photo than it was trained on (which scored worse on validation).
DRAFT_MIN_RATIO = 3


# Default cap on the pixels an upload is processed at (decode, mask, cut-out): larger photos are decoded reduced and
# answered at a capped resolution, so a 40 MP upload costs about what a 12 MP phone photo does.
MAX_OUTPUT_PIXELS = 12_000_000


class ImageError(ValueError):
    """Image bytes that cannot be used, with the HTTP status and error code an API reports for them."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Decoded:
    """An upload decoded for the model: the model-sized RGB input, the full RGB image and the guide when asked for."""

    size: tuple[int, int]  # output resolution (w, h) after EXIF orientation: the upload's own, or capped
    model_input: Image.Image
    full: Image.Image | None
    guide: Image.Image | None = None  # RGB, long side <= the guide_side asked for (mask refinement)
    source_size: tuple[int, int] = (0, 0)  # the upload's own resolution (w, h) after EXIF orientation

    @property
    def scale(self) -> float:
        """Output pixels per upload pixel: 1.0 unless the upload was above the output cap."""
        return self.size[0] / self.source_size[0] if self.source_size[0] else 1.0


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Identify an upload without decoding its pixels; raise ImageError for empty, non-image, unsupported or huge data."""
    if not data:
        raise ImageError(400, "empty_file", "the uploaded file is empty")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(422, "too_many_pixels", f"image is too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(400, "invalid_image", "the file is not a recognisable image") from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - see _corrupt
        raise _corrupt("header", exc) from exc
    if img.format not in ALLOWED_FORMATS:
        raise ImageError(415, "unsupported_media_type",
                       f"{img.format} images are not supported; send JPEG, PNG or WebP")
    w, h = img.size
    if w < 1 or h < 1 or w * h > max_pixels:
        raise ImageError(422, "too_many_pixels",
                       f"image has {w}x{h} = {w * h} pixels; the limit is {max_pixels}")
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparency is composited over white (shop photos are on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit (and 32-bit) greyscale: scale to 8 bits instead of clipping everything above 255 to white.
        arr = np.asarray(img, dtype=np.float32)  # float32: a float64 copy of a large photo is 8 bytes a pixel
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def output_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """Size (w, h) divided by the smallest power of two (rounding up, as libjpeg's scaled decode and Image.reduce
    do) that brings it to at most max_pixels pixels; the size itself when it is within (or max_pixels is 0). Whole
    factors keep the reduction cheap: libjpeg decodes at 1/2, 1/4, 1/8, and a box reduce needs no resampling."""
    w, h = size
    k = 1
    while max_pixels > 0 and -(-w // k) * -(-h // k) > max_pixels:
        k *= 2
    return -(-w // k), -(-h // k)


def _corrupt(part: str, exc: Exception) -> ImageError:
    """The 400 for an upload Pillow cannot read. Pillow's plugins report hostile files with nearly any exception
    type (OSError, struct.error, IndexError, OverflowError, ...), so every one is the client's bad file, logged with
    its type so a new kind shows up in the logs."""
    log.info("unreadable image %s (%s: %s)", part, type(exc).__name__, exc)
    return ImageError(400, "invalid_image", f"the image {part} is corrupt or truncated ({type(exc).__name__}: {exc})")


def _shrink_to(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """img box-reduced to size (a whole factor, see output_size); modes reduce() cannot take (1, P, I;16) are
    sampled instead (nearest), which also keeps a palette."""
    if img.size == size:
        return img
    if img.mode in ("1", "P", "I;16", "I;16B", "I;16L", "I;16N"):
        return img.resize(size, Image.NEAREST)
    factor = min(img.width // size[0], img.height // size[1])
    if factor >= 2:
        img = img.reduce(factor)
    return img if img.size == size else img.resize(size, Image.BILINEAR)


def decode(data: bytes, model_size: tuple[int, int], *, max_pixels: int, need_full: bool,
           guide_side: int = 0, max_output_pixels: int = MAX_OUTPUT_PIXELS) -> Decoded:
    """Decode an upload: honour EXIF orientation, convert to RGB and resize once to the model input (w, h); with
    guide_side > 0 also make the guide photo for the mask refinement (long side <= guide_side). Uploads above
    max_output_pixels are decoded reduced (libjpeg's draft for JPEG, a box reduce right after decoding otherwise)
    and answered at that capped size: the full-resolution RGB, mask and cut-out of a 40 MP photo would take
    ~0.5 GB."""
    img = open_image(data, max_pixels)
    w, h = img.size
    out_w, out_h = output_size((w, h), max_output_pixels)  # as stored, before the EXIF turn
    try:
        if img.format in _JPEG_FORMATS:
            # The EXIF block is in the header: read it before draft(), which must come before any decoding.
            orientation = exif_orientation(img)
            if need_full:
                # The decode must still cover the output size; libjpeg picks the smallest 1/2^k scale that does.
                img.draft("RGB", (out_w, out_h))
            else:
                # Let libjpeg decode at a reduced scale (still >= DRAFT_MIN_RATIO x the model input and >= the guide,
                # both as stored): much faster than a full decode of a large photo.
                mw, mh = model_size if orientation not in _ROTATED_ORIENTATIONS else model_size[::-1]
                gw, gh = fit_within((w, h), guide_side) if guide_side else (0, 0)
                img.draft("RGB", (max(mw * DRAFT_MIN_RATIO, gw), max(mh * DRAFT_MIN_RATIO, gh)))
            img.load()
        else:
            # Decode first: a PNG's eXIf chunk may follow its pixels, and reading EXIF before load() would decode
            # them inside exif_orientation, whose tolerance of broken EXIF would swallow a corrupt IDAT.
            img.load()
            orientation = exif_orientation(img)
        if img.width * img.height > out_w * out_h:
            img = _shrink_to(img, (min(out_w, img.width), min(out_h, img.height)))
        if orientation in UPRIGHT:
            img = img.transpose(UPRIGHT[orientation])
        rgb = to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageError(422, "too_many_pixels", f"image is too large to decode safely ({exc})") from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - see _corrupt
        raise _corrupt("data", exc) from exc
    rotated = orientation in _ROTATED_ORIENTATIONS
    size = (out_h, out_w) if rotated else (out_w, out_h)
    source = (h, w) if rotated else (w, h)
    if need_full and rgb.size != size:  # a JPEG draft lands on a 1/2^k scale at or above the output size
        rgb = rgb.resize(size, Image.BILINEAR, reducing_gap=2.0)
    model_input = model_resize(rgb, model_size)
    guide = shrink_within(rgb, guide_side) if guide_side else None
    return Decoded(size, model_input, rgb if need_full else None, guide, source)


def model_resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to the model input (w, h) as training did (tf.image.resize, bilinear): interpolate at each output
    pixel's centre, without the antialiasing Image.resize applies when shrinking. Measured on validation, the
    smoothed input cost 0.01 foreground IoU."""
    w, h = img.size
    return img.transform(size, Image.AFFINE, (w / size[0], 0, 0, 0, h / size[1], 0), resample=Image.BILINEAR)


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of an opened image; 1 when it is missing or unreadable (broken EXIF must not
    cost the photo: hostile files carry tags as ±inf floats or truncated IFDs, which Pillow reports in many ways)."""
    try:
        value = im.getexif().get(ORIENTATION_TAG, 1)
        orientation = int(value)
    except (OverflowError, struct.error, ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError,
            EOFError) as exc:  # a float ±inf/NaN tag, a truncated IFD, a BigTIFF eXIf chunk, ...
        log.info("ignoring unreadable EXIF (%s: %s)", type(exc).__name__, exc)
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def upright(im: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation; `im` itself when it needs no turn or its EXIF is unreadable (so
    `upright(im) is not im` tells whether it was turned)."""
    orientation = exif_orientation(im)
    return im.transpose(UPRIGHT[orientation]) if orientation in UPRIGHT else im
