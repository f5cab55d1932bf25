"""Bring your own product: a product page URL or an uploaded photo becomes a private product with a cut-out.

`POST /api/intake` takes JSON or form `{"url": ...}` or a multipart `image`; the page is fetched through
`SafeFetcher` (server-side request forgery guarded), read with the shared extraction (`core.extract`), and up to
`INTAKE_MAX_PICTURES` of its pictures are downloaded, decoded and stored. The shopper then picks one; its cut-out is
made by the served model and cached like a catalogue cut-out (same key: picture hash + model hash).
"""
from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for
from w3lib.encoding import html_to_unicode

from core import images
from core.manifest import Dimensions, parse_dimensions

from . import shopper
from .api import CATALOGUE_MARGIN
from .errors import ApiError
from .safefetch import FetchRefused, SafeFetcher

log = logging.getLogger(__name__)

bp = Blueprint("intake", __name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "MPO": "jpg"}
_ID = re.compile(r"^[A-Za-z0-9_-]{16,32}$")


def _services():
    """The app's Services (imported late: the package imports this module)."""
    from . import services

    return services()


def _fetcher() -> SafeFetcher:
    """The app's SSRF-guarded fetcher."""
    return _services().fetcher


def _refused(exc: FetchRefused) -> ApiError:
    """A fetch refusal as the API's error."""
    return ApiError(exc.status, exc.code, exc.message)


def _client_limit() -> None:
    """Per-client limit on intakes: each one may fetch a page and several pictures from the web."""
    limiter = _services().intake_limiter
    if limiter is not None:
        limiter.check(request.remote_addr or "unknown")


def _checked_picture(data: bytes, source_url: str | None) -> shopper.Picture:
    """Decode picture bytes fully (same format and pixel limits as /predict) and store them; ImageError if unusable."""
    cfg = current_app.config
    img = images.open_image(data, cfg["MAX_IMAGE_PIXELS"])
    fmt = img.format or ""
    decoded = images.decode(data, (8, 8), max_pixels=cfg["MAX_IMAGE_PIXELS"], need_full=False)  # every pixel read
    width, height = decoded.size
    if min(width, height) < cfg["INTAKE_MIN_SIDE"]:
        raise images.ImageError(422, "image_too_small",
                                f"the picture is {width}x{height}; at least {cfg['INTAKE_MIN_SIDE']} px a side is "
                                "needed for a cut-out")
    ext = _EXT.get(fmt, "jpg")
    return shopper.Picture(shopper.store_picture_bytes(data, ext), ext, width, height, source_url)


def _page_product(url: str) -> shopper.NewProduct:
    """Fetch a product page, extract its facts and download its pictures (best first)."""
    fetcher = _fetcher()
    page = fetcher.fetch(url, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
    if page.content_type.split(";")[0].strip().lower() not in _HTML_TYPES:
        raise FetchRefused("not_html", f"that address is not a web page (it is {page.content_type or 'unknown'})",
                           422)
    _, text = html_to_unicode(page.content_type, page.body)
    # Imported on first use: the extraction stack (lxml, BeautifulSoup, extruct with rdflib and html5lib) adds ~19 MB
    # to every worker's resident memory, and only "add by URL" needs it (benchmarks/api_bench.py).
    from core.extract import extract_product

    info = extract_product(text, page.url)
    product = shopper.NewProduct(title=info.title, dimensions=parse_dimensions(info.dimensions_text),
                                 source_url=page.url)
    limit = current_app.config["INTAKE_MAX_PICTURES"]
    failures: list[str] = []
    for candidate in info.images:
        if len(product.pictures) >= limit:
            break
        for picture_url in [candidate.url, *candidate.alternates][:3]:  # the largest rendition that answers
            try:
                got = fetcher.fetch(picture_url, accept="image/webp,image/jpeg,image/png;q=0.9,*/*;q=0.1")
                product.pictures.append(_checked_picture(got.body, got.url))
                break
            except (FetchRefused, images.ImageError) as exc:
                failures.append(f"{picture_url}: {getattr(exc, 'message', exc)}")
    for failure in failures:
        log.info("intake %s: picture skipped: %s", url, failure)
    if not product.pictures:
        raise ApiError(422, "no_pictures", "no product pictures could be found on that page; try uploading a photo")
    return product


def _upload_product() -> shopper.NewProduct:
    """A product from an uploaded photo, with the dimensions the shopper typed (if any)."""
    upload = request.files.get("image")
    if upload is None:
        raise ApiError(400, "missing_field", "send a product page 'url', or a photo in the multipart field 'image'")
    data = upload.read()
    try:
        picture = _checked_picture(data, None)
    except images.ImageError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    dims = Dimensions()
    for key in ("width_cm", "depth_cm", "height_cm", "diameter_cm"):
        raw = (request.form.get(key) or "").strip()
        if raw:
            try:
                value = float(raw)
            except ValueError:
                raise ApiError(400, "invalid_parameter", f"{key} must be a number of centimetres") from None
            if not 0 < value <= 2000:
                raise ApiError(400, "invalid_parameter", f"{key} must be between 0 and 2000 cm")
            setattr(dims, key, value)
    # The file name stands in for a title the shopper did not type ("my-sofa.jpg" -> "my-sofa").
    stem = (upload.filename or "").strip().rsplit(".", 1)[0]
    title = (request.form.get("title") or "").strip()[:200] or stem[:200] or None
    return shopper.NewProduct(title=title, dimensions=dims, source_url=None, pictures=[picture])


def product_json(row: Any, pictures: list[Any]) -> dict[str, Any]:
    """A shopper's product as the API shows it."""
    pid = row["id"]
    return {
        "id": pid,
        "title": row["title"],
        "source_url": row["source_url"],
        "dimensions": shopper.dimensions_json(row),
        "size_known": shopper.size_known(row),
        "expires_at": row["expires_at"],
        "cutout_margin": CATALOGUE_MARGIN,  # cut-outs are made (and cropped) as the catalogue's are
        "pictures": [{
            "index": p["idx"], "width": p["width"], "height": p["height"],
            "url": url_for("intake.picture", product_id=pid, index=p["idx"]),
            "cutout_url": url_for("intake.picture_cutout", product_id=pid, index=p["idx"]),
        } for p in pictures],
    }


def _load(product_id: str) -> tuple[Any, list[Any]]:
    """A live product of the shopper's, or 404 (expired, deleted and never-existing ids look the same)."""
    found = shopper.get_product(shopper.get_shopper_db(), product_id) if _ID.match(product_id) else None
    if found is None:
        raise ApiError(404, "not_found", "no such product: it may have expired")
    return found


def _picture(product_id: str, index: int) -> tuple[Any, Any]:
    """A product and one of its picture rows, or 404."""
    row, pictures = _load(product_id)
    if not 0 <= index < len(pictures):
        raise ApiError(404, "not_found", f"the product has no picture {index}")
    return row, pictures[index]


@bp.post("/api/intake")
def intake() -> tuple[Response, int]:
    """Add a product from a page URL (JSON or form field `url`) or an uploaded photo (multipart `image`)."""
    _client_limit()
    body = request.get_json(silent=True) if request.is_json else None
    url = (body or {}).get("url") if isinstance(body, dict) else request.form.get("url")
    if request.is_json and not isinstance(body, dict):
        raise ApiError(400, "invalid_json", 'send a JSON object such as {"url": "https://..."}')
    if url is not None and not isinstance(url, str):
        raise ApiError(400, "invalid_parameter", "url must be a string")
    try:
        new = _page_product(url.strip()) if url and url.strip() else _upload_product()
    except FetchRefused as exc:
        raise _refused(exc) from exc
    except images.ImageError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    db = shopper.get_shopper_db()
    product_id = shopper.add_product(db, new, current_app.config["INTAKE_TTL_HOURS"] * 3600)
    row, pictures = shopper.get_product(db, product_id, live_only=False)  # just written: it exists
    log.info("intake: product %s… with %d picture(s) from %s", product_id[:6], len(pictures),
             new.source_url or "an upload")
    return jsonify({"success": True, "product": product_json(row, pictures)}), 201


@bp.get("/api/intake/<product_id>")
def get_product(product_id: str) -> Response:
    """A shopper's product."""
    row, pictures = _load(product_id)
    return jsonify({"success": True, "product": product_json(row, pictures)})


@bp.delete("/api/intake/<product_id>")
def delete_product(product_id: str) -> Response:
    """Forget a shopper's product now rather than when it expires."""
    _load(product_id)
    shopper.delete_product(shopper.get_shopper_db(), product_id)
    return jsonify({"success": True})


@bp.get("/api/intake/<product_id>/pictures/<int:index>")
def picture(product_id: str, index: int) -> Response:
    """A stored picture (thumbnails to choose from)."""
    _, p = _picture(product_id, index)
    resp = send_file(shopper.picture_path(p["sha256"], p["ext"]), mimetype=shopper.MIME[p["ext"]], max_age=3600)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp


@bp.get("/api/intake/<product_id>/pictures/<int:index>/cutout.png")
def picture_cutout(product_id: str, index: int) -> Response:
    """The chosen picture's cut-out (computed once per picture and model, then cached)."""
    from .api import cached_cutout  # the catalogue's cut-out path: same model, refinement and cache

    row, p = _picture(product_id, index)
    png, meta = cached_cutout({"id": f"shopper:{product_id[:6]}", "image_sha256": p["sha256"],
                               "image_path": str(shopper.picture_path(p["sha256"], p["ext"])),
                               "name": row["title"], "category": None, "class": None})
    resp = Response(png, mimetype="image/png")
    resp.headers["Cache-Control"] = "private, max-age=3600"
    detections = meta.get("detections") or []
    resp.headers["X-Detected-Class"] = detections[0]["label"] if detections else "none"
    return resp
