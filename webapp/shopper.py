"""Products a shopper added (by page URL or upload): private, kept for a limited time, apart from the catalogue.

A product is reachable only through its opaque id (128 random bits), which only the shopper who added it is given;
nothing lists these products. Rows live in their own SQLite file (`SHOPPER_DATABASE`) because the catalogue database
is read-only in the container; pictures are stored once by content hash under `SHOPPER_DIR`. Expired products are
deleted on the next write, and pictures no product uses any more with them.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, g

from core.manifest import Dimensions, atomic_write_bytes

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS shopper_product (
  id TEXT PRIMARY KEY,             -- opaque: secrets.token_urlsafe(16)
  created_at REAL NOT NULL,
  expires_at REAL NOT NULL,
  source_url TEXT,                 -- the product page (NULL for an upload)
  title TEXT,
  dimensions_text TEXT,
  width_cm REAL,
  depth_cm REAL,
  height_cm REAL,
  diameter_cm REAL
);
CREATE TABLE IF NOT EXISTS shopper_picture (
  product_id TEXT NOT NULL REFERENCES shopper_product (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  sha256 TEXT NOT NULL,            -- file name under SHOPPER_DIR, and the cut-out cache key
  ext TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  source_url TEXT,
  PRIMARY KEY (product_id, idx)
);
CREATE INDEX IF NOT EXISTS shopper_product_expiry ON shopper_product (expires_at);
"""
MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass
class Picture:
    """A stored picture of a shopper's product."""

    sha256: str
    ext: str
    width: int
    height: int
    source_url: str | None = None


@dataclass
class NewProduct:
    """What the intake found, before it is stored."""

    title: str | None
    dimensions: Dimensions
    source_url: str | None
    pictures: list[Picture] = field(default_factory=list)


def get_shopper_db() -> sqlite3.Connection:
    """The request's connection to the shopper database (created with its tables on first use; db.close_db closes
    it)."""
    if "shopper_db" not in g:
        path = Path(current_app.config["SHOPPER_DATABASE"])
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=10)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        # The tables are made once per app (and file), not on every request's connection.
        made = current_app.extensions.setdefault("shopper_schema", set())
        if str(path) not in made:
            db.executescript(SCHEMA)
            made.add(str(path))
        g.shopper_db = db
    return g.shopper_db


def picture_dir() -> Path:
    """Where pictures are stored (created on first use)."""
    folder = Path(current_app.config["SHOPPER_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def picture_path(sha256: str, ext: str) -> Path:
    """The stored file of a picture."""
    return picture_dir() / f"{sha256}.{ext}"


def store_picture_bytes(data: bytes, ext: str) -> str:
    """Write a picture once by content hash (temp file + rename); returns its sha256."""
    digest = hashlib.sha256(data).hexdigest()
    target = picture_path(digest, ext)
    if target.exists():
        os.utime(target)  # fresh again: a purge must not take a file a new product is about to use
    else:
        atomic_write_bytes(target, data)
    return digest


def add_product(db: sqlite3.Connection, product: NewProduct, ttl_seconds: float) -> str:
    """Purge expired products, then store this one and its pictures in one transaction; returns its opaque id."""
    purge_expired(db)
    product_id = secrets.token_urlsafe(16)
    now = time.time()
    d = product.dimensions
    with db:
        db.execute("INSERT INTO shopper_product (id, created_at, expires_at, source_url, title, dimensions_text, "
                   "width_cm, depth_cm, height_cm, diameter_cm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (product_id, now, now + ttl_seconds, product.source_url, product.title, d.text, d.width_cm,
                    d.depth_cm, d.height_cm, d.diameter_cm))
        db.executemany("INSERT INTO shopper_picture (product_id, idx, sha256, ext, width, height, source_url) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(product_id, i, p.sha256, p.ext, p.width, p.height, p.source_url)
                        for i, p in enumerate(product.pictures)])
    return product_id


def get_product(db: sqlite3.Connection, product_id: str,
                live_only: bool = True) -> tuple[sqlite3.Row, list[sqlite3.Row]] | None:
    """A product and its pictures, or None; with live_only, an expired product is None too."""
    row = db.execute("SELECT * FROM shopper_product WHERE id = ? AND expires_at > ?",
                     (product_id, time.time() if live_only else float("-inf"))).fetchone()
    if row is None:
        return None
    pictures = db.execute("SELECT * FROM shopper_picture WHERE product_id = ? ORDER BY idx", (product_id,)).fetchall()
    return row, pictures


def delete_product(db: sqlite3.Connection, product_id: str) -> bool:
    """Delete a product and, now, its pictures that no other product uses; False when there was none."""
    own = {f"{r['sha256']}.{r['ext']}" for r in
           db.execute("SELECT sha256, ext FROM shopper_picture WHERE product_id = ?", (product_id,))}
    with db:
        gone = db.execute("DELETE FROM shopper_product WHERE id = ?", (product_id,)).rowcount
    used = _used_pictures(db)
    for name in own - used:
        (picture_dir() / name).unlink(missing_ok=True)
    return gone > 0


def purge_expired(db: sqlite3.Connection) -> int:
    """Delete expired products and the pictures nothing uses any more; returns how many products went."""
    with db:
        gone = db.execute("DELETE FROM shopper_product WHERE expires_at <= ?", (time.time(),)).rowcount
    if gone:
        _remove_unused_pictures(db)
    return gone


def _used_pictures(db: sqlite3.Connection) -> set[str]:
    """File names of the pictures stored products refer to."""
    return {f"{r['sha256']}.{r['ext']}" for r in db.execute("SELECT sha256, ext FROM shopper_picture")}


def _remove_unused_pictures(db: sqlite3.Connection, grace_seconds: float = 600) -> None:
    """Delete picture files no stored product refers to. A file younger than `grace_seconds` is left alone: another
    request may have stored it for a product it has not inserted yet."""
    used = _used_pictures(db)
    cutoff = time.time() - grace_seconds
    for path in picture_dir().glob("*.*"):
        if path.name.startswith(".") or path.name in used:  # "." : a write in progress
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass  # another worker removed it first


def dimensions_json(row: sqlite3.Row) -> dict[str, Any]:
    """The stated dimensions of a product row as the API shows them."""
    return {k: row[k] for k in ("width_cm", "depth_cm", "height_cm", "diameter_cm")} | {"text": row["dimensions_text"]}


def size_known(row: sqlite3.Row) -> bool:
    """Whether the room view can place the product at true size (it needs a width or a diameter)."""
    return bool(row["width_cm"] or row["diameter_cm"])
