"""The five listing styles of tests/scraper/shop/listings crawled over HTTP on 127.0.0.1 with `python -m scraper
crawl`'s Crawler: every tile's product page is visited and kept with its own picture, pagination is followed, and no
listing page is recorded as a product."""
from __future__ import annotations

import hashlib
import io
import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from core.manifest import read_manifest
from scraper.config import load_config
from scraper.crawl import Crawler

LISTINGS = Path(__file__).resolve().parent / "shop" / "listings"
# listing path on the test server -> (fixture, the product paths its tiles link to)
SHOP = {
    "/c/sofas": ("plain_articles.html", [f"/p/{s}-sofa" for s in ("lund", "mira", "oslo", "vik")]),
    "/armchairs": ("js_next.html", ["/armchair/linen-1", "/armchair/wing-2", "/armchair/club-3"]),
    "/lamps": ("numbered.html", [f"/lamps/{s}-lamp" for s in ("arc", "desk", "floor", "wall")]),
    "/rugs": ("itemlist.html", [f"/rugs/{s}-rug" for s in ("wool", "jute", "kilim")]),
    "/tables": ("load_more.html", [f"/tables/{s}-table" for s in ("oak", "ash", "elm", "pine")]),
}


def _photo(name: str) -> bytes:
    """An 800 px JPEG unique to `name` (random blocks seeded by it), so no two products' pictures look alike."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    blocks = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(blocks).resize((800, 800), Image.NEAREST).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _product_page(path: str) -> bytes:
    slug = path.rstrip("/").rsplit("/", 1)[-1]
    return textwrap.dedent(f"""\
        <!doctype html><html><head><title>{slug}</title>
        <script type="application/ld+json">{json.dumps({"@context": "https://schema.org", "@type": "Product",
                                                         "name": slug, "image": f"/img/{slug}-main.jpg"})}</script>
        </head><body><h1>{slug}</h1><div class="product-gallery"><img src="/img/{slug}-main.jpg" alt="{slug}"></div>
        <button class="add-to-cart">Add to cart</button></body></html>""").encode()


class _Shop(BaseHTTPRequestHandler):
    base = ""
    visited: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        type(self).visited.append(self.path)
        if parts.path == "/robots.txt":
            self._send(200, "text/plain", b"User-agent: *\nAllow: /\n")
        elif parts.path in SHOP:  # every page of a listing shows the same tiles: pages are visited once each
            html = (LISTINGS / SHOP[parts.path][0]).read_text(encoding="utf-8")
            self._send(200, "text/html; charset=utf-8", html.replace("https://shop.example", self.base).encode())
        elif parts.path.startswith("/img/"):
            self._send(200, "image/jpeg", _photo(parts.path))
        elif parts.path.endswith((".png", ".svg", ".gif")):
            self._send(404, "text/plain", b"no")
        else:
            self._send(200, "text/html; charset=utf-8", _product_page(parts.path))

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        for name, value in (("Content-Type", ctype), ("Content-Length", str(len(body)))):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def listing_shop():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    _Shop.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _Shop.base
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("listing", sorted(SHOP))
def test_each_listing_style_is_crawled_to_its_products(listing_shop, listing, tmp_path):
    config = tmp_path / "sources.yaml"
    config.write_text(textwrap.dedent(f"""\
        http: {{connect_timeout: 2, read_timeout: 2, retries: 0, backoff: 0.01}}
        images: {{min_side: 200}}
        sources:
          - name: listing
            start_urls: ["{listing_shop}{listing}"]
            min_delay: 0
            max_pages: 4
        """))
    with Crawler(load_config(config), tmp_path / "out", progress=False) as crawler:
        crawler.run()
    records = list(read_manifest(tmp_path / "out" / "manifest.jsonl"))
    expected = {listing_shop + p for p in SHOP[listing][1]}
    pages = {urlsplit(r.page_url)._replace(query="").geturl() for r in records}
    assert pages == expected  # every tile's product, and nothing else (no listing page as a product)
    for record in records:  # each product keeps its own main picture
        slug = urlsplit(record.page_url).path.rsplit("/", 1)[-1]
        assert record.image_url.endswith(f"/img/{slug}-main.jpg"), (record.page_url, record.image_url)
