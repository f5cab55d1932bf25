"""Catalogue API, cut-out cache, health/readiness/metrics, OpenAPI, security headers and error shapes."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from webapp.ratelimit import TokenBucketLimiter
from webapp.security import CSP


def _products(client, **params):
    resp = client.get("/api/products", query_string=params)
    assert resp.status_code == 200
    return resp.get_json()


def test_products_list_paging_filter_and_search(client):
    body = _products(client, per_page=2)
    # Four classified products imported (the unclassified shelf and the torn manifest line are skipped).
    assert body["total"] == 4 and body["pages"] == 2 and len(body["products"]) == 2
    assert {c["name"] for c in body["classes"]} == {"chair", "couch", "bowl"}
    page2 = _products(client, per_page=2, page=2)
    ids = {p["id"] for p in body["products"]} | {p["id"] for p in page2["products"]}
    assert len(ids) == 4
    chairs = _products(client, **{"class": "chair"})
    assert chairs["total"] == 2 and all(p["class"] == "chair" for p in chairs["products"])
    found = _products(client, q="stocksund")
    assert [p["sku"] for p in found["products"]] == ["s1"]
    sofa = found["products"][0]
    assert sofa["dimensions"]["width_cm"] == 200.0
    assert "image_path" not in sofa and "/" not in sofa["sku"]
    assert sofa["cutout_url"] == f"/api/products/{sofa['id']}/cutout.png"


def test_search_treats_like_wildcards_and_quotes_literally(client):
    assert _products(client, q="100%")["total"] == 1  # "RUNDLIG 100% bowl_x"
    assert _products(client, q="%")["total"] == 1
    assert _products(client, q="_x")["total"] == 1
    assert _products(client, q="' OR 1=1 --")["total"] == 0


def test_products_bad_paging_is_400(client):
    for params in ({"page": "zero"}, {"page": 0}, {"per_page": 1000}):
        resp = client.get("/api/products", query_string=params)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_parameter"


def test_product_detail_and_404(client):
    pid = _products(client, q="BERNHARD")["products"][0]["id"]
    body = client.get(f"/api/products/{pid}").get_json()
    assert body["product"]["name"] == "BERNHARD Chair"
    assert body["cutout"]["detections"][0]["label"] == "chair"
    resp = client.get("/api/products/99999")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


def test_product_image(client):
    pid = _products(client)["products"][0]["id"]
    resp = client.get(f"/api/products/{pid}/image")
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"
    assert client.get("/api/products/99999/image").status_code == 404


def test_cutout_is_rgba_cached_on_disk_and_conditional(app, client, tmp_path):
    pid = _products(client, q="BERNHARD")["products"][0]["id"]
    resp = client.get(f"/api/products/{pid}/cutout.png")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.headers["X-Detected-Class"] == "chair"
    cut = Image.open(io.BytesIO(resp.data))
    assert cut.mode == "RGBA"
    # The product box is 80x110 px: the catalogue cut-out is cropped almost tight (true-to-scale room view).
    assert 80 <= cut.width <= 86 and 110 <= cut.height <= 116
    assert np.asarray(cut)[..., 3].max() == 255
    cached = list((tmp_path / "cache").rglob("*.png"))
    assert len(cached) == 1
    # The key is image sha256 + model hash + see-through refinement version: the folder is the model hash with the
    # refinement's version, the file the image hash.
    from core.matting import MATTING_VERSION

    model_hash = app.extensions["roomfit"].segmenter.get().model_hash
    assert cached[0].parent.name == f"{model_hash}-m{MATTING_VERSION}"
    again = client.get(f"/api/products/{pid}/cutout.png", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304
    cached[0].write_bytes(b"served from cache")
    assert client.get(f"/api/products/{pid}/cutout.png").data == b"served from cache"


def test_glass_products_get_their_own_cutout_key(app):
    from core.matting import MATTING_VERSION
    from webapp.api import cutout_key
    from webapp.catalogue import is_glass

    seg = app.extensions["roomfit"].segmenter.get()
    glass = {"name": "IVRIG Clear glass", "category": "Red wine glass", "class": "wine-glass"}
    chair = {"name": "BERNHARD Chair", "category": "Chair", "class": "chair"}
    assert is_glass(glass) and not is_glass(chair)
    assert cutout_key(seg, glass) == f"{seg.model_hash}-m{MATTING_VERSION}g"
    assert cutout_key(seg, chair) == f"{seg.model_hash}-m{MATTING_VERSION}"


def test_cutout_404_and_503(make_app, tmp_path, client):
    assert client.get("/api/products/99999/cutout.png").status_code == 404
    no_model = make_app(MODEL_DIR=str(tmp_path / "none")).test_client()
    pid = _products(no_model)["products"][0]["id"]
    resp = no_model.get(f"/api/products/{pid}/cutout.png")
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "model_not_ready"
    assert "cutout" not in no_model.get(f"/api/products/{pid}").get_json()


def test_ids_no_sqlite_row_can_have_are_404_not_500(client):
    huge = 2**64
    for path in (f"/api/products/{huge}", f"/api/products/{huge}/cutout.png", f"/api/products/{huge}/image",
                 f"/products/{huge}"):
        assert client.get(path).status_code == 404, path
    for arg in (str(huge), "\u00b2", "-1"):  # "²" passes str.isdigit() but not int()
        resp = client.get("/room", query_string={"product": arg})
        assert resp.status_code == 200 and b"data-products='[]'" in resp.data, arg


def _point_photo_at(app, pid, path):
    from webapp.db import get_db

    with app.app_context():
        db = get_db()
        db.execute("UPDATE product SET image_path = ?, image_sha256 = ? WHERE id = ?", (str(path), "f" * 64, pid))
        db.commit()


def test_a_missing_or_damaged_catalogue_photo_is_a_server_error(app, client, tmp_path):
    pid = _products(client, q="BERNHARD")["products"][0]["id"]
    truncated = tmp_path / "truncated.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (120, 90), "white").save(buf, "JPEG")
    truncated.write_bytes(buf.getvalue()[:200])
    for photo in (tmp_path / "gone.jpg", truncated):
        _point_photo_at(app, pid, photo)
        resp = client.get(f"/api/products/{pid}/cutout.png")
        assert resp.status_code == 500 and resp.get_json()["error"]["code"] == "photo_unreadable", photo
        body = client.get(f"/api/products/{pid}").get_json()  # the product's details still answer
        assert body["product"]["id"] == pid and "cutout" not in body
        assert body["cutout_error"]["code"] == "photo_unreadable"
    resp = client.get(f"/api/products/{pid}/image")  # the last photo pointed at exists (truncated): it is sent
    assert resp.status_code == 200
    _point_photo_at(app, pid, tmp_path / "gone.jpg")
    resp = client.get(f"/api/products/{pid}/image")
    assert resp.status_code == 500 and resp.get_json()["error"]["code"] == "photo_unreadable"


def test_health_ready_and_metrics(client, square_photo):
    assert client.get("/healthz").get_json() == {"success": True, "status": "alive"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["model"]["name"] == "tiny-test"
    client.post("/predict", data={"image": (io.BytesIO(square_photo()), "a.jpg")})
    client.get("/no/such/page")
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert 'roomfit_http_requests_total{endpoint="api.predict",method="POST",status="200"} 1.0' in text
    assert 'endpoint="unmatched"' in text
    assert "roomfit_http_request_duration_seconds_bucket" in text
    assert "roomfit_inference_seconds_count 1.0" in text
    assert 'roomfit_predictions_total{label="chair"} 1.0' in text


def test_ready_retries_a_model_that_lands_later(make_app, model_dir, tmp_path):
    import shutil

    later = tmp_path / "later"
    client = make_app(MODEL_DIR=str(later)).test_client()
    assert client.get("/readyz").status_code == 503
    shutil.copytree(model_dir, later)
    assert client.get("/readyz").status_code == 200


def test_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/predict", "/api/products", "/api/products/{product_id}", "/api/products/{product_id}/cutout.png",
                 "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"]
    codes = set(spec["paths"]["/predict"]["post"]["responses"])
    assert codes == {"200", "400", "408", "413", "415", "422", "429", "503"}
    assert "Error" in spec["components"]["schemas"]


def test_security_headers_everywhere(client):
    for path in ("/", "/healthz", "/api/products", "/no/such/page", "/static/css/app.css"):
        resp = client.get(path)
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
    assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP


def test_unknown_api_path_is_json_404_and_pages_get_html(client):
    resp = client.get("/api/nothing")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    page = client.get("/nothing")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_unexpected_error_is_generic_500_without_traceback(make_app, monkeypatch):
    app = make_app()
    client = app.test_client()
    from webapp import catalogue

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(catalogue, "list_products", broken)
    resp = client.get("/api/products")
    assert resp.status_code == 500
    body = resp.get_json()
    assert body["error"] == {"code": "internal_error", "message": "internal server error"}
    assert "secret internals" not in resp.get_data(as_text=True)


def test_token_bucket_refills():
    limiter = TokenBucketLimiter(rate=2.0, burst=2)
    assert limiter.take("a", now=0.0) == 0 and limiter.take("a", now=0.0) == 0
    assert limiter.take("a", now=0.0) > 0
    assert limiter.take("b", now=0.0) == 0  # per client
    assert limiter.take("a", now=1.0) == 0  # refilled


def test_predict_is_thread_safe_with_a_bounded_interpreter_pool(app, square_photo):
    from concurrent.futures import ThreadPoolExecutor

    from core.images import decode

    seg = app.extensions["roomfit"].segmenter.get()
    photos = [square_photo(box=(10 + i * 5, 20, 90 + i * 5, 100)) for i in range(6)]
    size = (seg.spec.input_width, seg.spec.input_height)

    def run(data):
        d = decode(data, size, max_pixels=10**7, need_full=False)
        return seg.predict(d.model_input, d.size).detections[0].bbox

    serial = [run(p) for p in photos]
    with ThreadPoolExecutor(6) as pool:
        parallel = list(pool.map(run, photos * 4))
    assert parallel == serial * 4
    assert seg._created <= seg.pool_size
