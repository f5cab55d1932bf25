"""A tiny shop on 127.0.0.1 for the intake tests: product pages, pictures, redirects and misbehaving answers."""
from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from PIL import Image

Route = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


def product_photo(size=(400, 300), fmt="JPEG") -> bytes:
    """A white studio photo with one dark 'sofa' block in the middle."""
    img = Image.new("RGB", size, (255, 255, 255))
    w, h = size
    img.paste((40, 60, 90), (w // 5, h // 3, w * 4 // 5, h * 5 // 6))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def product_page(base: str, title: str = "KLIPPAN Loveseat &amp; cover", width_cm: int = 180) -> bytes:
    """A product page the way many shops write one: JSON-LD Product, a gallery, a dimensions line, a related
    product carousel."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} | Shop</title>
<meta property="og:image" content="{base}/img/sofa-main.jpg">
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "Product", "name": "KLIPPAN Loveseat",
 "sku": "123", "image": ["{base}/img/sofa-main.jpg", "{base}/img/sofa-side.jpg"], "url": "{base}/p/klippan"}}</script>
</head><body><h1>{title}</h1>
<div class="product-gallery"><img src="{base}/img/sofa-main.jpg" alt="KLIPPAN Loveseat">
<img src="{base}/img/sofa-side.jpg" alt="KLIPPAN Loveseat side"></div>
<dl><dt>Dimensions</dt><dd>Width: {width_cm} cm, Depth: 88 cm, Height: 66 cm</dd></dl>
<section class="related-products"><img src="{base}/img/other.jpg" alt="Another sofa"></section>
</body></html>""".encode()


class ShopServer:
    """Serves `routes` (path -> handler) on 127.0.0.1:<free port> in a thread; records the Host headers seen."""

    def __init__(self, routes: dict[str, Route]):
        self.routes = routes
        self.hosts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.hosts.append(self.headers.get("Host", ""))
                route = outer.routes.get(self.path.split("?")[0])
                status, headers, body = route(self) if route else (404, {"Content-Type": "text/plain"}, b"nope")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher gave up on a body it had capped: that is the point of those routes

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ShopServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def html(body: bytes) -> Route:
    """A 200 HTML answer."""
    return lambda h: (200, {"Content-Type": "text/html; charset=utf-8"}, body)


def image(body: bytes, ctype: str = "image/jpeg") -> Route:
    """A 200 image answer."""
    return lambda h: (200, {"Content-Type": ctype}, body)


def redirect(location: str, status: int = 302) -> Route:
    """A redirect."""
    return lambda h: (status, {"Location": location}, b"")


def slow(seconds: float) -> Route:
    """An answer that takes `seconds` before its headers."""
    def route(h):
        time.sleep(seconds)
        return 200, {"Content-Type": "text/html"}, b"<html>late</html>"
    return route
