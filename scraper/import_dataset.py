"""Write a manifest.jsonl for a local product-photo folder with a products.csv (e.g. ../shared/data/ikea)."""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from core.categories import CategoryMap
from core.manifest import ManifestRecord, ManifestWriter, parse_dimensions, read_manifest, sha256_file

log = logging.getLogger(__name__)


@dataclass
class ImportConfig:
    """Where the dataset is and where the manifest goes."""

    dataset_dir: Path
    out: Path
    source: str = "ikea"
    csv_name: str = "products.csv"


@dataclass
class ImportSummary:
    """Counts for the end-of-run report."""

    written: int = 0
    already: int = 0
    missing: int = 0
    unreadable: int = 0
    classed: int = 0


def import_dataset(cfg: ImportConfig, categories: CategoryMap) -> ImportSummary:
    """Append one manifest line per readable product photo; resumable (ids already present are skipped)."""
    csv_path = cfg.dataset_dir / cfg.csv_name
    if not csv_path.is_file():
        raise FileNotFoundError(f"no {cfg.csv_name} in {cfg.dataset_dir}")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    missing_cols = {"id", "file", "type"} - set(reader.fieldnames or ())  # the header, also when no rows follow
    if missing_cols:
        raise ValueError(f"{csv_path}: missing columns {sorted(missing_cols)}")
    done = {r.id for r in read_manifest(cfg.out)} if cfg.out.exists() else set()
    summary = ImportSummary(already=len(done))
    manifest_dir = cfg.out.resolve().parent
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with ManifestWriter(cfg.out) as writer:
        for row in tqdm(rows, desc="import", unit="img"):
            if not row.get("id") or not row.get("file"):  # a short or blank row (DictReader fills in None)
                summary.unreadable += 1
                log.warning("%s: skipping a row without id or file: %s", csv_path, row)
                continue
            if row["id"] in done:
                continue
            image_path = (cfg.dataset_dir / row["file"]).resolve()
            if not image_path.is_file():
                summary.missing += 1
                log.warning("missing image for %s: %s", row["id"], image_path)
                continue
            try:
                with Image.open(image_path) as im:
                    width, height = im.size
                    im.verify()
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                # verify() reports a broken PNG (bad CRC) as SyntaxError.
                summary.unreadable += 1
                log.warning("unreadable image %s: %s", image_path, exc)
                continue
            # A `class` column (e.g. ../shared/data/extra) names the model class directly; else the type is mapped.
            klass = row.get("class") or categories.classify(row.get("type"))
            if klass is not None and klass not in categories.classes[1:]:
                raise ValueError(f"{csv_path}: row {row['id']} names unknown class {klass!r}")
            summary.classed += klass is not None
            writer.append(ManifestRecord(
                id=row["id"],
                path=os.path.relpath(image_path, manifest_dir),
                sha256=sha256_file(image_path),
                width=width,
                height=height,
                category=row.get("type") or None,
                klass=klass,
                title=" ".join(x for x in (row.get("name"), row.get("color")) if x) or None,
                sku=row["id"],
                dimensions=parse_dimensions(row.get("size")),
                source=cfg.source,
                fetched_at=now,
            ))
            done.add(row["id"])
            summary.written += 1
    return summary
