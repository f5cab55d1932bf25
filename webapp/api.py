"""The JSON API: POST /predict, the catalogue endpoints, health/readiness, metrics and the OpenAPI document."""
from __future__ import annotations

import base64
import logging
import sqlite3
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for

from core import cutout, images, imaging
from core.segment import Prediction, Segmenter

from . import catalogue, openapi
from .db import get_db
from .errors import ApiError
from .shedding import Ticket

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

FORMATS = ("json", "png", "mask")
# Catalogue cut-outs are cropped almost tight so the image width is the product width (true-to-scale room view).
CATALOGUE_MARGIN = cutout.CATALOGUE_MARGIN


def _services():
    """The app's Services (imported late: the package imports this module)."""
    from . import services

    return services()


def _param(name: str, default: str) -> str:
    """A parameter from the form or the query string."""
    return (request.form.get(name) or request.args.get(name) or default).strip().lower()


def _bool_param(name: str, default: bool) -> bool:
    """A true/false parameter; anything else is a 400."""
    raw = _param(name, "true" if default else "false")
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ApiError(400, "invalid_parameter", f"{name} must be true or false, got {raw!r}")


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    """An integer query argument within [lo, hi]; anything else is a 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {lo} and {hi}")
    return value


def _rate_limit() -> None:
    """Apply the per-client token bucket to expensive endpoints (when enabled)."""
    limiter = _services().limiter
    if limiter is not None:
        limiter.check(request.remote_addr or "unknown")


def ready_segmenter() -> Segmenter:
    """The model session, or a 503 while the model is missing or broken."""
    holder = _services().segmenter
    seg = holder.get()
    if seg is None:
        raise ApiError(503, "model_not_ready", f"the model is not loaded: {holder.error}", {"Retry-After": "5"})
    return seg


def _model_info(seg: Segmenter) -> dict[str, str]:
    """Model name and version for responses."""
    return cutout.model_info(seg)


def _arrived_at() -> float:
    """When the server had the whole request (monotonic): stamped by the gunicorn worker (webapp.server), else now."""
    return request.environ.get("roomfit.arrived_at") or time.monotonic()


def run_prediction(seg: Segmenter, data: bytes, ticket: Ticket, *,
                   need_full: bool) -> tuple[images.Decoded, Prediction, float]:
    """Decode and segment an upload once the ticket's slots are free (a large upload also waits for a large-image
    slot); returns the decoded image, the prediction and the decode time in ms."""
    max_pixels = current_app.config["MAX_IMAGE_PIXELS"]
    try:
        width, height = images.open_image(data, max_pixels).size  # the header only: sizes the work before it starts
        ticket.start(width * height)
        t0 = time.perf_counter()
        limits = cutout.DecodeLimits(max_pixels, current_app.config["MAX_OUTPUT_PIXELS"])
        decoded = cutout.decode_for(seg, data, limits, need_full=need_full)
    except images.ImageError as exc:  # core knows the status and code; the API owns the error shape
        raise ApiError(exc.status, exc.code, exc.message) from exc
    decode_ms = (time.perf_counter() - t0) * 1000
    pred = seg.predict(decoded.model_input, decoded.size, decoded.guide)
    metrics = _services().metrics
    metrics.inference.observe(pred.timing_ms["inference"] / 1000)
    metrics.predictions.labels(pred.detections[0].label if pred.detections else "none").inc()
    return decoded, pred, decode_ms


@bp.post("/predict")
def predict() -> Response:
    """Segment an uploaded photo: JSON with a base64 mask (default), the RGBA cut-out, or the mask PNG."""
    t_start = time.perf_counter()
    _rate_limit()
    # Admission first, before the form is even parsed: a refusal under overload must cost next to nothing.
    with _services().gate.admit(_arrived_at()) as ticket:
        return _predict(ticket, t_start)


def _predict(ticket: Ticket, t_start: float) -> Response:
    """The body of /predict, within its admission ticket."""
    fmt = _param("format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_parameter", f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    crop = _bool_param("crop", True)
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       "send the image as multipart/form-data in a field named 'image'")
    upload = request.files.get("image")
    if upload is None:
        raise ApiError(400, "missing_field", "multipart field 'image' is required")
    data = upload.read()
    seg = ready_segmenter()
    decoded, pred, decode_ms = run_prediction(seg, data, ticket, need_full=(fmt == "png"))
    t_enc = time.perf_counter()
    label = pred.detections[0].label if pred.detections else "none"
    if fmt == "png":
        bbox = pred.detections[0].bbox if (pred.detections and crop) else None
        resp = Response(imaging.png_bytes(imaging.cutout(decoded.full, pred.mask, bbox)), mimetype="image/png")
        resp.headers["X-Detected-Class"] = label
        resp.headers["X-Image-Scale"] = f"{decoded.scale:.6g}"
        return resp
    mask_png = imaging.mask_png(pred.mask)
    if fmt == "mask":
        resp = Response(mask_png, mimetype="image/png")
        resp.headers["X-Detected-Class"] = label
        resp.headers["X-Image-Scale"] = f"{decoded.scale:.6g}"
        return resp
    timing = {"decode": decode_ms, **pred.timing_ms, "encode": (time.perf_counter() - t_enc) * 1000,
              "total": (time.perf_counter() - t_start) * 1000}
    return jsonify({
        "success": True,
        "predictions": [d.as_dict() for d in pred.detections],
        "mask": base64.b64encode(mask_png).decode("ascii"),
        "width": decoded.size[0],
        "height": decoded.size[1],
        "scale": round(decoded.scale, 6),
        "model": _model_info(seg),
        "timing_ms": {k: round(v, 2) for k, v in timing.items()},
    })


def _product_or_404(product_id: int) -> sqlite3.Row:
    """The product row, or a 404."""
    row = catalogue.get_product(get_db(), product_id)
    if row is None:
        raise ApiError(404, "not_found", f"no product with id {product_id}")
    return row


def cutout_key(seg: Segmenter, row: sqlite3.Row) -> str:
    """Cache key part of a product's cut-out besides the photo (core.cutout.cutout_key)."""
    return cutout.cutout_key(seg.model_hash, catalogue.is_glass(row))


def cached_cutout(row: sqlite3.Row) -> tuple[bytes, dict[str, Any]]:
    """A catalogue product's cut-out PNG and detection info, from the cache or computed and cached.

    Catalogue cut-outs are made once, so they get the slower see-through refinement (core.matting) at the photo's
    resolution: openings and glass show what is behind them, edges carry no backdrop fringe. The batch job
    (`python -m training cutouts`) makes the same entries ahead of time with core.cutout.make_cutout."""
    seg = ready_segmenter()
    cache = _services().cache
    key = cutout_key(seg, row)
    hit = cache.get(row["image_sha256"], key)
    if hit is not None:
        return hit
    with _services().gate.admit(_arrived_at()) as ticket:
        try:
            with open(row["image_path"], "rb") as f:
                data = f.read()
            decoded, pred, _ = run_prediction(seg, data, ticket, need_full=True)
        except (OSError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.code == "overloaded":
                raise
            # The product exists; its stored photo is missing or damaged (decode's 4xx answers are for uploads).
            # That is the server's fault, not a bad request.
            log.error("product %s: catalogue photo %s unusable: %s", row["id"], row["image_path"], exc)
            raise ApiError(500, "photo_unreadable",
                           f"the catalogue photo of product {row['id']} cannot be read") from exc
        png, meta = cutout.compose_cutout(seg, decoded.full, pred, glass=catalogue.is_glass(row))
    cache.put(row["image_sha256"], key, png, meta)
    return png, meta


@bp.get("/api/products")
def products() -> Response:
    """List products with optional class filter, search and paging."""
    per_page = _int_arg("per_page", current_app.config["PAGE_SIZE"], 1, 100)
    page = _int_arg("page", 1, 1, 1_000_000)
    klass = request.args.get("class") or None
    query = (request.args.get("q") or "").strip()[:100] or None
    rows, total = catalogue.list_products(get_db(), klass=klass, query=query, page=page, per_page=per_page)
    return jsonify({
        "success": True,
        "products": [catalogue.product_json(r, url_for) for r in rows],
        "page": page, "per_page": per_page, "total": total, "pages": max(1, -(-total // per_page)),
        "classes": [{"name": c, "count": n} for c, n in catalogue.class_counts(get_db())],
    })


@bp.get("/api/products/<int:product_id>")
def product(product_id: int) -> Response:
    """One product, with its detection when the model is ready."""
    row = _product_or_404(product_id)
    body = {"success": True, "product": catalogue.product_json(row, url_for)}
    if _services().segmenter.get() is not None:
        try:
            body["cutout"] = cached_cutout(row)[1]
        except ApiError as exc:  # the product's details stand without its cut-out (logged in cached_cutout)
            body["cutout_error"] = {"code": exc.code, "message": exc.message}
    return jsonify(body)


@bp.get("/api/products/<int:product_id>/image")
def product_image(product_id: int) -> Response:
    """The product's original photo."""
    row = _product_or_404(product_id)
    try:
        return send_file(row["image_path"], max_age=86400)
    except FileNotFoundError as exc:
        log.error("product %s: catalogue photo %s missing", product_id, row["image_path"])
        raise ApiError(500, "photo_unreadable", f"the catalogue photo of product {product_id} cannot be read") from exc


@bp.get("/api/products/<int:product_id>/cutout.png")
def product_cutout(product_id: int) -> Response:
    """The product's transparent cut-out (cached on disk per image and model)."""
    row = _product_or_404(product_id)
    _rate_limit()
    png, meta = cached_cutout(row)
    resp = Response(png, mimetype="image/png")
    resp.headers["X-Detected-Class"] = meta["detections"][0]["label"] if meta["detections"] else "none"
    resp.set_etag(f"{row['image_sha256'][:16]}-{cutout_key(ready_segmenter(), row)}")
    resp.cache_control.public = True
    resp.cache_control.max_age = 3600
    return resp.make_conditional(request)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"success": True, "status": "alive"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the model is loaded and runs."""
    holder = _services().segmenter
    seg = holder.get()
    if seg is None:
        raise ApiError(503, "model_not_ready", f"the model is not loaded: {holder.error}", {"Retry-After": "5"})
    return jsonify({"success": True, "status": "ready", "model": _model_info(seg)})


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics in the text exposition format."""
    return _services().metrics.exposition()


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3 description of this API."""
    return jsonify(openapi.build_spec())
