"""Edge-aware upsampling of the model's low-resolution foreground probability, guided by the full-resolution photo.

The model sees the photo at 160×160, so its mask edges are blurred over ~3 photo pixels and the gaps between thin
rails or chair slats fill in. The fast guided filter (He & Sun, "Fast Guided Filter", 2015) fits, in every small
window at the model's resolution, a linear map from the photo's colour to the probability, then applies those maps
to the full-resolution photo: edges snap to the photo's own colour edges. Pure numpy + Pillow (the serving image
has no SciPy or OpenCV); training's evaluation imports this module so it scores exactly what is served.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class GuidedFilter:
    """Fast guided filter settings. The defaults were chosen on validation photos, within the web API's time budget.

    radius, eps: window radius (pixels at the fitting resolution) and regulariser (colours in 0..1); subsample: fit at
    the model output's resolution divided by this (the fast model's mask is made at stride 2, so 160 -> 80 loses
    nothing); max_side: the linear maps are applied to the photo capped to this long side, then the refined
    probability is upsampled bilinearly (the cost grows with the photo's pixels)."""

    radius: int = 3
    eps: float = 1e-4
    subsample: int = 2
    max_side: int = 250

    def __post_init__(self) -> None:
        if self.radius < 1 or self.eps <= 0 or self.subsample < 1 or self.max_side < 1:
            raise ValueError(f"refine needs radius >= 1, eps > 0, subsample >= 1 and max_side >= 1, got {self}")

    def as_dict(self) -> dict:
        """model.json form."""
        return {"method": "fast_guided_filter", "radius": self.radius, "eps": self.eps, "subsample": self.subsample,
                "max_side": self.max_side}

    @classmethod
    def from_dict(cls, meta: dict | None) -> "GuidedFilter | None":
        """Settings from model.json's `refine` entry; None when absent (plain bilinear upsampling)."""
        if not meta:
            return None
        if meta.get("method") != "fast_guided_filter":
            raise ValueError(f"unknown refine method {meta.get('method')!r}")
        return cls(int(meta["radius"]), float(meta["eps"]), int(meta["subsample"]), int(meta["max_side"]))


def fit_within(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """Size (w, h) scaled down, aspect kept, so its long side is at most max_side (never scaled up)."""
    w, h = size
    scale = max_side / max(w, h)
    if scale >= 1:
        return size
    return max(1, round(w * scale)), max(1, round(h * scale))


def shrink_within(img: Image.Image, max_side: int) -> Image.Image:
    """The image itself when its long side is at most max_side, else a copy scaled down to fit: box-filter reduced
    by the whole factor first (reducing_gap=1: 500 -> 250 is a 2×2 average, 6× faster than a bilinear resize,
    which was a tenth of a request's CPU time), then bilinear for any remainder."""
    size = fit_within(img.size, max_side)
    return img if size == img.size else img.resize(size, Image.BILINEAR, reducing_gap=1.0)


def box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)² window around each pixel of x (..., H, W), windows clipped at the border."""
    def window_sums(a: np.ndarray, axis: int) -> np.ndarray:
        # Running sums with a leading 0, edge-padded by r, so sum(a[i-r : i+r+1]) = c[i + 2r + 1] - c[i] (clipped).
        pad = [(0, 0)] * a.ndim
        pad[axis] = (r + 1, r)
        c = np.pad(np.cumsum(a, axis=axis), pad, mode="edge")
        c = np.moveaxis(c, axis, 0)
        c[: r + 1] = 0  # the leading zero and the left padding: nothing summed yet
        n = a.shape[axis]
        return np.moveaxis(c[2 * r + 1:n + 2 * r + 1] - c[:n], 0, axis)

    h, w = x.shape[-2:]
    counts = window_sums(window_sums(np.ones((h, w), x.dtype), 0), 1)
    return window_sums(window_sums(x, x.ndim - 2), x.ndim - 1) / counts


def _solve_sym3(s: list[list[np.ndarray]], v: np.ndarray) -> np.ndarray:
    """Solve S·a = v per pixel for a symmetric 3×3 S of (h, w) planes (s[j][k] is s[k][j]); v is (3, h, w).
    Cramer's rule on whole planes: ~10× faster than np.linalg.solve on 25,600 tiny matrices."""
    # The adjugate of a symmetric matrix is symmetric: its six upper entries.
    c00 = s[1][1] * s[2][2] - s[1][2] ** 2
    c01 = s[0][2] * s[1][2] - s[0][1] * s[2][2]
    c02 = s[0][1] * s[1][2] - s[0][2] * s[1][1]
    c11 = s[0][0] * s[2][2] - s[0][2] ** 2
    c12 = s[0][1] * s[0][2] - s[0][0] * s[1][2]
    c22 = s[0][0] * s[1][1] - s[0][1] ** 2
    det = s[0][0] * c00 + s[0][1] * c01 + s[0][2] * c02
    return np.stack([c00 * v[0] + c01 * v[1] + c02 * v[2],
                     c01 * v[0] + c11 * v[1] + c12 * v[2],
                     c02 * v[0] + c12 * v[1] + c22 * v[2]]) / det


def guided_coefficients(guide: np.ndarray, p: np.ndarray, cfg: GuidedFilter) -> tuple[np.ndarray, np.ndarray]:
    """Linear maps q = A·I + b fitted in each window, window-averaged: guide (3, h, w), p (h, w) -> A (3, h, w), b."""
    pairs = [(j, k) for j in range(3) for k in range(j, 3)]
    # One box filter over every statistic: I (3), p (1), I·p (3) and the 6 distinct products I_j·I_k.
    stats = np.concatenate([guide, p[None], guide * p, np.stack([guide[j] * guide[k] for j, k in pairs])])
    m = box_mean(stats, cfg.radius)
    mean_i, mean_p, mean_ip, mean_ii = m[:3], m[3], m[4:7], m[7:]
    cov_ip = mean_ip - mean_i * mean_p
    var_i: list[list[np.ndarray]] = [[np.empty(0)] * 3 for _ in range(3)]
    for n, (j, k) in enumerate(pairs):
        var_i[j][k] = var_i[k][j] = mean_ii[n] - mean_i[j] * mean_i[k] + (cfg.eps if j == k else 0.0)
    a = _solve_sym3(var_i, cov_ip)
    b = mean_p - (a * mean_i).sum(axis=0)
    ab = box_mean(np.concatenate([a, b[None]]), cfg.radius)
    return ab[:3], ab[3]


def _resize(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one float plane to size (w, h); read-only (np.array would copy it, ~1 ms at 500×500)."""
    return np.asarray(Image.fromarray(plane.astype(np.float32, copy=False), "F").resize(size, Image.BILINEAR))


def refine(prob: np.ndarray, photo: Image.Image, cfg: GuidedFilter) -> np.ndarray:
    """Foreground probability (h, w) at model resolution -> (H, W) at the photo's resolution, clipped to 0..1."""
    rgb = photo.convert("RGB")
    guide = shrink_within(rgb, cfg.max_side)
    fit = (max(1, prob.shape[1] // cfg.subsample), max(1, prob.shape[0] // cfg.subsample))
    p = prob if fit == prob.shape[::-1] else _resize(prob, fit)
    small = np.moveaxis(np.asarray(guide.resize(fit, Image.BILINEAR), np.float32), -1, 0) / 255.0
    a, b = guided_coefficients(small, p.astype(np.float32), cfg)
    out = _resize(b, guide.size)
    for plane, coef in zip(guide.split(), a / 255.0):  # photo planes stay uint8: the 1/255 goes into A
        out = out + _resize(coef, guide.size) * np.asarray(plane)
    if guide.size != rgb.size:
        out = _resize(out, rgb.size)
    return np.clip(out, 0.0, 1.0)
