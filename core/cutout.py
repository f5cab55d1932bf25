"""Catalogue cut-outs: the served model's mask, refined see-through (core.matting), cropped tight, as PNG + meta.

One function for the web app (a cut-out made on first view) and the batch job (a whole catalogue made ahead), so a
precomputed cut-out is byte for byte the one the web app would have made, under the same cache key.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from PIL import Image

from . import images, imaging, matting
from .segment import Prediction, Segmenter

log = logging.getLogger(__name__)

# Catalogue cut-outs are cropped almost tight (a margin of this fraction of the product's larger side on each side),
# so the room view can tell the product's own width and aspect from the image's.
CATALOGUE_MARGIN = 0.01
# The web app's defaults (webapp.config MAX_IMAGE_PIXELS / MAX_OUTPUT_PIXELS): batch cut-outs decode as it does.
MAX_IMAGE_PIXELS = 40_000_000


@dataclass(frozen=True)
class DecodeLimits:
    """How large a photo is decoded at all, and the pixels it is processed at (see core.images.decode)."""

    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_output_pixels: int = images.MAX_OUTPUT_PIXELS


def is_glass(*texts: object) -> bool:
    """Whether the shop describes the product as glass (name, category, class): its cut-out then lets the room show
    through, dimmed."""
    return "glass" in " ".join(str(t or "") for t in texts).lower()


def cutout_key(model_hash: str, glass: bool) -> str:
    """Cache key part of a catalogue cut-out besides the photo: what the model serves, plus the see-through
    refinement's version and whether it treated the product as glass (cut-outs made otherwise are not reused)."""
    return f"{model_hash}-m{matting.MATTING_VERSION}{'g' if glass else ''}"


def model_info(seg: Segmenter) -> dict[str, str]:
    """Model name and version, as responses and cut-out meta carry them."""
    return {"name": seg.spec.name, "version": seg.spec.version}


def decode_for(seg: Segmenter, data: bytes, limits: DecodeLimits = DecodeLimits(), *,
               need_full: bool) -> images.Decoded:
    """Decode photo bytes for the model (raises core.images.ImageError for bytes that are no usable image)."""
    return images.decode(data, (seg.spec.input_width, seg.spec.input_height), max_pixels=limits.max_image_pixels,
                         need_full=need_full, guide_side=seg.guide_side, max_output_pixels=limits.max_output_pixels)


def compose_cutout(seg: Segmenter, full: Image.Image, pred: Prediction, *, glass: bool) -> tuple[bytes, dict[str, Any]]:
    """The cut-out PNG and its meta from a decoded photo (full resolution RGB) and the model's prediction."""
    refined = matting.see_through_image(full, pred.mask, glass=glass)
    # Cropped to the refined alpha, which follows the photo's own edges: the room view reads the product's size
    # and aspect off the crop.
    bbox = (matting.opaque_bbox(refined) or pred.detections[0].bbox) if pred.detections else None
    image = imaging.crop(refined, bbox, margin=CATALOGUE_MARGIN)
    meta = {"detections": [d.as_dict() for d in pred.detections], "model": model_info(seg),
            "width": image.width, "height": image.height, "matting": matting.MATTING_VERSION,
            "crop": list(imaging.crop_box(refined.size, bbox, CATALOGUE_MARGIN))}
    return imaging.png_bytes(image), meta


def make_cutout(seg: Segmenter, data: bytes, *, glass: bool,
                limits: DecodeLimits = DecodeLimits()) -> tuple[bytes, dict[str, Any]]:
    """Decode, segment and compose one catalogue photo: (PNG, meta). Raises ImageError for unusable bytes."""
    decoded = decode_for(seg, data, limits, need_full=True)
    pred = seg.predict(decoded.model_input, decoded.size, decoded.guide)
    return compose_cutout(seg, decoded.full, pred, glass=glass)
