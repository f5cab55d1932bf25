"""HTML pages: the gallery, a product, the room view and the API docs."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory, url_for

from . import catalogue, openapi
from .api import cached_cutout
from .db import get_db
from .errors import ApiError

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

ROOM_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _page_arg() -> int:
    """The page number from the query string (bad values mean page 1: a page link should never error)."""
    try:
        return max(1, min(int(request.args.get("page", 1)), 1_000_000))
    except ValueError:
        return 1


@bp.get("/")
def gallery() -> str:
    """Grid of products with a class filter, name search and pagination."""
    klass = request.args.get("class") or None
    query = (request.args.get("q") or "").strip()[:100] or None
    page = _page_arg()
    per_page = current_app.config["PAGE_SIZE"]
    rows, total = catalogue.list_products(get_db(), klass=klass, query=query, page=page, per_page=per_page)
    pages = max(1, math.ceil(total / per_page))
    filters = {k: v for k, v in (("class", klass), ("q", query)) if v}
    return render_template("gallery.html", products=rows, total=total, page=page, pages=pages, klass=klass,
                           query=query or "", filters=filters, classes=catalogue.class_counts(get_db()))


@bp.get("/products/<int:product_id>")
def product(product_id: int) -> str:
    """A product: photo and transparent cut-out side by side, the detected class and the room-view link."""
    row = catalogue.get_product(get_db(), product_id)
    if row is None:
        abort(404, description=f"There is no product with id {product_id}.")
    detection: dict[str, Any] | None = None
    model_error = None
    try:
        meta = cached_cutout(row)[1]
        detection = meta["detections"][0] if meta["detections"] else None
    except ApiError as exc:
        model_error = exc.message
    # The model's own label and probability are for developers (?dev=1, and the API): a shopper sees the catalogue's
    # category, which a confident-looking wrong guess would only contradict.
    dev = request.args.get("dev") == "1"
    return render_template("product.html", product=row, detection=detection, model_error=model_error, dev=dev)


@bp.app_template_filter("shopper_class")
def shopper_class(name: str | None) -> str:
    """A model class as a shopper reads it ('wine-glass' -> 'Wine glass'); empty for None."""
    return (name or "").replace("-", " ").capitalize()


def sample_rooms() -> list[str]:
    """File names of the bundled sample room photos."""
    folder = Path(current_app.config["ROOMS_DIR"])
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in ROOM_SUFFIXES)


@bp.get("/room")
def room() -> str:
    """The room view: camera or room photo with draggable product overlays."""
    # isdecimal, not isdigit: "²" is a digit int() cannot parse.
    ids = [int(x) for x in request.args.getlist("product") if x.isdecimal()][:8]
    chosen = [r for r in (catalogue.get_product(get_db(), i) for i in ids) if r is not None]
    products = [catalogue.product_json(r, url_for) for r in chosen]
    rooms = [url_for("pages.room_photo", filename=name) for name in sample_rooms()]
    return render_template("room.html", products=products, rooms=rooms)


@bp.get("/rooms/<path:filename>")
def room_photo(filename: str):
    """A bundled sample room photo (send_from_directory refuses paths outside the folder)."""
    return send_from_directory(current_app.config["ROOMS_DIR"], filename, max_age=86400)


@bp.get("/docs")
def docs() -> str:
    """Human-readable API documentation rendered from the OpenAPI document."""
    return render_template("docs.html", spec=openapi.build_spec())
