"""See-through cut-outs of studio product photos: backdrop holes, glass and edge colours at the photo's resolution.

The segmentation model sees a photo at 160×160, so the studio backdrop that shows through a wicker weave, between
chair slats or bed bars, and through clear glass comes back as "product". Shop photos have a plain backdrop (IKEA's
is pure white), so the photo itself says where the backdrop shows: pixels of the backdrop's colour are see-through,
pixels close to it are partly see-through (an edge, or glass that only dims the light behind it), and an edge
pixel's colour is what remains once the backdrop's share is taken out (no white fringe). Pure numpy + Pillow; slower
than the served /predict refinement, so it is meant for catalogue cut-outs, which are computed once and cached.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

# Bump when the output changes: it is part of the catalogue cut-out cache key, so old cut-outs are not served.
MATTING_VERSION = 1


@dataclass(frozen=True)
class Matting:
    """Settings, as max-channel distances from the backdrop colour (0..255).

    hole_tol: at most this far from the backdrop a pixel *is* backdrop (JPEG noise on a plain backdrop is a few
    levels); edge_ramp: near a see-through area, alpha ramps from 0 at hole_tol to 1 at the distance of the most
    product-like pixel nearby (the product's own colour there), but at least this distance (anti-aliased edges); glass_ramp: the same ramp over the whole product for glass, which only dims what is behind it;
    backdrop_share: the share of the photo's border that must match the backdrop for the photo to count as a studio
    shot (otherwise the cut-out is left as the model made it); edge_band: how far (px) from a see-through area the
    edge ramp applies; enclosed_edge: an enclosed backdrop-coloured patch is an opening only when the product around
    it (within 3 px) is on average at least this far from the backdrop colour. A gap between slats or bars has the
    product's edge around it; a glossy highlight on a white bowl fades smoothly into near-white (measured on the
    demo photos: highlights 9-10, gaps 22-85); blurred_hole_edge: the same for a near-backdrop patch (within 3 ×
    hole_tol) with no pixel of the backdrop's own colour: only a clearly darker frame (a weave's strands) makes it a
    hole rather than the soft shading of a white product."""

    hole_tol: float = 6.0
    edge_ramp: float = 24.0
    glass_ramp: float = 80.0
    backdrop_share: float = 0.9
    edge_band: int = 3
    enclosed_edge: float = 16.0
    blurred_hole_edge: float = 60.0


def backdrop_colour(rgb: np.ndarray, settings: Matting = Matting()) -> np.ndarray | None:
    """The plain backdrop's RGB (median of the photo's 2-px border), or None when the border is not one colour."""
    h, w, _ = rgb.shape
    if h < 8 or w < 8:
        return None
    border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                             rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)]).astype(np.float32)
    colour = np.median(border, axis=0)
    close = np.abs(border - colour).max(axis=1) <= 2 * settings.hole_tol
    return colour if close.mean() >= settings.backdrop_share else None


def _dilate(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """Binary dilation by a 3×3 square, `steps` times (numpy slicing, no wrap-around)."""
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        grown[1:, 1:] |= out[:-1, :-1]
        grown[:-1, :-1] |= out[1:, 1:]
        grown[1:, :-1] |= out[:-1, 1:]
        grown[:-1, 1:] |= out[1:, :-1]
        out = grown
    return out


def _erode(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """Binary erosion by a 3×3 square (outside the image counts as set, so the border does not erode)."""
    return ~_dilate(~mask, steps)


def _shifted(x: np.ndarray, fill: int) -> list[np.ndarray]:
    """The 8 neighbours of every pixel, as arrays the size of x (outside the image: fill)."""
    h, w = x.shape
    p = np.pad(x, 1, constant_values=fill)
    return [p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def components(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels of a boolean mask: each set pixel gets its component's smallest flat index,
    unset pixels -1 (min-label propagation with pointer jumping: a few dozen numpy passes, no SciPy)."""
    h, w = mask.shape
    none = np.iinfo(np.int32).max
    lab = np.where(mask, np.arange(h * w, dtype=np.int32).reshape(h, w), none)
    while True:
        m = lab
        for s in _shifted(lab, none):
            m = np.minimum(m, s)
        flat = np.where(mask, m, none).ravel()
        on = flat != none
        flat[on] = np.minimum(flat[on], flat[flat[on]])  # jump to the label's own label: converges fast
        m = flat.reshape(h, w)
        if np.array_equal(m, lab):
            return np.where(mask, lab, -1)
        lab = m


def _enclosed(mask: np.ndarray, outside: np.ndarray, dist: np.ndarray,
              edge: float) -> tuple[np.ndarray, np.ndarray]:
    """The patches of mask inside the product that touch no outside pixel, split into openings (the product around
    them, within 3 px, is on average at least `edge` from the backdrop colour) and highlights (smoother)."""
    inner = mask & ~outside
    if not inner.any():
        return inner, inner
    lab = components(inner)
    touching = np.unique(lab[inner & _dilate(outside)])
    # Spread each patch's label 3 px into the product around it, then average the colour distance per label.
    ring_lab = lab
    for _ in range(3):
        grown = ring_lab
        for s in _shifted(ring_lab, -1):
            grown = np.maximum(grown, s)
        ring_lab = np.where(mask, ring_lab, grown)
    ring = ~mask & (ring_lab >= 0)
    size = lab.size
    sums = np.bincount(ring_lab[ring], weights=dist[ring], minlength=size)
    counts = np.bincount(ring_lab[ring], minlength=size)
    mean = np.divide(sums, counts, out=np.full(size, np.inf), where=counts > 0)
    enclosed = np.ones(size, bool)
    enclosed[touching[touching >= 0]] = False
    key = np.maximum(lab, 0)
    openings = inner & (enclosed & (mean >= edge))[key]
    highlights = inner & (enclosed & (mean < edge))[key]
    return openings, highlights


def _open2(mask: np.ndarray) -> np.ndarray:
    """Morphological opening by a 2×2 square: the pixels of mask covered by some 2×2 block that lies inside it."""
    core = np.zeros_like(mask)
    core[:-1, :-1] = mask[:-1, :-1] & mask[1:, :-1] & mask[:-1, 1:] & mask[1:, 1:]
    out = core.copy()
    out[1:, :] |= core[:-1, :]
    out[:, 1:] |= core[:, :-1]
    out[1:, 1:] |= core[:-1, :-1]
    return out


def _drop_isolated(mask: np.ndarray) -> np.ndarray:
    """mask without its pixels that have no 4-neighbour in it (single-pixel noise)."""
    near = np.zeros_like(mask)
    near[1:] |= mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    return mask & near


def _ramp(dist: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at lo or below, 1 at hi or above, linear between."""
    return np.clip((dist - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def see_through(rgb: np.ndarray, alpha: np.ndarray, *, glass: bool = False,
                settings: Matting = Matting()) -> tuple[np.ndarray, np.ndarray]:
    """Refined (rgb uint8 H×W×3, alpha uint8 H×W) of a cut-out: backdrop holes open, glass partly see-through,
    edge colours without the backdrop. Photos without a plain backdrop come back unchanged."""
    colour = backdrop_colour(rgb, settings)
    if colour is None:
        return rgb, alpha
    img = rgb.astype(np.float32)
    a = alpha.astype(np.float32) / 255.0
    dist = np.abs(img - colour).max(axis=2)
    # Backdrop pixels are see-through wherever they are: around the product, through its openings. An opening by a
    # 2×2 square drops single pixels and 1-px lines (a glint on a chrome leg) but keeps a wicker weave's 2-3 px holes.
    outside = a < 0.5
    backdrop = _open2(dist <= settings.hole_tol)
    if not glass:  # in clear glass every backdrop-coloured patch is the backdrop seen through it
        backdrop &= ~_enclosed(backdrop, outside, dist, settings.enclosed_edge)[1]
    # Small enclosed holes (a wicker weave's 2-3 px) are blurred by the lens and JPEG: none of their pixels may be
    # quite the backdrop's colour. Near-backdrop patches with the product's edge all around are openings too; their
    # pixels get alpha from the ramp below.
    loose = _drop_isolated(dist <= 3 * settings.hole_tol) & ~backdrop  # 1-px slits between strands count here
    clear = backdrop | outside | _enclosed(loose, outside, dist, settings.blurred_hole_edge)[0]
    a[backdrop] = 0.0
    # Near a see-through area a pixel is partly backdrop: alpha from how far its colour is from the backdrop's.
    band = _dilate(clear, settings.edge_band) & ~backdrop
    size = 2 * settings.edge_band + 3
    local = np.asarray(Image.fromarray(np.clip(dist, 0, 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(size)))
    hi = np.maximum(local.astype(np.float32), settings.edge_ramp)
    a[band] = np.minimum(a[band], np.clip((dist[band] - settings.hole_tol) / (hi[band] - settings.hole_tol), 0, 1))
    if glass:
        # Clear glass dims the light behind it: the nearer a pixel is to the backdrop, the more it lets through.
        a = np.minimum(a, _ramp(dist, settings.hole_tol, settings.glass_ramp))
    # Colour decontamination: an observed pixel is a·F + (1 − a)·backdrop; keep F, the product's own colour.
    partial = (a > 0.02) & (a < 0.999)
    if partial.any():
        ap = a[partial][:, None]
        img[partial] = np.clip((img[partial] - (1.0 - ap) * colour) / ap, 0.0, 255.0)
    out_rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    out_a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out_rgb, out_a


def see_through_image(rgb: Image.Image, mask: Image.Image, *, glass: bool = False,
                      settings: Matting = Matting()) -> Image.Image:
    """RGBA cut-out of an RGB photo and its model mask (mode L) with see-through refinement (see see_through)."""
    out_rgb, out_a = see_through(np.asarray(rgb.convert("RGB")), np.asarray(mask.convert("L")), glass=glass,
                                 settings=settings)
    return Image.fromarray(np.dstack([out_rgb, out_a]), "RGBA")


def opaque_bbox(rgba: Image.Image, threshold: int = 128) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) (exclusive) of the pixels at least `threshold` opaque, or None when there are none."""
    return rgba.getchannel("A").point(lambda v: 255 if v >= threshold else 0).getbbox()
