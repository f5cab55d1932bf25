"""HTML pages, static files, the CLI commands and the configuration."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from webapp import create_app
from webapp.db import get_db


def test_gallery_lists_filters_searches_and_pages(client):
    html = client.get("/").get_data(as_text=True)
    assert html.count('class="card"') == 2  # PAGE_SIZE=2 in tests
    assert "Page 1 of 2" in html and 'rel="next"' in html
    chairs = client.get("/?class=chair").get_data(as_text=True)
    assert "BERNHARD Chair" in chairs and "STOCKSUND" not in chairs
    found = client.get("/?q=stocksund").get_data(as_text=True)
    assert "STOCKSUND" in found and found.count('class="card"') == 1
    assert "No products match" in client.get("/?q=nothing-like-this").get_data(as_text=True)
    assert client.get("/?page=banana").status_code == 200


def test_gallery_escapes_user_input(client):
    html = client.get("/?q=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_pages_have_no_inline_script_or_style(client):
    for path in ("/", "/products/1", "/room?product=1", "/docs", "/nothing"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html and "onclick" not in html, path


def test_product_page_shows_photo_cutout_and_detected_class(client):
    pid = client.get("/api/products?q=BERNHARD").get_json()["products"][0]["id"]
    html = client.get(f"/products/{pid}").get_data(as_text=True)
    assert f"/api/products/{pid}/image" in html and f"/api/products/{pid}/cutout.png" in html
    # A shopper sees the catalogue's category and no model confidence; the developer view shows the model's label.
    assert re.search(r'id="category">Chair<', html)
    assert 'id="detected"' not in html and "%" not in re.sub(r"<[^>]+>", "", html.split("<main>")[1])
    dev = client.get(f"/products/{pid}?dev=1").get_data(as_text=True)
    assert re.search(r'id="detected">\s*<b>chair</b>', dev)
    assert f'href="/room?product={pid}"' in html
    assert client.get("/products/99999").status_code == 404


def test_product_page_without_model(make_app, tmp_path):
    client = make_app(MODEL_DIR=str(tmp_path / "none")).test_client()
    html = client.get("/products/1").get_data(as_text=True)
    assert "Cut-out unavailable" in html


def test_room_page_and_sample_rooms(client):
    html = client.get("/room?product=1&product=3&product=x&product=999").get_data(as_text=True)
    m = re.search(r"data-products='([^']*)'", html)
    products = json.loads(m.group(1).replace("&#39;", "'"))
    assert [p["id"] for p in products] == [1, 3]
    rooms = json.loads(re.search(r"data-rooms='([^']*)'", html).group(1))
    assert rooms == ["/rooms/room0.jpg", "/rooms/room1.jpg"]
    assert client.get(rooms[0]).mimetype == "image/jpeg"
    assert client.get("/rooms/../conftest.py").status_code == 404
    assert client.get("/room").status_code == 200


def test_docs_page_renders_the_spec(client):
    html = client.get("/docs").get_data(as_text=True)
    assert "/predict" in html and "/api/products/{product_id}/cutout.png" in html and "429" in html


def test_static_files_are_local(client):
    for path in ("/static/css/app.css", "/static/js/room.js", "/static/js/gallery.js"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert "http://" not in resp.get_data(as_text=True) and "https://" not in resp.get_data(as_text=True)


def test_init_db_and_import_commands(runner, app, catalogue_manifest, tmp_path):
    result = runner.invoke(args=["init-db"])
    assert "Initialised" in result.output
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM product").fetchone()[0] == 0
    result = runner.invoke(args=["import-catalogue", str(catalogue_manifest)])
    assert result.exit_code == 0 and "Imported 4 products" in result.output
    result = runner.invoke(args=["import-catalogue", "--all-classes", str(catalogue_manifest)])
    assert "Imported 5 products" in result.output
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM product").fetchone()[0] == 5  # upsert by sku, no duplicates


def test_import_csv(runner, app, catalogue_manifest, tmp_path):
    csv_path = tmp_path / "products.csv"
    images = catalogue_manifest.parent / "images"
    csv_path.write_text(
        "id,file,type,name,class,size,width_cm\n"
        f"x1,{images / 'c1.jpg'},Chair,CSV Chair,chair,45 cm,45\n"
        "x2,missing.jpg,Chair,Ghost,chair,,\n"
    )
    runner.invoke(args=["init-db"])
    result = runner.invoke(args=["import-catalogue", str(csv_path)])
    assert "Imported 1 products" in result.output and "1 skipped" in result.output
    with app.app_context():
        row = get_db().execute("SELECT * FROM product WHERE sku = ?", ("x1",)).fetchone()
    assert row["name"] == "CSV Chair" and row["width_cm"] == 45.0 and row["dimensions_text"] == "45 cm"


def _product_line(sku: str, klass: object, image: Path) -> str:
    """One manifest.jsonl line for a product photographed in image."""
    return json.dumps({"sku": sku, "title": f"Product {sku}", "path": str(image), "class": klass}) + "\n"


def _catalogue(app) -> list[tuple] | None:
    """Every product row in id order, or None when there is no product table."""
    with app.app_context():
        db = get_db()
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'product'").fetchone():
            return None
        return [tuple(r) for r in db.execute("SELECT * FROM product ORDER BY id")]


# (file name, its contents given a real product photo, drop the table first, exit code, in the output, in the log,
#  {new sku: (class, width_px)}, or None when the catalogue must stay exactly as it was)
BAD_IMPORTS = [
    pytest.param("m.jsonl", lambda img: _product_line("m1", "chair", img), True, 1,
                 ["m.jsonl: the database has no product table", "init-db"], None, None, id="before-init-db"),
    pytest.param("p.csv", lambda img: f"id,file,name,class,width\nx1,{img},Chair,chair,12.5\n", False, 0,
                 ["Imported 1 products", "0 skipped"], None, {"x1": ("chair", 12)}, id="fractional-width"),
    pytest.param("m.jsonl", lambda img: _product_line("m1", ["chair"], img) + _product_line("m2", "chair", img),
                 False, 0, ["Imported 1 products", "1 skipped"], "m.jsonl:1: skipping m1: class must be text",
                 {"m2": ("chair", None)}, id="class-is-a-list"),
    pytest.param("p.csv", lambda img: f"id,file,name,class\nx1,{img},Chaise à bascule,chair\n".encode("latin-1"),
                 False, 1, ["p.csv:2: not UTF-8 text"], None, None, id="latin-1-csv"),
    # A good row first: the error on line 3 must take the already written line 2 back out.
    pytest.param("p.csv", lambda img: f"id,file,name,class\nx1,{img},Chair,chair\nx2,{img},{'x' * 200_000},chair\n",
                 False, 1, ["p.csv:3: not a readable CSV row"], None, None, id="fails-after-a-good-row"),
]


@pytest.mark.parametrize("name, contents, drop_table, exit_code, output, logged, added", BAD_IMPORTS)
def test_import_bad_input(runner, app, catalogue_manifest, tmp_path, caplog,
                          name, contents, drop_table, exit_code, output, logged, added):
    source = tmp_path / name
    data = contents(catalogue_manifest.parent / "images" / "c1.jpg")
    source.write_bytes(data if isinstance(data, bytes) else data.encode())
    if drop_table:
        with app.app_context():
            get_db().execute("DROP TABLE product")  # the state before `flask init-db`
    before = _catalogue(app)

    result = runner.invoke(args=["import-catalogue", str(source)])

    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), "an error, not a traceback"
    for text in output:
        assert text in result.output
    if exit_code:
        assert result.output.startswith(f"Error: {source}") and result.output.count("\n") == 1  # one line
    if logged:
        assert logged in caplog.text
    after = _catalogue(app)
    if added is None:
        assert after == before
    else:
        assert after[:len(before)] == before
        with app.app_context():
            new = get_db().execute("SELECT sku, class, width_px FROM product WHERE id > ?", (before[-1][0],))
            assert {sku: (klass, width) for sku, klass, width in new} == added


def test_failed_import_rolls_back_on_the_same_connection(app, catalogue_manifest, tmp_path):
    from webapp.catalogue import CatalogueError, import_file

    image = catalogue_manifest.parent / "images" / "c1.jpg"
    source = tmp_path / "p.csv"
    source.write_text(f"id,file,name,class\nx1,{image},Chair,chair\nx2,{image},{'x' * 200_000},chair\n")
    with app.app_context():
        db = get_db()
        with pytest.raises(CatalogueError, match=r"p\.csv:3:"):
            import_file(db, source)
        # Same connection, so an uncommitted x1 would still be visible here.
        assert not db.in_transaction
        assert db.execute("SELECT COUNT(*) FROM product WHERE sku = 'x1'").fetchone()[0] == 0


def test_demo_catalogue_imports(runner, app):
    from webapp.config import PROJECT_ROOT

    runner.invoke(args=["init-db"])
    result = runner.invoke(args=["import-catalogue", str(PROJECT_ROOT / "data" / "demo" / "catalogue.jsonl")])
    assert result.exit_code == 0, result.output
    with app.app_context():
        classes = {r[0] for r in get_db().execute("SELECT DISTINCT class FROM product")}
    assert classes == {"chair", "couch", "bed", "vase", "bowl", "cup", "wine-glass", "potted-plant"}


def test_secret_key_required_in_production(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    app = create_app()
    assert app.config["SECRET_KEY"] == "s3cret" and not app.debug


def test_config_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "1234")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 1234 and app.config["MODEL_DIR"] == str(tmp_path)
    assert app.extensions["roomfit"].limiter is None
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "ten")
    with pytest.raises(ValueError, match="MAX_CONTENT_LENGTH"):
        create_app()
