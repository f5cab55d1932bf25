"""Listing pages of several platform styles (tests/scraper/shop/listings, synthetic): every tile and the next
pages found, no listing read as a product; and every real corpus page (../shared) is read as a product page."""
import csv
import gzip
from pathlib import Path

import pytest

from core.extract import extract_listing

HERE = Path(__file__).resolve().parent
LISTINGS = HERE / "shop" / "listings"
PAGES = HERE.parents[1].parent / "shared" / "data" / "pages"
B = "https://shop.example"

CASES = {
    # tiles as repeated <article> siblings without product-ish class names; rel=next
    "plain_articles.html": (f"{B}/c/sofas", [f"{B}/p/{s}-sofa" for s in ("lund", "mira", "oslo", "vik")],
                            [f"{B}/c/sofas?page=2"]),
    # lazy images in unnamed cells; a javascript: next link with the real URL in data-href
    "js_next.html": (f"{B}/armchairs", [f"{B}/armchair/linen-1", f"{B}/armchair/wing-2", f"{B}/armchair/club-3"],
                     [f"{B}/armchairs?pg=2"]),
    # numbered pagination only, no "next" control
    "numbered.html": (f"{B}/lamps", [f"{B}/lamps/{s}-lamp" for s in ("arc", "desk", "floor", "wall")],
                      [f"{B}/lamps?p=2", f"{B}/lamps?p=3"]),
    # a client-rendered page: the products only in a JSON-LD ItemList
    "itemlist.html": (f"{B}/rugs", [f"{B}/rugs/{s}-rug" for s in ("wool", "jute", "kilim")], [f"{B}/rugs?page=2"]),
    # srcset tiles in a bootstrap grid, an aside of other products, infinite scroll's "load more" with data-url
    "load_more.html": (f"{B}/tables", [f"{B}/tables/{s}-table?ref=list" for s in ("oak", "ash", "elm", "pine")],
                       [f"{B}/tables?offset=4"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_listing_styles_give_every_tile_and_next_page(name):
    url, tiles, nexts = CASES[name]
    listing = extract_listing((LISTINGS / name).read_text(encoding="utf-8"), url, ["shop.example"])
    assert not listing.is_product_page
    assert [t.url for t in listing.tiles] == tiles
    assert listing.next_pages == nexts


def test_a_product_page_with_a_grid_of_recommendations_is_no_listing():
    listing = extract_listing((LISTINGS / "product_with_recs.html").read_text(encoding="utf-8"), f"{B}/beds/luna",
                              ["shop.example"])
    assert listing.is_product_page and listing.tiles == [] and listing.next_pages == []


@pytest.mark.skipif(not (PAGES / "pages.csv").exists(), reason="real page corpus not available")
def test_every_corpus_page_is_read_as_a_product_page():
    """The crawler takes a page with no tiles as a product page (Crawler._page_as_product). Of the 96 real product
    pages 95 are read as product pages today; the one other (a 'related' strip on a page with no structured Product,
    no product metadata, no buy control or quantity field by class/id/name) is the floor to improve, not the goal."""
    listed = []
    rows = list(csv.DictReader(open(PAGES / "pages.csv", encoding="utf-8")))
    for row in rows:
        html = gzip.open(PAGES / row["file"]).read().decode("utf-8", "replace")
        host = row["host"].removeprefix("www.")
        listing = extract_listing(html, row["original_url"], [host])
        if listing.tiles:
            listed.append((row["host"], len(listing.tiles)))
    assert len(rows) >= 90
    assert len(listed) <= 1, listed


def _tiles_page(head: str, body: str) -> str:
    tiles = "".join(f'<div><a href="/p/chair-{i}"><img src="/img/chair-{i}.jpg"></a><a href="/p/chair-{i}">Chair {i}'
                    f'</a>{body.format(i=i)}</div>' for i in range(4))
    return f"<html><head>{head}</head><body><h1>Oak chair</h1><main><section>{tiles}</section></main></body></html>"


@pytest.mark.parametrize("head, tile_extra, own, product", [
    # OpenGraph product price tags name the one product a page sells
    ('<meta property="og:price" content="12900">', "", "", True),
    ('<meta property="product:price:amount" content="129.00">', "", "", True),
    # one buy control of the page's own (OpenCart's #button-cart, a buy_btn link) beside a strip of other products
    ("", "", '<button id="button-cart" class="btn">Naroči</button>', True),
    ("", "", '<a id="buy_btn" href="javascript:;"></a>', True),
    # one quantity field of the page's own
    ("", "", '<form><input name="quantity" value="1"></form>', True),
    # a quantity field in every tile (a B2B listing) says nothing about the page
    ("", '<input name="qty" value="1">', "", False),
    ("", "", "", False),
])
def test_product_page_signals(head, tile_extra, own, product):
    html = _tiles_page(head, tile_extra).replace("<main>", f"<main>{own}")
    listing = extract_listing(html, f"{B}/p/oak-chair", ["shop.example"])
    assert listing.is_product_page is product
    assert bool(listing.tiles) is not product
