"""Automatic review of teacher labels (issue 15): checks that flag masks the teacher likely got wrong in room photos.

In rooms ISNet often drops a bed's headboard or takes in a nightstand, lamp, rug or wall. Cheap mask statistics catch
many of these: a foreground touching the photo's top edge over a long run (a wall, curtains, a window), a foreground
split into several large parts (the product plus furniture beside it), a foreground fraction at the extremes, and a
large share of uncertain alpha (the teacher did not know). Every labelled photo gets ok or rejected with the first
failing check as its reason (all failing checks are logged too) in review.jsonl; contact sheets per reason are for
by-eye review. A manual decisions file (same line format, written by a person) overrides the automatic verdict.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from tqdm import tqdm

from core.manifest import read_manifest

from .io import atomic_save_png, atomic_write_bytes, open_upright
from .label import LabelConfig, contact_sheet, read_index

if TYPE_CHECKING:  # dataset imports this module at run time
    from .dataset import Item

log = logging.getLogger(__name__)


@dataclass
class ReviewConfig:
    """Thresholds of the automatic checks (chosen by eye on the contact sheets, docs/model-development.md)."""

    top_run: float = 0.35  # reject when the longest foreground run in the top rows exceeds this share of the width
    top_rows: float = 0.01  # the "top edge": this share of the photo's height (at least one row)
    part_min: float = 0.02  # a "large part": a connected component of at least this share of the photo...
    part_ratio: float = 0.25  # ...and at least this share of the largest component
    min_fg: float = 0.03
    max_fg: float = 0.85
    soft_lo: float = 0.2
    soft_hi: float = 0.8
    max_soft: float = 0.4  # reject when uncertain-alpha pixels exceed this share of the foreground


@dataclass
class MaskStats:
    """What the checks measure on one label."""

    fg_fraction: float
    top_run: float
    parts: int
    soft_share: float


def longest_run(row: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D boolean array."""
    padded = np.concatenate([[False], np.asarray(row, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def mask_stats(mask: np.ndarray, alpha: np.ndarray, cfg: ReviewConfig) -> MaskStats:
    """Measure a label: mask (nonzero = foreground), alpha (float 0..1, same size)."""
    fg = np.asarray(mask) != 0
    h, w = fg.shape
    rows = max(1, round(h * cfg.top_rows))
    top = longest_run(fg[:rows].any(axis=0)) / w
    labels, n = ndimage.label(fg)
    parts = 0
    if n:
        sizes = ndimage.sum_labels(fg, labels, index=np.arange(1, n + 1))
        big = sizes >= max(cfg.part_min * fg.size, cfg.part_ratio * sizes.max())
        parts = int(big.sum())
    soft = (alpha > cfg.soft_lo) & (alpha < cfg.soft_hi)
    fg_px = max(1, int(fg.sum()))
    return MaskStats(fg_fraction=float(fg.mean()), top_run=float(top), parts=parts,
                     soft_share=float(soft.sum() / fg_px))


def failed_checks(stats: MaskStats, cfg: ReviewConfig) -> list[str]:
    """The reasons a label fails, most telling first (empty: ok)."""
    reasons = []
    if stats.top_run > cfg.top_run:
        reasons.append("touches-top")
    if stats.parts > 1:
        reasons.append("split")
    if stats.fg_fraction < cfg.min_fg:
        reasons.append("tiny-fg")
    if stats.fg_fraction > cfg.max_fg:
        reasons.append("huge-fg")
    if stats.soft_share > cfg.max_soft:
        reasons.append("uncertain-alpha")
    return reasons


def read_review(path: Path) -> dict[str, dict]:
    """review.jsonl (or a manual decisions file) as {id: entry}; later lines win."""
    return read_index(path)


def review_labels(manifest: Path, labels: Path, out: Path, cfg: ReviewConfig, manual: Path | None = None,
                  sheet_limit: int = 60) -> Counter:
    """Review every labelled photo, write out/review.jsonl and out/sheet_<reason>.png; returns counts by verdict."""
    index = read_index(labels / "labels.jsonl")
    if not index:
        raise FileNotFoundError(f"no labels in {labels}/labels.jsonl")
    known = {r.id for r in read_manifest(manifest)}
    decided = read_review(manual) if manual else {}
    lines, counts = [], Counter()
    by_reason: dict[str, list[str]] = {}
    for pid, entry in tqdm(sorted(index.items()), desc="review", unit="img"):
        if pid not in known:
            continue
        if entry.get("status") != "ok":  # labelling already rejected it (empty or full mask, unreadable)
            verdict = {"id": pid, "status": "rejected", "reason": f"label:{entry.get('reason')}", "reasons": [],
                       "by": "label"}
        else:
            mask = np.asarray(Image.open(labels / "masks" / f"{pid}.png"))
            alpha = np.asarray(Image.open(labels / "alpha" / f"{pid}.png").convert("L"), np.float32) / 255.0
            stats = mask_stats(mask, alpha, cfg)
            reasons = failed_checks(stats, cfg)
            verdict = {"id": pid, "status": "rejected" if reasons else "ok", "reason": reasons[0] if reasons else None,
                       "reasons": reasons, "by": "auto", **{k: round(v, 4) for k, v in asdict(stats).items()}}
            for reason in reasons[:1]:
                by_reason.setdefault(reason, []).append(pid)
        if pid in decided:  # a person looked at it: their verdict and reason win
            verdict.update(status=decided[pid]["status"], reason=decided[pid].get("reason"), by="manual")
        counts[verdict["reason"] or "ok"] += 1
        lines.append(json.dumps(verdict))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "review.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
    sheet_cfg = LabelConfig(manifest=manifest, out=labels, classes=())
    for reason, ids in by_reason.items():
        # Evenly spaced over the sorted ids, so the sheet shows every source, not the first one only.
        step = max(1, len(ids) // sheet_limit)
        contact_sheet(sheet_cfg, out / f"sheet_{reason}.png", ids[::step][:sheet_limit])
    flagged = {i for ids in by_reason.values() for i in ids}
    ok_ids = [pid for pid, e in index.items() if e.get("status") == "ok" and pid not in flagged and pid in known]
    if ok_ids:
        step = max(1, len(ok_ids) // sheet_limit)
        contact_sheet(sheet_cfg, out / "sheet_ok.png", sorted(ok_ids)[::step][:sheet_limit])
    log.info("review of %d labels: %s", len(lines), dict(counts))
    return counts


def rejected_ids(review: Path) -> set[str]:
    """Ids a review file rejects (empty set when the file does not exist: nothing reviewed yet)."""
    return {pid for pid, e in read_review(review).items() if e.get("status") != "ok"}


@dataclass
class SheetConfig:
    """Numbered review sheets of dataset items: which items, and the grid."""

    split: tuple[str, ...] = ()  # empty: any
    kind: str = "photo"  # photo: the photo beside its reference cut-out; negative: the photo alone
    background: tuple[str, ...] = ()
    klass: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    cell: int = 150
    columns: int = 6
    rows: int = 6


def review_sheets(items: "list[Item]", out: Path, cfg: SheetConfig) -> list[dict]:
    """Save numbered sheets (sheet_NN.png) of the chosen dataset items and index.json (number -> id) for review by
    eye: a product photo beside its reference cut-out on green (the reference mask only, never a model's output),
    so a missing headboard or a mug cut out by its print alone shows; a negative as the photo alone. Returns the
    index."""
    def wanted(it: "Item") -> bool:
        return (it.kind == cfg.kind and (not cfg.split or it.split in cfg.split)
                and (not cfg.background or it.background in cfg.background)
                and (not cfg.klass or it.klass in cfg.klass) and (not cfg.source or it.source in cfg.source))

    chosen = sorted((it for it in items if wanted(it)), key=lambda it: it.id)
    if not chosen:
        raise ValueError(f"no {cfg.kind} items match {cfg}")
    panels = 2 if cfg.kind == "photo" else 1
    per_sheet = cfg.columns * cfg.rows
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for start in range(0, len(chosen), per_sheet):
        sheet = Image.new("RGB", (cfg.columns * panels * cfg.cell, cfg.rows * (cfg.cell + 14)), "white")
        draw = ImageDraw.Draw(sheet)
        for n, item in enumerate(chosen[start:start + per_sheet]):
            photo = open_upright(Path(item.image))
            shown = [photo]
            if panels == 2:
                mask = Image.fromarray(((np.asarray(Image.open(item.mask)) > 0) * 255).astype(np.uint8))
                shown.append(Image.composite(photo, Image.new("RGB", photo.size, (60, 160, 60)),
                                             mask.resize(photo.size)))
            x, y = (n % cfg.columns) * panels * cfg.cell, (n // cfg.columns) * (cfg.cell + 14)
            for k, image in enumerate(shown):
                image = image.copy()
                image.thumbnail((cfg.cell - 4, cfg.cell - 4))
                sheet.paste(image, (x + k * cfg.cell, y))
            draw.text((x + 2, y + cfg.cell), f"#{start + n} {item.id}", fill="black")
            index.append({"no": start + n, "id": item.id, "split": item.split, "klass": item.klass})
        atomic_save_png(out / f"sheet_{start // per_sheet:02d}.png", sheet)
    atomic_write_bytes(out / "index.json", json.dumps(index, indent=0).encode("utf-8"))
    return index
