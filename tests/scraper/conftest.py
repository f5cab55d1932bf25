"""A fixture shop on 127.0.0.1: Shopify, WooCommerce, Magento and a custom shop, plus the faults a crawler meets.

Pages are the templates in shop/ (written the way those platforms write them); photos are generated with Pillow at
request time and resized the way each platform's image URLs ask (?width=, -600x450, _530x@2x, /cache/<hash>/,
w_1200,h_900). Every request is logged so tests can check what the crawler did and did not fetch.
"""
from __future__ import annotations

import contextlib
import functools
import json
import io
import random
import re
import textwrap
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image, ImageDraw

SHOP = Path(__file__).parent / "shop"
ROBOTS = """\
User-agent: *
Disallow: /magento/checkout/
Disallow: /magento/terracotta-planter.html
Disallow: /custom/outlet/
Disallow: /woo/wp-admin/
Disallow: /*?sort=
"""
# Photos that are the same picture under another name: an older smaller upload, and a WordPress re-upload.
ALIASES = {"mira-social": "sofa-mira", "dining-room-1": "dining-room"}
_OG = ('<meta property="og:image" content="http://{{host}}/shopify/cdn/shop/files/@SLUG@.jpg?v=@V@">\n'
       '  <meta property="og:image:secure_url" content="https://{{host}}/shopify/cdn/shop/files/@SLUG@.jpg?v=@V@">')
SHOPIFY = {
    "sofa-lund": dict(NAME="Lund 3-seat sofa", SKU="LUND-3-OAT", V="1700000001", SECOND="side",
                      DIMS="W 220 x D 95 x H 82 cm", OG_IMAGE=_OG, RECO="sofa-mira"),
    # Mira's og:image is an older, smaller upload of its main photo: a resized duplicate.
    "sofa-mira": dict(NAME="Mira loveseat", SKU="MIRA-2-SAGE", V="1700000002", SECOND="detail",
                      DIMS="W 160 x D 88 x H 80 cm", RECO="sofa-lund",
                      OG_IMAGE='<meta property="og:image" content="http://{{host}}/shopify/cdn/shop/products/'
                               'mira-social_600x.jpg?v=1600000000">'),
    "sofa-oslo": dict(NAME="Oslo corner sofa", SKU="OSLO-C-GRY", V="1700000003", SECOND="room",
                      DIMS="W 280 x D 180 x H 78 cm", OG_IMAGE=_OG, RECO="sofa-mira"),
}
WOO = {
    "oak-dining-chair": dict(ID="101", NAME="Oak Dining Chair", SKU="OAK-DC-01", PRICE="189.00", DIMS="45 &times; 52 &times; 81 cm",
                             ROOM="2024/01/dining-room", JSONLD="valid"),
    "linen-armchair": dict(ID="102", NAME="Linen Armchair", SKU="LIN-AC-02", PRICE="449.00", DIMS="78 &times; 82 &times; 90 cm",
                           ROOM="2024/03/linen-armchair-room", JSONLD="broken"),
    "bistro-chair": dict(ID="103", NAME="Bistro Chair", SKU="BIS-03", PRICE="79.00", DIMS="42 &times; 48 &times; 84 cm",
                         ROOM="2024/02/dining-room-1", JSONLD="valid"),
}
MAGENTO = {
    "ceramic-vase-blue": dict(NAME="Ceramic Vase Blue", SKU="CLV-2041", CAT1="Home Decor", CAT2="Vases",
                              DIMS="&Oslash; 18 x H 30 cm", OG="c/e/ceramic-vase-blue.jpg"),
    "glass-vase-tall": dict(NAME="Tall Glass Vase", SKU="CLV-2042", CAT1="Home Decor", CAT2="Vases",
                            DIMS="&Oslash; 12 x H 45 cm", OG="g/l/glass-vase-tall-poster.png"),
    "stoneware-bowl": dict(NAME="Stoneware Bowl", SKU="CLV-2043", CAT1="Home Decor", CAT2="Bowls",
                           DIMS="&Oslash; 24 x H 9 cm", OG="s/t/stoneware-bowl-main.jpg"),
    "espresso-cup-set": dict(NAME="Espresso Cup Set", SKU="CLV-3001", CAT1="Kitchen", CAT2="Cups &amp; Mugs",
                             DIMS="&Oslash; 6 x H 6 cm", OG="e/s/espresso-cup-set.jpg"),
}
CUSTOM = {"luna-bed": dict(NAME="Luna bed frame", SKU="SW-LUNA-160", DIMS="W 160 x D 210 x H 95 cm"),
          "aria-bed": dict(NAME="Aria bed frame", SKU="SW-ARIA-180", DIMS="W 180 x D 210 x H 40 cm")}


@functools.lru_cache(maxsize=None)
def photo(name: str, width: int = 800) -> bytes:
    """A deterministic 4:3 'product photo' (shapes on a light background) as JPEG, `width` pixels wide."""
    name = ALIASES.get(name, name)
    rng = random.Random(name)
    im = Image.new("RGB", (800, 600), tuple(rng.randint(200, 255) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = rng.randint(0, 600), rng.randint(0, 450)
        box = (x0, y0, x0 + rng.randint(60, 300), y0 + rng.randint(60, 250))
        fill = tuple(rng.randint(0, 180) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    if width < 800:
        im = im.resize((width, width * 3 // 4), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88)
    return buf.getvalue()


@functools.lru_cache(maxsize=None)
def rotated_photo(name: str) -> bytes:
    """The photo stored sideways (600x800 pixels) with EXIF Orientation 6, as phone uploads are."""
    im = Image.open(io.BytesIO(photo(name))).transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88, exif=exif)
    return buf.getvalue()


@functools.lru_cache(maxsize=None)
def huge_png() -> bytes:
    """A ~2 MB noise PNG (over the test size cap)."""
    im = Image.frombytes("RGB", (900, 800), random.Random(7).randbytes(900 * 800 * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def _image_request(path: str, query: dict[str, list[str]]) -> tuple[str, int] | None:
    """(photo name, width) for the image URL schemes of the four platforms, or None."""
    patterns = [
        (r"/shopify/cdn/shop/files/([\w-]+)\.(?:jpg|png)", None),
        (r"/shopify/cdn/shop/products/([\w-]+?)_(\d*)x\d*(@2x)?\.jpg", "shopify"),
        (r"/woo/wp-content/uploads/\d{4}/\d\d/([\w-]+?)(?:-(\d+)x\d+)?\.jpg", "wp"),
        (r"/magento/media/catalog/product/(cache/\w+/)?\w/\w/([\w-]+)\.jpg", "magento"),
        (r"/custom/media/([\w-]+?)_(\d+)\.jpg", "wp"),
        (r"/custom/img/w_(\d+),h_\d+,c_fill/([\w-]+)\.jpg", "cloudinary"),
    ]
    for pattern, kind in patterns:
        m = re.fullmatch(pattern, path)
        if not m:
            continue
        if kind is None:
            return m.group(1), int(query.get("width", ["800"])[0])
        if kind == "shopify":
            return m.group(1), int(m.group(2) or 800) * (2 if m.group(3) else 1)
        if kind == "wp":
            return m.group(1), int(m.group(2) or 800)
        if kind == "magento":
            return m.group(2), {"cache/0f831c1845fc143d00d6d1ebc49f446a/": 320}.get(m.group(1) or "", 700 if m.group(1) else 800)
        return m.group(2), int(m.group(1))
    return None


class FixtureShop:
    """Routes, state (500-then-200 and 429 counters) and the request log of the fixture server."""

    def __init__(self, slow_seconds: float = 1.0):
        self.slow_seconds = slow_seconds
        self.log: list[tuple[float, str]] = []
        self.hits: Counter = Counter()
        self.agents: set[str] = set()
        self.lock = threading.Lock()
        self.host = ""  # set once the server is bound
        self.base = ""

    def page(self, name: str, **values: str) -> bytes:
        html = (SHOP / name).read_text(encoding="utf-8")
        for key, value in values.items():
            html = html.replace(f"@{key}@", value)
        return html.replace("{{host}}", self.host).encode("utf-8")

    def write_config(self, path: Path, min_delay: float = 0.0) -> Path:
        """Write a sources.yaml for this shop (tiny delays, short timeouts) and return its path."""
        path.write_text(crawl_config_yaml(self, min_delay=min_delay))
        return path

    def requested(self, prefix: str) -> list[str]:
        return [p for _, p in self.log if p.startswith(prefix)]

    def route(self, target: str) -> tuple[int, dict[str, str], bytes]:
        """Answer one GET: (status, headers, body)."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.log.append((time.monotonic(), target))
            self.hits[path] += 1
            hits = self.hits[path]
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, ROBOTS.encode()
        # ---- Shopify (Dawn / Debut themes) ----
        if path == "/shopify/collections/sofas":
            name = "shopify_collection_2.html" if query.get("page") == ["2"] else "shopify_collection.html"
            return 200, html, self.page(name)
        m = re.fullmatch(r"/shopify/(?:collections/sofas/)?products/([\w-]+)", path)
        if m:
            slug = m.group(1)
            if slug == "sofa-oslo" and hits == 1:
                return 500, html, b"<h1>Internal Server Error</h1>"
            if slug in SHOPIFY:
                return 200, html, self.page("shopify_product.html", **self._shopify(slug), SLUG=slug)
            if slug == "sofa-vik":
                return 200, html, self.page("shopify_product_vik.html")
            return 404, html, b"<h1>404 Page Not Found</h1><p>The page you requested does not exist.</p>"
        # ---- WooCommerce (Storefront + Yoast) ----
        if path == "/woo/product-category/chairs/":
            return 200, html, self.page("woo_category.html")
        if path == "/woo/product-category/chairs/page/2/":
            return 200, html, self.page("woo_category_2.html")
        if path in ("/woo/product/windsor-chair", "/woo/product/windsor-chair/"):
            # A trailing-slash redirect loop (two plugins disagreeing about canonical URLs).
            other = path[:-1] if path.endswith("/") else path + "/"
            return 301, {"Location": f"{self.base}{other}"}, b""
        if path == "/woo/product/rattan-lounge-chair/":
            time.sleep(self.slow_seconds)
            return 200, html, self.page("woo_product.html", SLUG="rattan-lounge-chair", **self._woo("oak-dining-chair"))
        m = re.fullmatch(r"/woo/product/([\w-]+)/", path)
        if m and m.group(1) in WOO:
            if m.group(1) == "linen-armchair" and hits == 1:
                return 429, {"Retry-After": "120", "Content-Type": "text/html"}, b"<h1>Too Many Requests</h1>"
            return 200, html, self.page("woo_product.html", SLUG=m.group(1), **self._woo(m.group(1)))
        # ---- Magento 2 (Luma) ----
        if path == "/magento/home-decor/vases.html":
            name = "magento_category_2.html" if query.get("p") == ["2"] else "magento_category.html"
            return 200, html, self.page(name)
        m = re.fullmatch(r"/magento/([\w-]+)\.html", path)
        if m and m.group(1) in MAGENTO:
            return 200, html, self.page("magento_product.html", SLUG=m.group(1), **self._magento(m.group(1)))
        if path == "/magento/media/catalog/product/g/l/glass-vase-tall-poster.png":
            return 200, {"Content-Type": "image/png", "X-No-Length": "1"}, huge_png()
        if path == "/magento/media/catalog/product/s/t/stoneware-bowl-main.jpg":
            # An error page sent with the image's content type.
            return 200, {"Content-Type": "image/jpeg"}, b"<!doctype html><html><body><h1>Image not available</h1></body></html>"
        if path.endswith("/espresso-cup-set.jpg"):
            return 200, {"Content-Type": "image/jpeg"}, rotated_photo("espresso-cup-set")
        # ---- Custom shop ----
        if path == "/custom/shop/beds":
            return 200, html, self.page("custom_listing_2.html" if query.get("page") == ["2"] else "custom_listing.html")
        if path == "/custom/go/partner":
            # A link that leaves the shop (another host name for this server).
            return 302, {"Location": f"http://localhost:{self.host.rsplit(':', 1)[1]}/custom/shop/beds"}, b""
        if path == "/custom/go/clearance.jpg":
            # A harmless-looking URL that redirects into a path robots.txt disallows.
            return 302, {"Location": f"{self.base}/custom/outlet/clearance.jpg"}, b""
        if path == "/custom/item/broken-jsonld":
            # Structured data of the wrong shape: a number where a list of variants goes.
            return 200, html, (b'<!doctype html><html><head><script type="application/ld+json">'
                               b'{"@context": "https://schema.org", "@type": "Product", "name": "Odd", "hasVariant": 3}'
                               b'</script></head><body><h1>Odd</h1></body></html>')
        if path == "/custom/about":
            return 200, html, b"<!doctype html><html><head><title>About us</title></head><body><h1>About</h1>" \
                              b"<p>Family run since 1962.</p></body></html>"
        if path == "/custom/item/nova-bed":
            return 200, html, self.page("custom_product_js.html")
        m = re.fullmatch(r"/custom/item/([\w-]+)", path)
        if m and m.group(1) in CUSTOM:
            return 200, html, self.page("custom_product.html", SLUG=m.group(1), **CUSTOM[m.group(1)])
        # ---- images ----
        image = _image_request(path, query)
        if image:
            name, width = image
            return 200, {"Content-Type": "image/jpeg", "Cache-Control": "max-age=31536000"}, photo(name, min(width, 800))
        if path.endswith((".gif", ".png", ".svg")):
            return 200, {"Content-Type": "image/gif"}, b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
        return 404, html, b"<h1>Not Found</h1>"

    def _shopify(self, slug: str) -> dict[str, str]:
        values = dict(SHOPIFY[slug])
        reco = SHOPIFY[values["RECO"]]
        # The og:image markup has placeholders of its own: fill them first (dicts keep this order).
        return {"OG_IMAGE": values.pop("OG_IMAGE"), **values, "RECO_NAME": reco["NAME"], "RECO_V": reco["V"]}

    def _woo(self, slug: str) -> dict[str, str]:
        values = dict(WOO[slug])
        kind = values.pop("JSONLD")
        name = values["NAME"] if kind == "valid" else values["NAME"].replace("Linen", 'Linen "Sand"')
        image = f"{self.base}/woo/wp-content/uploads/2024/03/{slug}.jpg".replace("/", "\\/")
        values["PRODUCT_JSONLD"] = textwrap.dedent(f"""\
            <script type="application/ld+json">{{"@context":"https:\\/\\/schema.org\\/","@type":"Product","@id":"{self.base}\\/woo\\/product\\/{slug}\\/#product","name":"{name}","url":"{self.base}\\/woo\\/product\\/{slug}\\/","description":"Solid wood, hand finished.","image":"{image}","sku":"{values['SKU']}","offers":[{{"@type":"Offer","price":"{values['PRICE']}","priceValidUntil":"2026-12-31","priceCurrency":"GBP","availability":"http:\\/\\/schema.org\\/InStock","url":"{self.base}\\/woo\\/product\\/{slug}\\/","seller":{{"@type":"Organization","name":"Oak &amp; Ash Furniture","url":"{self.base}\\/woo"}}}}]}}</script>""")
        return values

    def _magento_gallery_item(self, path: str, main: bool) -> str:
        """One entry of Magento's gallery JSON (PHP's json_encode escapes slashes)."""
        media = f"{self.base}/magento/media/catalog/product"
        item = {"thumb": f"{media}/cache/3b1f2a9c8d7e6f5a4b3c2d1e0f9a8b7c/{path}",
                "img": f"{media}/cache/9e2b6ee8a8d5a6fbbb0f2c5a3b7d9b3a/{path}", "full": f"{media}/{path}",
                "caption": "", "position": "1" if main else "2", "isMain": main, "type": "image", "videoUrl": None}
        return json.dumps(item).replace("/", "\\/")

    def _magento(self, slug: str) -> dict[str, str]:
        values = dict(MAGENTO[slug])
        og = values.pop("OG")
        slugify = lambda s: re.sub(r"[^a-z]+", "-", s.lower().replace("&amp;", "")).strip("-")  # noqa: E731
        values.update(OG_IMAGE=f"{self.base}/magento/media/catalog/product/{og}", P1=slug[0], P2=slug[1],
                      CAT1_SLUG=slugify(values["CAT1"]), CAT2_SLUG=slugify(values["CAT2"]),
                      GALLERY_JSON=",".join(self._magento_gallery_item(path, i == 0) for i, path in enumerate(
                          [f"{slug[0]}/{slug[1]}/{slug}.jpg"] + ["c/e/ceramic-vase-blue-room.jpg"] * (
                              slug == "ceramic-vase-blue"))))
        return values


class _Handler(BaseHTTPRequestHandler):
    server_version = "FixtureShop/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        shop: FixtureShop = self.server.shop  # type: ignore[attr-defined]
        shop.agents.add(self.headers.get("User-Agent", ""))
        status, headers, body = shop.route(self.path)
        self.send_response(status)
        no_length = headers.pop("X-No-Length", None)
        for key, value in headers.items():
            self.send_header(key, value)
        if no_length:
            self.send_header("Connection", "close")  # body length known only by the close, so caps must stream
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawler hung up (size cap or timeout): that is the point of those routes
        if no_length:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        """Quiet: the shop keeps its own request log."""


@contextlib.contextmanager
def serving() -> Iterator[FixtureShop]:
    """Run a fresh fixture shop on 127.0.0.1 (random port) for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    shop = FixtureShop()
    shop.host = f"127.0.0.1:{server.server_address[1]}"
    shop.base = f"http://{shop.host}"
    server.shop = shop  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def shop():
    """A fresh fixture shop for one test (its fault counters start at zero)."""
    with serving() as s:
        yield s


@pytest.fixture(scope="module")
def shared_shop():
    """One fixture shop shared by a test module (for tests that read one crawl's results)."""
    with serving() as s:
        yield s


@pytest.fixture
def make_photo():
    """photo(name, width=800) -> JPEG bytes of a deterministic 4:3 test photo."""
    return photo


@pytest.fixture
def render():
    """Render a fixture-shop template for the host shop.example, without a server."""
    shop = FixtureShop()
    shop.host, shop.base = "shop.example", "http://shop.example"

    def page(name: str, **values: str) -> str:
        if name == "shopify_product.html":
            values = {**shop._shopify(values["SLUG"]), **values}
        if name == "woo_product.html":
            values = {**shop._woo(values["SLUG"]), **values}
        if name == "magento_product.html":
            values = {**shop._magento(values["SLUG"]), **values}
        return shop.page(name, **values).decode("utf-8")
    return page


def crawl_config_yaml(shop: FixtureShop, min_delay: float = 0.0) -> str:
    """A sources.yaml for the four fixture shops with tiny delays and short timeouts."""
    b = shop.base
    return textwrap.dedent(f"""\
        http:
          user_agent: "RoomFitBot-test/0.1 (+https://example.invalid/roomfit)"
          connect_timeout: 2
          read_timeout: 0.3
          retries: 2
          backoff: 0.01
          max_retry_after: 0.3
          max_redirects: 4
          max_image_bytes: 1000000
          max_download_seconds: 5
        images:
          min_side: 200
        sources:
          - name: shopify
            start_urls: ["{b}/shopify/collections/sofas"]
            category: Sofas
            min_delay: {min_delay}
          - name: woo
            start_urls: ["{b}/woo/product-category/chairs/"]
            min_delay: {min_delay}
          - name: magento
            start_urls: ["{b}/magento/home-decor/vases.html"]
            min_delay: {min_delay}
          - name: custom
            start_urls: ["{b}/custom/shop/beds"]
            min_delay: {min_delay}
            selectors:
              product_link: "article.card a.card__link"
              image: ".pdp-viewer img"
              title: "h1.pdp-title"
              dimensions: ".spec-dims"
        """)
