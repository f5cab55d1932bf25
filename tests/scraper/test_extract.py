"""Generic extraction on the fixture shop's pages (rendered for a fake host) and on the tricky bits in isolation."""
import json

import pytest

from scraper.config import Selectors
from core.extract import (absolute, best_image, extract_listing, extract_product, iter_jsonld, junk_url,
                             picture_key,
                             parse_html, parse_srcset)

HOST = "shop.example"  # the `render` fixture (conftest) renders the shop templates for this host
B = f"http://{HOST}"


def urls(info):
    return [c.url for c in info.images]


@pytest.mark.parametrize("srcset, expected", [
    ("a.jpg 100w, b.jpg 200w", [("a.jpg", 100), ("b.jpg", 200)]),
    ("https://c.example/w_400,h_300,c_fill/x.jpg 400w, https://c.example/w_800,h_600,c_fill/x.jpg 800w",
     [("https://c.example/w_400,h_300,c_fill/x.jpg", 400), ("https://c.example/w_800,h_600,c_fill/x.jpg", 800)]),
    ("a.jpg 1x,b.jpg 2x", [("a.jpg", 1000), ("b.jpg", 2000)]),
    ("a.jpg, b.jpg 2x", [("a.jpg", 0), ("b.jpg", 2000)]),
    ("  ", []),
])
def test_parse_srcset_keeps_commas_inside_urls(srcset, expected):
    assert parse_srcset(srcset) == expected


@pytest.mark.parametrize("html, expected", [
    # Lazy loading: a data: placeholder in src, the real image in data-src.
    ('<img src="data:image/gif;base64,R0lGOD" data-src="/p/chair.jpg">', f"{B}/p/chair.jpg"),
    # Amazon: data-old-hires is the full-size original.
    ('<img src="/p/x_400.jpg" data-old-hires="/p/x_2000.jpg">', f"{B}/p/x_2000.jpg"),
    # The largest srcset entry wins over src; data-srcset too.
    ('<img src="/a.jpg?width=300" srcset="/a.jpg?width=300 300w, /a.jpg?width=1200 1200w">', f"{B}/a.jpg?width=1200"),
    ('<img data-srcset="/b-300x200.jpg 300w, /b-1024x683.jpg 1024w">', f"{B}/b-1024x683.jpg"),
    # lazysizes templates used by Shopify themes.
    ('<img data-src="//cdn.example/s_{width}x.jpg" data-widths="[180, 360, 1080]">', "http://cdn.example/s_1080x.jpg"),
    # WooCommerce full-size attribute.
    ('<img src="/c-600x450.jpg" data-large_image="/c.jpg" data-large_image_width="1600">', f"{B}/c.jpg"),
    ('<img src="/static/ui-sprite.png">', None),
    ('<img src="/icons/heart.svg">', None),
    ('<img src="data:image/png;base64,iVBOR">', None),
])
def test_best_image(html, expected):
    img = parse_html(html).find("img")
    best = best_image(img, f"{B}/p/page")
    assert (best.url if best else None) == expected


def test_absolute_urls():
    assert absolute("//cdn.example/x.jpg", f"{B}/a/") == "http://cdn.example/x.jpg"
    assert absolute("x.jpg#frag", f"{B}/a/b") == f"{B}/a/x.jpg"
    assert absolute("javascript:void(0)", B) is None
    assert absolute("mailto:a@b", B) is None
    assert junk_url("https://www.facebook.com/tr?id=1&ev=PageView") and junk_url(f"{B}/px/1x1.gif")


def test_jsonld_graph_lists_and_invalid_blocks():
    html = """
    <script type="application/ld+json">{"@graph": [{"@type": "WebPage"}, {"@type": ["Product"], "name": "A",}]}</script>
    <script type="application/ld+json">[{"@type": "Organization"}, {"@type": "BreadcrumbList"}]</script>
    <script type="application/ld+json">{"@type": "Product", "name": "Broken "quote" here"}</script>
    """
    types = [n["@type"] for n in iter_jsonld(parse_html(html))]
    assert types == ["WebPage", ["Product"], "Organization", "BreadcrumbList"]  # trailing comma repaired, broken skipped


def test_shopify_product_jsonld_og_and_gallery(render):
    html = render("shopify_product.html", SLUG="sofa-lund")
    info = extract_product(html, f"{B}/shopify/collections/sofas/products/sofa-lund")
    # The URL that asks for no size is the original: every sized rendition collapses onto it.
    assert urls(info) == [f"{B}/shopify/cdn/shop/files/sofa-lund.jpg?v=1700000001",
                          f"{B}/shopify/cdn/shop/files/sofa-lund-side.jpg?v=1700000011&width=1946"]
    assert (info.title, info.sku, info.brand, info.price) == ("Lund 3-seat sofa", "LUND-3-OAT", "Nordhaus", "1299.00 EUR")
    assert info.dimensions_text == "W 220 x D 95 x H 82 cm"
    assert not any("sofa-mira" in u or "pixel" in u or "facebook" in u or "logo" in u for u in urls(info))


def test_shopify_lazy_theme(render):
    info = extract_product(render("shopify_product_vik.html"), f"{B}/shopify/products/sofa-vik")
    # One picture; its 2048px renditions (_2048x and _1024x1024@2x) tie for largest.
    assert [c.key for c in info.images] == [picture_key(f"{B}/shopify/cdn/shop/products/sofa-vik.jpg")]
    assert info.images[0].width == 2048
    assert (info.title, info.dimensions_text) == ("Vik daybed sofa", "200 x 90 cm")


def test_woocommerce_product(render):
    info = extract_product(render("woo_product.html", SLUG="oak-dining-chair"), f"{B}/woo/product/oak-dining-chair/")
    assert urls(info) == [f"{B}/woo/wp-content/uploads/2024/03/oak-dining-chair.jpg",
                          f"{B}/woo/wp-content/uploads/2024/01/dining-room.jpg"]
    assert (info.title, info.sku, info.category) == ("Oak Dining Chair", "OAK-DC-01", "Chairs")
    assert info.dimensions_text == "45 × 52 × 81 cm"


def test_woocommerce_invalid_jsonld_falls_back(render):
    info = extract_product(render("woo_product.html", SLUG="linen-armchair"), f"{B}/woo/product/linen-armchair/")
    assert urls(info)[0] == f"{B}/woo/wp-content/uploads/2024/03/linen-armchair.jpg"
    assert (info.title, info.sku, info.category) == ("Linen Armchair", None, "Chairs")


def test_magento_microdata_og_and_breadcrumb(render):
    info = extract_product(render("magento_product.html", SLUG="stoneware-bowl"), f"{B}/magento/stoneware-bowl.html")
    # The placeholder's cached 700px copy gives way to the full-size URL from the gallery's x-magento-init JSON.
    assert [u.split("/product/")[1] for u in urls(info)] == ["s/t/stoneware-bowl.jpg", "s/t/stoneware-bowl-main.jpg"]
    assert (info.title, info.sku, info.category) == ("Stoneware Bowl", "CLV-2043", "Bowls")
    assert info.dimensions_text == "Ø 24 x H 9 cm"
    assert not any("linen-cushion" in u for u in urls(info))  # the upsell block


def test_custom_shop_base_href_overrides_and_commas(render):
    sel = Selectors(image=".pdp-viewer img", title="h1.pdp-title", dimensions=".spec-dims")
    html = render("custom_product.html", SLUG="luna-bed", NAME="Luna bed frame", SKU="SW-LUNA-160", DIMS="W 160 cm")
    info = extract_product(html, f"{B}/custom/item/luna-bed", sel)
    assert urls(info) == [f"{B}/custom/media/luna-bed_1600.jpg",  # JSON-LD ImageObject, relative to <base href>
                          f"{B}/custom/img/w_1200,h_900,c_fill/luna-bed-side.jpg",
                          f"{B}/custom/media/luna-bed-detail_1600.jpg"]
    assert (info.title, info.category, info.dimensions_text) == ("Luna bed frame", "Schlafzimmer > Bed frames", "W 160 cm")


def test_js_only_page_falls_back_to_metadata(render):
    info = extract_product(render("custom_product_js.html"), f"{B}/custom/item/nova-bed")
    # The state blob's object names the product (its SKU): its second picture exists nowhere else.
    assert urls(info) == [f"{B}/custom/media/nova-bed_1600.jpg", f"{B}/custom/media/nova-bed-side_1600.jpg"]
    assert info.title == "Nova bed frame"


def test_shopify_listing_pagination_and_tiles(render):
    page1 = extract_listing(render("shopify_collection.html"), f"{B}/shopify/collections/sofas", [HOST])
    assert [t.url.rsplit("/", 1)[1] for t in page1.tiles] == ["sofa-lund", "sofa-mira", "sofa-oslo"]
    assert page1.tiles[0].image.url.endswith("sofa-lund.jpg?v=1700000001&width=533")
    assert page1.tiles[0].title == "Lund 3-seat sofa"
    assert page1.next_pages == [f"{B}/shopify/collections/sofas?page=2"]  # rel=next and the arrow, once
    assert page1.category == "Sofas"
    page2 = extract_listing(render("shopify_collection_2.html"), f"{B}/shopify/collections/sofas?page=2", [HOST])
    assert page2.tiles[0].image.url.endswith("sofa-vik.jpg?v=1700000004&width=533")  # lazy data-src
    # Dawn's "previous" arrow carries the class pagination__item--next: the crawler's visited set absorbs it.
    assert page2.next_pages == [f"{B}/shopify/collections/sofas"]


def test_woocommerce_listing(render):
    listing = extract_listing(render("woo_category.html"), f"{B}/woo/product-category/chairs/", [HOST])
    assert [t.url for t in listing.tiles] == [f"{B}/woo/product/{s}/" for s in
                                              ("oak-dining-chair", "linen-armchair", "bistro-chair")]
    assert listing.tiles[2].image.url == f"{B}/woo/wp-content/uploads/2024/03/bistro-chair-768x576.jpg"
    assert listing.next_pages == [f"{B}/woo/product-category/chairs/page/2/"]
    assert listing.category == "Chairs"


def test_magento_listing(render):
    listing = extract_listing(render("magento_category.html"), f"{B}/magento/home-decor/vases.html", [HOST])
    assert [t.url.rsplit("/", 1)[1] for t in listing.tiles] == ["ceramic-vase-blue.html", "glass-vase-tall.html",
                                                               "stoneware-bowl.html"]
    assert listing.next_pages == [f"{B}/magento/home-decor/vases.html?p=2"]  # top and bottom toolbars, once


def test_custom_listing_data_href_and_selector(render):
    sel = Selectors(product_link="article.card a.card__link", tile="article.card")
    listing = extract_listing(render("custom_listing.html"), f"{B}/custom/shop/beds", [HOST], sel)
    assert [t.url for t in listing.tiles] == [f"{B}/custom/item/luna-bed?ref=grid", f"{B}/custom/item/nova-bed"]
    assert listing.tiles[0].image.url == f"{B}/custom/media/luna-bed_400.jpg"
    assert listing.next_pages == [f"{B}/custom/shop/beds?page=2"]  # <button data-href> "Show more"
    assert listing.category == "Bed frames"


def test_listing_skips_offsite_and_itemlist_jsonld():
    html = f"""<script type="application/ld+json">{{"@type": "ItemList", "itemListElement": [
        {{"@type": "ListItem", "position": 1, "url": "{B}/p/one"}},
        {{"@type": "ListItem", "position": 2, "item": {{"@type": "Product", "url": "https://other.example/p/two"}}}}]}}
    </script><a href="/products/three">Three</a><a href="https://other.example/products/four">Four</a>"""
    listing = extract_listing(html, f"{B}/c/all", [HOST])
    assert [t.url for t in listing.tiles] == [f"{B}/p/one", f"{B}/products/three"]


# Renditions of one picture on one page (size tokens in path segments, NxM, size words, rendition letters, SEO
# name after a bare id, one hex-named file on two CDN paths) and pictures that must stay apart.
@pytest.mark.parametrize("a, b, same", [
    ("https://c.example/p/2/w/1920/1002710040_1_1_1.jpg", "https://c.example/p/2/w/769/1002710040_1_1_1.jpg", True),
    ("https://c.example/img/1200x1200/chair.jpg", "https://c.example/img/300x300/chair.jpg", True),
    ("https://c.example/p/chair_800x.jpg", "https://c.example/p/chair-300x200.jpg", True),
    ("https://c.example/p/chair.jpg", "https://c.example/p/chair@2x.jpg", True),
    ("https://c.example/images/img-125/3/1045573.jpg", "https://c.example/images/img-large/3/1045573.jpg", True),
    ("https://c.example/v1/1-zoom-desktop.jpg", "https://c.example/v1/1-cart.jpg", True),
    ("https://c.example/2/10134622/m_10134622_001.jpg", "https://c.example/2/10134622/l_10134622_001.jpg", True),
    ("https://c.example/files/441/2140441/product/name,mini.jpg",
     "https://c.example/files/441/2140441/product/name,large.jpg", True),
    ("https://c.example/ads/93261685_614.jpg", "https://c.example/ads/93261685_934.jpg", True),
    ("https://c.example/photos/341/3410048/3410048_350_A.jpg", "https://c.example/photos/341/3410048/3410048_1200_A.jpg",
     True),
    ("https://c.example/00808_lrs0cr9M3AC_0lM0t2_50x50c.jpg", "https://c.example/00808_lrs0cr9M3AC_0lM0t2_600x450.jpg",
     True),
    ("https://i.example/i/shop/e72f372d-0610-5254", "https://i.example/i/shop/e72f372d-0610-5254/sofa-grey.jpg", True),
    ("https://m1.example/thumb_hd/p1/656e3a19/d9e55f4feb3a4b0a95ed8c87e99ddc71.jpg",
     "https://img.example/article/p1/656e3a19/d9e55f4feb3a4b0a95ed8c87e99ddc71.jpg?imwidth=1800", True),
    # Apart: other views, other products, a numbered sequence, other colours, words that are no size.
    ("https://c.example/p/2/w/769/1002710040_1_1_1.jpg", "https://c.example/p/2/w/769/1002710040_2_1_1.jpg", False),
    ("https://c.example/files/441/2140441/product/name,mini.jpg",
     "https://c.example/files/661/2140661/product/name,mini.jpg", False),
    ("https://c.example/b/photo_101.jpg", "https://c.example/b/photo_102.jpg", False),
    ("https://c.example/p/sofa-grey.jpg", "https://c.example/p/sofa-blue.jpg", False),
    ("https://c.example/p/hydrotac.jpg", "https://c.example/p/hydrotac-howto.jpg", False),
    ("https://c.example/photos/341/3410048/3410048_350_A.jpg", "https://c.example/photos/341/3410048/3410048_350_B.jpg",
     False),
])
def test_picture_groups_collapse_renditions_only(a, b, same):
    from core.extract import picture_groups
    ka, kb = picture_key(a), picture_key(b)
    groups = picture_groups([ka, kb])
    assert (groups[ka] == groups[kb]) is same, (ka, kb)


def test_renditions_shown_together_are_one_picture_and_thumbnail_strips_inherit_evidence():
    html = """<html><head><meta property="og:image" content="https://c.example/g/1-large.jpg"></head><body>
    <h1>Oak chair</h1>
    <ul class="strip">
      <li><a href="https://c.example/g/1-zoom.jpg"><img src="https://c.example/g/t1.jpg"></a></li>
      <li><a href="#"><img src="https://c.example/g/t2.jpg" alt="Oak chair, back"></a></li>
      <li><a href="#"><img src="https://c.example/g/t3.jpg" alt="Oak chair, side"></a></li>
    </ul>
    <div class="related"><ul><li><a href="/other"><img src="https://c.example/g/other.jpg"></a></li>
      <li><a href="/other2"><img src="https://c.example/g/other2.jpg"></a></li></ul></div>
    </body></html>"""
    info = extract_product(html, f"{B}/p/oak-chair")
    got = sorted(u.rsplit("/", 1)[1] for c in info.images for u in [c.url, *c.alternates])
    # t1 is the thumbnail of the linked 1-zoom (one picture); t2/t3 sit beside it; the related tiles stay out.
    assert len(info.images) == 3
    assert "other.jpg" not in got and "other2.jpg" not in got
    assert {"1-zoom.jpg", "t1.jpg", "t2.jpg", "t3.jpg"} <= set(got)


@pytest.mark.parametrize("url", [
    "https://i1.ytimg.com/vi/abc123/default.jpg",  # a video's thumbnail
    "https://maps.googleapis.com/maps/api/staticmap?center=1,2&size=600x300",
    "https://map7.example-classifieds.org/t09/14/8089/5298.png",  # a map tile server
    "https://www.example-classifieds.org/images/map/marker-shadow.png",
    "https://media.cdn.example/v/Shop/4667999_R_Video001?w=268&h=268",  # a numbered video's still
    "https://media.cdn.example/s/Shop/4667999_R_SET?$Main768$",  # an image set, not an image
    "https://ugc.reviews.example/static/1493-en_gb/trust_mark.png",  # a review site's seal
    "https://cdn.example/storage/brands/10/9780/images/res_2083.png",  # a brand's logo
    "https://www.shop.example/_/assets/images/disruptor__top-right--556.png",  # a promotional sticker
])
def test_chrome_picture_urls_are_junk(url):
    assert junk_url(url)


@pytest.mark.parametrize("url", [
    "https://cdn.example/products/google-nest-video-doorbell.jpg",  # 'video' in a product's name
    "https://cdn.example/p/dining-set-oak.jpg",  # a set with a file extension is a picture of a set
    "https://cdn.example/images/brand-new-sofa.jpg",
])
def test_product_pictures_with_chrome_words_are_kept(url):
    assert not junk_url(url)


def _page(body: str, script: str = "") -> str:
    return f"""<html><head><title>Oak Chair</title>
    <script type="application/ld+json">{{"@context": "https://schema.org", "@type": "Product", "name": "Oak Chair Nova",
      "sku": "OC-12345", "image": "https://cdn.example/p/OC-12345-main.jpg"}}</script>{script}</head>
    <body><h1>Oak Chair Nova</h1>{body}</body></html>"""


def test_video_poster_and_colour_chips_are_not_product_pictures():
    html = _page("""<div class="product-gallery"><img src="https://cdn.example/p/OC-12345-main.jpg">
      <img src="https://cdn.example/p/OC-12345-side.jpg">
      <video poster="https://cdn.example/p/OC-12345-film.jpg"><source src="https://cdn.example/p/OC-12345.mp4"></video>
      </div><fieldset><label><img class="_color-image" src="https://cdn.example/p/OC-99999-red.jpg" alt="Red">
      </label></fieldset>""")
    got = urls(extract_product(html, "https://shop.example/p/oak-chair-nova-OC-12345"))
    assert got == ["https://cdn.example/p/OC-12345-main.jpg", "https://cdn.example/p/OC-12345-side.jpg"]


def test_script_json_other_models_in_the_products_own_object_are_foreign():
    state = {"product": {"sku": "OC-12345", "name": "Oak Chair Nova",
                         "brand": {"name": "Nova", "logo": "https://cdn.example/b/nova.png"},
                         "images": ["https://cdn.example/p/OC-12345-main.jpg", "https://cdn.example/p/OC-12345-back.jpg"],
                         "variants": [{"sku": "OC-12345", "img_url": "https://cdn.example/p/OC-12345-main.jpg"},
                                      {"sku": "OC-12346", "img_url": "https://cdn.example/p/OC-12346-main.jpg"}],
                         "colours": [{"name": "Oak Chair Nova - walnut", "url": "https://shop.example/p/walnut-OC-7",
                                      "image": "https://cdn.example/p/walnut-7.jpg"}]}}
    script = f'<script type="application/json"><![CDATA[{json.dumps(state)}]]></script>'
    got = urls(extract_product(_page("", script), "https://shop.example/p/oak-chair-nova-OC-12345"))
    assert sorted(got) == ["https://cdn.example/p/OC-12345-back.jpg", "https://cdn.example/p/OC-12345-main.jpg"]


def test_thumbnail_strip_in_a_table_layout_inherits_the_main_pictures_evidence():
    slot = """<li><a href="javascript:;"></a><table><tbody><tr><td><div>
      <img src="https://img.example/g/{id}/s-l64.jpg" style="max-width:64px" alt="Oak Chair Nova thumbnail">
      </div></td></tr></tbody></table></li>"""
    html = _page("<div><ul>" + "".join(slot.format(id=i) for i in ("AAA", "BBB", "CCC")) + "</ul></div>",
                 '<meta property="og:image" content="https://img.example/g/AAA/s-l500.jpg">')
    got = {picture_key(u) for u in urls(extract_product(html, "https://shop.example/itm/302474151804"))}
    assert {picture_key(f"https://img.example/g/{i}/s-l64.jpg") for i in ("AAA", "BBB", "CCC")} <= got
