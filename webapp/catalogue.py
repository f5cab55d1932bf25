"""The product catalogue: importing manifests/CSV files and the (parameterised) queries the pages and API use."""
from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from core import cutout
from core.manifest import parse_product_size

from .cache import file_sha256

log = logging.getLogger(__name__)

CUTOUT_MARGIN = cutout.CATALOGUE_MARGIN
_DIM_KEYS = ("width_cm", "depth_cm", "height_cm", "diameter_cm")
_COLUMNS = ("sku", "name", "category", "class", "image_path", "image_sha256", "width_px", "height_px",
            "dimensions_text", *_DIM_KEYS, "source", "source_url")
# Row fields stored as text: a manifest line may hold anything JSON can (a list, an object) in them.
_TEXT_KEYS = ("sku", "name", "category", "class", "path", "sha256", "dimensions_text", "source", "source_url")


class CatalogueError(Exception):
    """An import that cannot go ahead; the message names the file (and the line when known)."""


@dataclass
class ImportStats:
    """What an import did."""

    imported: int = 0
    skipped: int = 0


def _first(row: dict[str, Any], *keys: str) -> Any:
    """The first non-empty value among keys."""
    for k in keys:
        v = row.get(k)
        if v not in (None, ""):
            return v
    return None


def _number(value: Any) -> float | None:
    """A positive float, or None for empty or unparsable values."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _pixels(value: Any) -> int | None:
    """A positive pixel count (fractions truncated), or None for empty, unparsable or out-of-range values."""
    f = _number(value)
    return int(f) if f is not None and f < 2**63 else None  # SQLite integers are 64-bit


def _text(value: Any) -> str | None:
    """Value as text for a TEXT column (numbers too), None for empty values."""
    return None if value in (None, "") else str(value)


def _non_text_keys(row: dict[str, Any]) -> list[str]:
    """The text fields of row holding something other than a string or a number (a list, an object, a boolean)."""
    return [k for k in _TEXT_KEYS
            if row[k] is not None and (isinstance(row[k], bool) or not isinstance(row[k], (str, int, float)))]


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a manifest.jsonl (the scraper's contract, see DEVELOPERS.md); bad lines are skipped."""
    # Read here rather than through scraper.manifest: parts talk through files, and the serving image ships without
    # scraper/ (and its PyYAML). Same tolerance as the scraper's reader: a torn or bad line is skipped, never fatal;
    # decoding line by line makes a line that is not UTF-8 (a write torn inside a character) one more bad line.
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                log.warning("%s:%d: skipping bad line (%s)", path, lineno, exc)
                continue
            if not isinstance(d, dict):
                log.warning("%s:%d: skipping a line that is not an object", path, lineno)
                continue
            dims = d.get("dimensions") if isinstance(d.get("dimensions"), dict) else {}
            yield lineno, {
                "sku": _first(d, "sku", "id"), "name": _first(d, "title", "name"), "category": d.get("category"),
                "class": d.get("class"), "path": d.get("path"), "sha256": d.get("sha256"),
                "width_px": d.get("width"), "height_px": d.get("height"), "dimensions_text": dims.get("text"),
                **{k: dims.get(k) for k in _DIM_KEYS},
                "source": d.get("source"), "source_url": _first(d, "page_url", "image_url"),
            }


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a CSV with manifest-like columns (sku/id, name/title, class, path/file, *_cm, size...)."""
    # Decoded whole and up front, unlike a manifest: a CSV in another encoding (a spreadsheet's Latin-1 export) is
    # wrong throughout, so it is refused with the first bad line rather than half imported. Spreadsheets write
    # "CSV UTF-8" with a byte-order mark, which would otherwise stick to the first column's name.
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CatalogueError(f"{path}:{line}: not UTF-8 text; save the file as CSV UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            yield reader.line_num, {
                "sku": _first(row, "sku", "id"), "name": _first(row, "name", "title"),
                "category": _first(row, "category", "type"), "class": _first(row, "class"),
                "path": _first(row, "path", "file", "image"), "sha256": _first(row, "sha256"),
                "width_px": _first(row, "width"), "height_px": _first(row, "height"),
                "dimensions_text": _first(row, "dimensions", "size"), **{k: row.get(k) for k in _DIM_KEYS},
                "source": _first(row, "source"), "source_url": _first(row, "page_url", "url", "source_url"),
            }
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
        # The underlying reader's line count: DictReader's own is only updated after a row was read.
        raise CatalogueError(f"{path}:{reader.reader.line_num}: not a readable CSV row ({exc})") from exc


def import_file(db: sqlite3.Connection, source: Path, *, include_unclassified: bool = False) -> ImportStats:
    """Upsert the products of a manifest.jsonl or CSV in one transaction; image paths are relative to its folder."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'product'").fetchone():
        raise CatalogueError(f"{source}: the database has no product table; run `flask --app webapp init-db` first")
    rows = _csv_rows(source) if source.suffix.lower() == ".csv" else _manifest_rows(source)
    base = source.resolve().parent
    stats = ImportStats()
    # One transaction (committed on success, rolled back on any error): a failed import leaves the catalogue as it was.
    with db:
        for lineno, row in rows:
            bad = _non_text_keys(row)
            if bad:
                # Skipped and counted like a row without its photo, not fatal: one odd line in a scraped manifest
                # should not stop the rest of the catalogue (the same tolerance as for unparsable lines).
                log.warning("%s:%d: skipping %s: %s must be text or a number", source, lineno, row["sku"],
                            ", ".join(bad))
                stats.skipped += 1
                continue
            image = Path(str(row["path"] or ""))
            image = image if image.is_absolute() else base / image
            if not row["sku"] or not row["path"] or not image.is_file():
                log.warning("%s:%d: skipping %s: image %s not found", source, lineno, row["sku"], image)
                stats.skipped += 1
                continue
            if not row["class"] and not include_unclassified:
                stats.skipped += 1
                continue
            sizes = {k: _number(row[k]) for k in _DIM_KEYS}
            if not any(sizes.values()) and _text(row["dimensions_text"]):
                # Only the shop's text (products.csv's size column, a manifest without parsed values): read it.
                parsed = parse_product_size(_text(row["dimensions_text"]), _text(row["category"]))
                sizes = {k: getattr(parsed, k) for k in _DIM_KEYS}
            values = {
                "sku": str(row["sku"]), "name": str(row["name"] or row["sku"]), "category": _text(row["category"]),
                "class": _text(row["class"]), "image_path": str(image.resolve()),
                "image_sha256": _text(row["sha256"]) or file_sha256(image),
                "width_px": _pixels(row["width_px"]), "height_px": _pixels(row["height_px"]),
                "dimensions_text": _text(row["dimensions_text"]), **sizes,
                "source": _text(row["source"]), "source_url": _text(row["source_url"]),
            }
            db.execute(
                f"INSERT INTO product ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
                f"ON CONFLICT(sku) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])}",
                [values[c] for c in _COLUMNS],
            )
            stats.imported += 1
    log.info("imported %d products from %s (%d skipped)", stats.imported, source, stats.skipped)
    return stats


def _like(text: str) -> str:
    """A LIKE pattern matching text anywhere, with LIKE's wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_products(db: sqlite3.Connection, *, klass: str | None, query: str | None, page: int,
                  per_page: int) -> tuple[list[sqlite3.Row], int]:
    """One page of products filtered by class and a name/sku/category search, and the total match count."""
    where, params = [], []
    if klass:
        where.append("class = ?")
        params.append(klass)
    if query and "\x00" in query:
        # SQLite's LIKE stops reading its pattern at a NUL, so "%\x00%" would match everything; no name holds one.
        where.append("0")
    elif query:
        where.append("(name LIKE ? ESCAPE '\\' OR sku LIKE ? ESCAPE '\\' OR category LIKE ? ESCAPE '\\')")
        params += [_like(query)] * 3
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    total = db.execute(f"SELECT COUNT(*) FROM product {clause}", params).fetchone()[0]
    rows = db.execute(f"SELECT * FROM product {clause} ORDER BY class, name, id LIMIT ? OFFSET ?",
                      [*params, per_page, (page - 1) * per_page]).fetchall()
    return rows, total


def get_product(db: sqlite3.Connection, product_id: int) -> sqlite3.Row | None:
    """One product by id (None for an id no SQLite row can have, rather than an OverflowError)."""
    if not 0 <= product_id < 2**63:
        return None
    return db.execute("SELECT * FROM product WHERE id = ?", (product_id,)).fetchone()


def class_counts(db: sqlite3.Connection) -> list[tuple[str, int]]:
    """Classes present in the catalogue with their product counts."""
    rows = db.execute("SELECT class, COUNT(*) FROM product WHERE class IS NOT NULL GROUP BY class ORDER BY class")
    return [(r[0], r[1]) for r in rows]


def is_glass(row: sqlite3.Row) -> bool:
    """Whether the shop describes the product as glass (its cut-out then lets the room show through, dimmed)."""
    return cutout.is_glass(row["name"], row["category"], row["class"])


def product_json(row: sqlite3.Row, url_for: Any) -> dict[str, Any]:
    """Public JSON form of a product row (no file-system paths)."""
    return {
        "id": row["id"], "sku": row["sku"], "name": row["name"], "category": row["category"],
        "class": row["class"],
        "dimensions": {"text": row["dimensions_text"], **{k: row[k] for k in _DIM_KEYS}},
        "image_url": url_for("api.product_image", product_id=row["id"]),
        "cutout_url": url_for("api.product_cutout", product_id=row["id"]),
        "cutout_margin": CUTOUT_MARGIN,
        "page_url": url_for("pages.product", product_id=row["id"]),
        "source_url": row["source_url"],
    }
