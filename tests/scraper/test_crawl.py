"""End-to-end crawls of the fixture shop on 127.0.0.1: extraction, politeness, faults, storage, resume and kill."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageOps

import scraper.crawl
from scraper.config import load_config
from scraper.crawl import Crawler
from core.manifest import read_manifest, resolve_image_path, sha256_file

REPO = Path(__file__).resolve().parents[2]

# What the fixture shop must yield: images kept per (source, title).
EXPECTED_IMAGES = {
    ("shopify", "Lund 3-seat sofa"): 2, ("shopify", "Mira loveseat"): 2, ("shopify", "Oslo corner sofa"): 2,
    ("shopify", "Vik daybed sofa"): 1, ("shopify", "Ula sofa bed"): 1,
    ("woo", "Oak Dining Chair"): 2, ("woo", "Linen Armchair"): 2, ("woo", "Bistro Chair"): 1,
    ("woo", "Rattan Lounge Chair"): 1, ("woo", "Windsor Chair"): 1,
    ("magento", "Ceramic Vase Blue"): 2, ("magento", "Tall Glass Vase"): 1, ("magento", "Stoneware Bowl"): 1,
    ("magento", "Terracotta Planter"): 1, ("magento", "Espresso Cup Set"): 1,
    ("custom", "Luna bed frame"): 3, ("custom", "Nova bed frame"): 1, ("custom", "Aria bed frame"): 3,
    ("custom", "Bea bed frame (outlet)"): 1,
}
EXPECTED_FAILURES = {"page_http_404": 1, "page_timeout": 1, "page_too_many_redirects": 1,
                     "page_robots_disallowed": 2, "too_large": 1, "not_an_image": 1}


def _crawl(config, out):
    with Crawler(load_config(config), out, progress=False) as crawler:
        return crawler.run()


def _manifest(out):
    return list(read_manifest(out / "manifest.jsonl"))


@pytest.fixture(scope="module")
def crawled(shared_shop, tmp_path_factory):
    """One full crawl of the fixture shop, shared by this module: (shop, output folder, stats, config, requests)."""
    tmp = tmp_path_factory.mktemp("crawl")
    config = shared_shop.write_config(tmp / "sources.yaml")
    out = tmp / "raw"
    stats = _crawl(config, out)
    # This crawl's requests, before later tests (rerun, kill) add theirs.
    return shared_shop, out, stats, config, list(shared_shop.log)


def _requested(log, prefix):
    return [p for _, p in log if p.startswith(prefix)]


def test_crawl_yields_the_products_images(crawled):
    shop, out, stats, _, log = crawled
    records = _manifest(out)
    assert Counter((r.source, r.title) for r in records) == EXPECTED_IMAGES
    assert (stats.pages, stats.images, stats.tile_fallbacks) == (8, sum(EXPECTED_IMAGES.values()), 5)
    assert dict(stats.failures) == EXPECTED_FAILURES
    by_title = {r.title: r for r in records}
    # Fixed category, breadcrumb (JSON-LD, HTML), JSON-LD category and the listing's own category -> classes.
    assert {(r.source, r.category, r.klass) for r in records} == {
        ("shopify", "Sofas", "couch"), ("woo", "Chairs", "chair"), ("magento", "Vases", "vase"),
        ("magento", "Bowls", "bowl"), ("magento", "Cups & Mugs", "cup"),
        ("custom", "Schlafzimmer > Bed frames", "bed"), ("custom", "Bed frames", "bed")}
    lund = by_title["Lund 3-seat sofa"]
    assert (lund.sku, lund.dimensions.width_cm, lund.dimensions.depth_cm, lund.dimensions.height_cm) == \
        ("LUND-3-OAT", 220, 95, 82)
    assert by_title["Ceramic Vase Blue"].dimensions.diameter_cm == 18
    assert lund.page_url == f"{shop.base}/shopify/collections/sofas/products/sofa-lund"
    # The listing tile is used when the product page can't be had (404 here), largest srcset entry.
    assert by_title["Ula sofa bed"].image_url.endswith("width=533")
    # EXIF orientation applied: stored sideways, recorded upright (as the labeller will see it).
    assert (by_title["Espresso Cup Set"].width, by_title["Espresso Cup Set"].height) == (800, 600)


def test_crawl_skips_what_it_must(crawled):
    shop, out, stats, _, log = crawled
    image_urls = {r.image_url for r in _manifest(out)}
    # Exact duplicate at a second URL, and an older smaller upload of the same photo: kept once each.
    assert (stats.duplicates, stats.near_duplicates) == (1, 1)
    assert not any("dining-room-1" in u or "mira-social" in u for u in image_urls)
    assert any("2024/01/dining-room.jpg" in u for u in image_urls)
    # Never fetched: robots-disallowed pages, tracking pixels, sprites, icons, logos, cross-sell products.
    for never in ("/magento/terracotta-planter.html", "/custom/outlet/", "/shopify/pixel.gif", "/custom/px.gif",
                  "/custom/static/", "/woo/wp-content/uploads/2023/11/oak-ash-logo", "/shopify/cdn/shop/files/nordhaus"):
        assert _requested(log, never) == [], never
    assert not any("folding-chair" in p or "linen-cushion" in p or "/cart" in p for _, p in log)
    # Each listing page once, although pages link back to each other.
    listings = Counter(p for _, p in log if "collections/sofas" in p and "products" not in p
                       or "product-category" in p or "vases.html" in p or "shop/beds" in p)
    assert set(listings.values()) == {1} and len(listings) == 8
    assert shop.agents == {"RoomFitBot-test/0.1 (+https://example.invalid/roomfit)"}


def test_faults_are_retried_or_counted(crawled):
    shop, out, stats, _, log = crawled
    # 500 then 200: retried, and the product is complete.
    assert len(_requested(log, "/shopify/collections/sofas/products/sofa-oslo")) == 2
    assert sum("sofa-oslo" in (r.image_url or "") for r in _manifest(out)) == 2
    # 429 with Retry-After: 120 -> waited, but only max_retry_after (0.3 s), then retried.
    times = [t for t, p in log if p == "/woo/product/linen-armchair/"]
    assert len(times) == 2 and 0.25 <= times[1] - times[0] < 5
    # Redirect loop bounded by max_redirects (4): 5 requests, then given up.
    assert len(_requested(log, "/woo/product/windsor-chair")) == 5
    # Slow page: read timeout (0.3 s) on each of 1 + 2 retries.
    assert len(_requested(log, "/woo/product/rattan-lounge-chair/")) == 3


def test_output_is_what_the_labeller_reads(crawled):
    _, out, _, _, _ = crawled
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    contract = {"id", "path", "sha256", "width", "height", "category", "class", "title", "sku", "dimensions",
                "image_url", "page_url", "source", "fetched_at"}  # DEVELOPERS.md
    assert all(set(json.loads(line)) == contract for line in lines)
    records = list(read_manifest(manifest))
    assert len(records) == len(lines) == len({r.sha256 for r in records}) == len({r.id for r in records})
    for record in records:
        path = resolve_image_path(manifest, record)
        assert path.is_file() and path.parent == out / "images"
        assert sha256_file(path) == record.sha256 and path.stem == record.sha256
        with Image.open(path) as im:
            assert ImageOps.exif_transpose(im).size == (record.width, record.height)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(Path(r.path).name for r in records)


def test_rerun_resumes_without_refetching(crawled):
    shop, out, _, config, _ = crawled
    before = (out / "manifest.jsonl").read_text()
    mark = len(shop.log)
    again = _crawl(config, out)
    assert (again.images, again.duplicates, again.near_duplicates) == (0, 0, 0)
    assert again.images_resumed == sum(EXPECTED_IMAGES.values())
    assert (out / "manifest.jsonl").read_text() == before
    refetched = [p for _, p in shop.log[mark:]]
    # Only listing pages, plus product pages whose earlier failure was transient (the slow one), are fetched again.
    assert not any("/uploads/" in p or "/cdn/" in p or "/media/" in p or "/img/" in p for p in refetched)
    assert {p for p in refetched if "rattan" in p or "windsor" in p or "sofa-" in p} == {
        "/woo/product/rattan-lounge-chair/"}


def test_kill_midway_and_resume_loses_and_duplicates_nothing(crawled, tmp_path):
    shop, reference, _, _, _ = crawled
    expected = sorted(r.sha256 for r in _manifest(reference))  # what an uninterrupted crawl kept

    config = shop.write_config(tmp_path / "slow.yaml", min_delay=0.02)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "scraper", "crawl", "--config", str(config), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            if manifest.exists() and len(manifest.read_bytes().splitlines()) >= 8:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    killed_at = len(_manifest(out))
    assert 8 <= killed_at < len(expected), "the kill must land mid-crawl"

    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "images in manifest before" in done.stdout
    records = _manifest(out)
    assert sorted(r.sha256 for r in records) == expected  # nothing lost, nothing twice
    assert len(manifest.read_text().splitlines()) == len(expected)
    assert not list((out / "images").glob(".*.tmp"))
    assert len(list((out / "images").iterdir())) == len(expected)
    assert os.path.getsize(out / "crawl_state.jsonl") > 0


def test_listing_only_and_max_products(shop, tmp_path):
    config = tmp_path / "sources.yaml"
    config.write_text(f"""
http: {{read_timeout: 2, retries: 0}}
images: {{min_side: 200}}
sources:
  - name: woo-tiles
    start_urls: ["{shop.base}/woo/product-category/chairs/"]
    product_pages: false
    max_pages: 1
    min_delay: 0
  - name: magento-two
    start_urls: ["{shop.base}/magento/home-decor/vases.html"]
    max_products: 2
    min_delay: 0
""")
    stats = _crawl(config, tmp_path / "raw")
    records = _manifest(tmp_path / "raw")
    tiles = [r for r in records if r.source == "woo-tiles"]
    assert [(r.title, r.width, r.category, r.klass) for r in tiles] == [
        (name, 768, "Chairs", "chair") for name in ("Oak Dining Chair", "Linen Armchair", "Bistro Chair")]
    assert shop.requested("/woo/product/") == [] and shop.requested("/woo/product-category/chairs/page/2/") == []
    assert {r.title for r in records if r.source == "magento-two"} == {"Ceramic Vase Blue", "Tall Glass Vase"}
    assert stats.tile_fallbacks == 3 and stats.pages == 1 + 1  # max_products reached on Magento's first page


def test_offsite_redirects_and_pages_without_products_are_counted(shop, tmp_path):
    config = tmp_path / "sources.yaml"
    config.write_text(f"""
sources:
  - name: partner-link
    start_urls: ["{shop.base}/custom/go/partner"]
    min_delay: 0
  - name: not-a-shop-page
    start_urls: ["{shop.base}/custom/about"]
    min_delay: 0
""")
    stats = _crawl(config, tmp_path / "raw")
    assert dict(stats.failures) == {"offsite_redirect": 1, "no_products_found": 1}
    assert stats.images == 0 and not _manifest(tmp_path / "raw")
    assert shop.requested("/custom/shop/beds") == []  # the off-site target is not even downloaded


def test_a_malformed_page_is_counted_and_the_crawl_goes_on(shop, tmp_path, monkeypatch):
    config = tmp_path / "sources.yaml"
    config.write_text(f"""
sources:
  - name: odd
    start_urls: ["{shop.base}/custom/item/broken-jsonld", "{shop.base}/custom/about"]
    min_delay: 0
""")
    stats = _crawl(config, tmp_path / "raw")
    assert stats.pages == 2  # the page after it was still crawled
    # Structured data of the wrong shape is read around: that page is a page without pictures, like the about page.
    assert dict(stats.failures) == {"no_products_found": 2}

    real = scraper.crawl.extract_product

    def tripping(html, url, selectors=None):
        if url.endswith("broken-jsonld"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(html, url, selectors)
    monkeypatch.setattr(scraper.crawl, "extract_product", tripping)
    stats = _crawl(config, tmp_path / "raw2")
    assert stats.pages == 2
    # a page the extractor still trips over counts once, as parse_error, and the crawl goes on
    assert dict(stats.failures) == {"parse_error": 1, "no_products_found": 1}
