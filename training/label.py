"""Label product photos with a teacher: class-id masks (plus the soft alpha) and an index of what was kept/rejected.

Output layout under `out`:
  masks/<id>.png  uint8, image size: 0 background, k = class id, 255 = foreground of a product with no class
  alpha/<id>.png  uint8 soft alpha (teacher probability × 255)
  labels.jsonl    one line per processed product: id, status ok|rejected, reason, class, fg_fraction, teacher
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from tqdm import tqdm

from core.manifest import JsonlAppender, ManifestRecord, read_manifest, resolve_image_path

from .io import atomic_save_png, open_turned, open_upright
from .label_cache import LabelCache
from .teacher import Teacher

log = logging.getLogger(__name__)

UNCLASSED = 255


@dataclass
class LabelConfig:
    """Labelling options."""

    manifest: Path
    out: Path
    classes: tuple[str, ...]
    include_unclassed: bool = False  # label products with class null too (generic foreground)
    limit: int | None = None
    threshold: float = 0.5
    min_speck: float = 0.002  # connected components smaller than this fraction of the image are dropped
    min_fg: float = 0.005
    max_fg: float = 0.98
    cache: Path | None = None  # LabelCache root: alphas are read from it when present and written to it when not


@dataclass
class LabelSummary:
    """Counts of a labelling run."""

    ok: int = 0
    skipped_done: int = 0
    from_cache: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


def clean_mask(alpha: np.ndarray, threshold: float = 0.5, min_speck: float = 0.002) -> np.ndarray:
    """Binary foreground from alpha with connected components below `min_speck` of the image removed."""
    fg = alpha > threshold
    labels, n = ndimage.label(fg)
    if n == 0:
        return fg
    sizes = ndimage.sum_labels(fg, labels, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = sizes >= min_speck * fg.size
    return keep[labels]


def label_value(klass: str | None, classes: tuple[str, ...]) -> int:
    """The value written into a mask for a product's class (255 for no class)."""
    if klass is None:
        return UNCLASSED
    if klass not in classes:
        raise ValueError(f"class {klass!r} is not one of {classes}")
    return classes.index(klass)


def read_index(path: Path) -> dict[str, dict]:
    """Read labels.jsonl into {id: entry}; later lines win, torn lines are skipped."""
    entries: dict[str, dict] = {}
    if not path.exists():
        return entries
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
                entries[entry["id"]] = entry
            except (json.JSONDecodeError, KeyError):
                log.warning("%s: skipping a torn line", path)
    return entries


def label_one(record: ManifestRecord, image_path: Path, teacher: Teacher, cfg: LabelConfig,
              cache: LabelCache | None = None) -> dict:
    """Label one product; returns its index entry (status ok or rejected with a reason; `cached` when the alpha
    came from the label cache instead of the teacher)."""
    entry = {"id": record.id, "class": record.klass, "teacher": teacher.name}
    if record.klass is None and not cfg.include_unclassed:
        return entry | {"status": "rejected", "reason": "no-class"}
    try:
        image, turned = open_turned(image_path)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # OSError covers missing and unidentified files
        log.warning("%s: unreadable image %s (%s)", record.id, image_path, exc)
        return entry | {"status": "rejected", "reason": "unreadable"}
    alpha = cache.get(record.sha256, image.size) if cache else None
    entry["cached"] = alpha is not None
    if alpha is None:
        alpha = teacher.mask(image, record.klass)
        if cache:
            cache.put(record.sha256, alpha)
    fg = clean_mask(alpha, cfg.threshold, cfg.min_speck)
    fraction = float(fg.mean())
    entry["fg_fraction"] = round(fraction, 4)
    if fraction < cfg.min_fg:
        return entry | {"status": "rejected", "reason": "empty-mask"}
    if fraction > cfg.max_fg:
        return entry | {"status": "rejected", "reason": "full-mask"}
    mask = np.where(fg, label_value(record.klass, cfg.classes), 0).astype(np.uint8)
    atomic_save_png(cfg.out / "masks" / f"{record.id}.png", Image.fromarray(mask, mode="L"))
    atomic_save_png(cfg.out / "alpha" / f"{record.id}.png",
                    Image.fromarray((alpha * 255 + 0.5).astype(np.uint8), mode="L"))
    if turned:
        # The training pipeline (tf.io) ignores EXIF: it reads this upright copy, the pixels the mask was made on.
        atomic_save_png(upright_path(cfg.out, record.id), image)
    return entry | {"status": "ok", "reason": None}


def upright_path(labels: Path, product_id: str) -> Path:
    """Where labelling keeps the upright copy of a photo stored with an EXIF rotation."""
    return labels / "upright" / f"{product_id}.png"


def pending_records(cfg: LabelConfig) -> tuple[list[ManifestRecord], int]:
    """The records label_manifest labels next (classed first, at most cfg.limit) and how many are already done."""
    done = read_index(cfg.out / "labels.jsonl")
    records = list(read_manifest(cfg.manifest))
    todo = [r for r in records if r.id not in done and (r.klass is not None or cfg.include_unclassed)]
    # Classed products first, so a short run still yields a usable training set.
    todo.sort(key=lambda r: r.klass is None)
    if cfg.limit is not None:
        todo = todo[: cfg.limit]
    return todo, sum(r.id in done for r in records)


def label_manifest(cfg: LabelConfig, teacher: Teacher) -> LabelSummary:
    """Label every manifest record not yet in labels.jsonl; safe to interrupt and re-run."""
    index_path = cfg.out / "labels.jsonl"
    todo, skipped_done = pending_records(cfg)
    summary = LabelSummary(skipped_done=skipped_done)
    cfg.out.mkdir(parents=True, exist_ok=True)
    cache = LabelCache(cfg.cache, teacher.name) if cfg.cache else None
    with JsonlAppender(index_path) as index:  # repairs a line torn by an earlier kill before appending
        for record in tqdm(todo, desc=f"label ({teacher.name})", unit="img"):
            entry = label_one(record, resolve_image_path(cfg.manifest, record), teacher, cfg, cache)
            summary.from_cache += bool(entry.pop("cached", False))
            if entry["status"] == "ok":
                summary.ok += 1
            else:
                summary.rejected[entry["reason"]] = summary.rejected.get(entry["reason"], 0) + 1
                log.info("%s rejected: %s", record.id, entry["reason"])
            index.append_line(json.dumps(entry))
    return summary


def contact_sheet(cfg: LabelConfig, out_png: Path, ids: Iterable[str] | None = None, cell: int = 160,
                  columns: int = 10) -> Path:
    """Save a grid of photos with their masks tinted over them, for human review of the labels."""
    entries = read_index(cfg.out / "labels.jsonl")
    records = {r.id: r for r in read_manifest(cfg.manifest)}
    chosen = [i for i in (ids or entries) if entries.get(i, {}).get("status") == "ok" and i in records]
    if not chosen:
        raise ValueError("no labelled images to show")
    rows = math.ceil(len(chosen) / columns)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for n, pid in enumerate(chosen):
        record = records[pid]
        photo = open_upright(resolve_image_path(cfg.manifest, record))
        mask = Image.open(cfg.out / "masks" / f"{pid}.png").convert("L").point(lambda v: 255 if v else 0)
        tint = Image.new("RGB", photo.size, (255, 0, 80))
        overlay = Image.composite(Image.blend(photo, tint, 0.45), photo, mask)
        overlay.thumbnail((cell, cell))
        x, y = (n % columns) * cell, (n // columns) * (cell + 14)
        sheet.paste(overlay, (x, y))
        draw.text((x + 2, y + cell), f"{record.klass or 'other'} {pid}", fill="black")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_png(out_png, sheet)
    return out_png
