"""End to end on the annotated real pages: the crawler fetches each page over HTTP, extracts, downloads and keeps
pictures; the manifest it writes is scored against tests/scraper/pages_expected.json like extract_bench does.

A threaded server on 127.0.0.1 stands in for every shop and CDN: it answers a corpus page's URL with the saved HTML
(unchanged), robots.txt with 404 (no rules) and any other URL with a generated JPEG at the size the URL asks for
(width/height tokens as a CDN reads them; 1000x1000 when none), distinct per picture. The pages' absolute URLs name
the shops' hosts, so the bench mounts a transport adapter on the crawler's session that sends every request to the
local server with the URL it was meant for in a header: bench-only, nothing in the scraper knows about it.
Run: .venv/bin/python benchmarks/crawl_bench.py [--pages DIR] [--limit N]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
from PIL import Image
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.extract_bench import EXPECTED, PAGES, picture_name  # noqa: E402
from core.extract import extract_product  # noqa: E402
from scraper.config import CrawlConfig, HttpConfig, SourceConfig  # noqa: E402
from scraper.crawl import Crawler  # noqa: E402
from scraper.fetch import PoliteClient  # noqa: E402

log = logging.getLogger(__name__)
URL_HEADER = "X-Bench-Url"
_WIDTH_KEYS = {"w", "width", "imwidth", "wid", "sw", "odnwidth", "maxwidth", "mw", "size", "sz"}
_HEIGHT_KEYS = {"h", "height", "imheight", "hei", "sh", "odnheight", "maxheight", "mh"}


def page_key(url: str) -> str:
    """A page URL as the server looks it up: host and unquoted path and query, no scheme, fragment or www."""
    parts = urlsplit(url)
    query = f"?{unquote(parts.query)}" if parts.query else ""
    return f"{(parts.hostname or '').removeprefix('www.')}{unquote(parts.path)}{query}"


def requested_size(url: str) -> tuple[int, int]:
    """The width and height an image URL asks a CDN for (query parameters, NxM and s-lN tokens); 1000x1000 else."""
    parts = urlsplit(url)
    width = height = 0
    for key, value in parse_qsl(parts.query):
        number = re.match(r"\d{2,4}", value)
        if number and key.lower() in _WIDTH_KEYS:
            width = int(number.group())
        elif number and key.lower() in _HEIGHT_KEYS:
            height = int(number.group())
    path = unquote(parts.path)
    if not width and (m := re.search(r"(?<![\d])(\d{2,4})x(\d{2,4})(?![\d])", path)):
        width, height = int(m.group(1)), int(m.group(2))
    if not width and (m := re.search(r"[-_/](?:s-l|w_?|w-)(\d{2,4})(?![\d])", path)):
        width = int(m.group(1))
    if not width and (m := re.search(r"_([1-9]\d{1,3})\.(?:jpe?g|png|webp)$", path, re.IGNORECASE)):
        width = int(m.group(1))  # name_600.jpg; not the picture numbers of name_001.jpg
    width = min(width if width >= 16 else 1000, 4000)
    return width, min(height or width, 4000)


@lru_cache(maxsize=4096)
def picture_bytes(seed: str, width: int, height: int) -> bytes:
    """A JPEG of a picture: an 8x8 colour grid drawn from the seed (so pictures differ), at the given size."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
    grid = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    out = io.BytesIO()
    grid.resize((width, height), Image.NEAREST).save(out, "JPEG", quality=85)
    return out.getvalue()


class _Handler(BaseHTTPRequestHandler):
    """Serves the corpus pages, 404 for robots.txt and a generated JPEG for anything else."""

    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        url = self.headers.get(URL_HEADER, "")
        html = self.server.pages.get(page_key(url))
        if html is not None:
            self._answer(200, "text/html; charset=utf-8", html)
        elif urlsplit(url).path == "/robots.txt":
            self._answer(404, "text/plain", b"")
        else:
            # The picture: its URL without the query (renditions of one picture look alike), at the asked size.
            parts = urlsplit(url)
            self._answer(200, "image/jpeg", picture_bytes(f"{parts.hostname}{parts.path}", *requested_size(url)))

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- http.server's signature
        log.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pages: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pages = pages


class LocalShops(HTTPAdapter):
    """A transport adapter that sends every request to the local server, the URL it was for in a header."""

    def __init__(self, port: int):
        super().__init__(max_retries=0)
        self.port = port

    def send(self, request: Any, **kwargs: Any) -> Any:
        """Send to 127.0.0.1 and give the response back under the URL the crawler asked for."""
        original = request.url
        request.headers[URL_HEADER] = original
        request.url = f"http://127.0.0.1:{self.port}/"
        response = super().send(request, **kwargs)
        response.url = request.url = original
        return response


@dataclass
class CrawlScore:
    """One page crawled end to end."""

    sha: str
    expected: int
    found: int
    kept: int
    foreign: int


def run(pages_dir: Path = PAGES, limit: int | None = None, out_dir: Path | None = None) -> tuple[list[CrawlScore],
                                                                                                dict[str, int]]:
    """Crawl the annotated pages through the local server; per-page scores and the crawl's failure counts."""
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    files = {Path(r["file"]).name.removesuffix(".html.gz"): r["file"]
             for r in csv.DictReader(open(pages_dir / "pages.csv", encoding="utf-8"))}
    chosen = [(sha, entry) for sha, entry in expected.items() if sha in files][:limit]
    pages = {page_key(entry["url"]): gzip.open(pages_dir / files[sha]).read() for sha, entry in chosen}
    sources = [SourceConfig(name=sha[:12], start_urls=[entry["url"].split("#")[0]], max_pages=1, min_delay=0.0)
               for sha, entry in chosen]
    cfg = CrawlConfig(sources=sources, http=HttpConfig(retries=0, connect_timeout=5, read_timeout=30))
    server = _Server(pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = out_dir or Path(tmp)
            client = PoliteClient(cfg.http)
            adapter = LocalShops(server.server_address[1])
            client.session.mount("http://", adapter)
            client.session.mount("https://", adapter)
            with Crawler(cfg, out, client=client, progress=False) as crawler:
                for source in cfg.sources:
                    for url in source.start_urls:
                        client.set_min_delay(url, 0.0)
                crawler.run()
                failures = dict(crawler.stats.failures)
                manifest = crawler.store.manifest_path
            records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line]
    finally:
        server.shutdown()
        server.server_close()
    scores = []
    for sha, entry in chosen:
        # A downloaded URL names its picture through the rule like in extract_bench: by itself, else through the
        # other renditions the extractor offered for it (the rule may be written for another rendition's form).
        renditions = {u: [c.url, *c.alternates] for c in extract_product(pages[page_key(entry["url"])].decode(
            "utf-8", "replace"), entry["url"]).images for u in [c.url, *c.alternates]}
        kept = [r["image_url"] for r in records if r["source"] == sha[:12]]
        names = [picture_name(entry["rule"], [u, *renditions.get(u, [])], entry["pictures"]) for u in kept]
        found = {n for n in names if n}
        scores.append(CrawlScore(sha, len(entry["pictures"]), len(found), len(kept), names.count(None)))
    return scores, failures


def main() -> None:
    """Print the per-page table, the failures and the overall line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, default=PAGES)
    parser.add_argument("--limit", type=int, default=None, help="crawl only the first N annotated pages")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    start = time.perf_counter()
    scores, failures = run(args.pages, args.limit)
    print(f"{'page':12} {'expected':>8} {'found':>6} {'kept':>5} {'foreign':>7}")
    for s in scores:
        print(f"{s.sha[:12]:12} {s.expected:8d} {s.found:6d} {s.kept:5d} {s.foreign:7d}")
    kept = sum(s.kept for s in scores) or 1
    recall = sum(s.found for s in scores) / max(1, sum(s.expected for s in scores))
    print(f"failures: {failures}")
    print(f"\n{len(scores)} pages crawled in {time.perf_counter() - start:.0f} s: recall {recall:.3f}, "
          f"foreign {sum(s.foreign for s in scores) / kept:.1%} of kept images")


if __name__ == "__main__":
    main()
