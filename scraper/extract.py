"""Generic extraction from shop HTML: product images and facts, listing tiles, product links and pagination.

Generic first (JSON-LD, microdata, OpenGraph, gallery markup used by Shopify, WooCommerce, Magento and most custom
shops), per-source CSS selector overrides second: an override, when set, replaces the generic guess for its field.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

from .config import Selectors

log = logging.getLogger(__name__)

# Containers whose images/links are other products (cross-sell carousels) or site chrome, never this product.
_EXCLUDED = re.compile(r"related|upsell|up-sell|cross-?sell|recommend|also-(?:like|bought|viewed)|recently[-_ ]?viewed|"
                       r"you-may|similar|complete-the-look|mini-?cart|cart-drawer|megamenu|site-header|site-footer",
                       re.IGNORECASE)
_CHROME_TAGS = {"header", "footer", "nav", "aside"}
# Image URLs that are never product photos.
_JUNK_URL = re.compile(r"sprite|(?:^|[/_.-])icons?(?:[/_.-]|$)|logo|favicon|placeholder|spinner|loader|loading\.gif|"
                       r"spacer|blank\.gif|1x1|pixel|beacon|/tr\?|/collect\?|doubleclick|analytics|\.svg(?:$|\?)",
                       re.IGNORECASE)
_JUNK_CLASS = re.compile(r"\b(?:icon|logo|sprite|avatar|badge|flag|rating|swatch|payment)", re.IGNORECASE)
# Main product gallery containers across common platforms (class or id).
_GALLERY = re.compile(r"gallery|product[-_]?(?:single__)?(?:media|image|photo)|media[-_]?gallery|main[-_]?image|"
                      r"image[-_]?block|pdp[-_]?(?:image|media|viewer)|fotorama|product[-_]?slider|zoom",
                      re.IGNORECASE)
# Listing tiles: one product each (WooCommerce li.product, Magento .product-item, Shopify .card-wrapper / .grid-product,
# PrestaShop .product-miniature, generic .product-card/.product-tile).
_TILE_CLASS = re.compile(r"^(?:product|product[-_](?:item|card|tile|box|miniature|grid[-_]?item|thumb)|"
                         r"grid[-_]product|card-wrapper|product-card-wrapper)$", re.IGNORECASE)
_PRODUCT_PATH = re.compile(r"/products?/[^/?#]+")
_NEXT_TEXT = re.compile(r"^\s*(?:next(?: page)?|load more|show more|more products|›|»|→|>)\s*[›»→>]?\s*$",
                        re.IGNORECASE)
_NOT_PRODUCT_LINK = re.compile(r"add-to-cart|/cart\b|/checkout|/account|/login|/wishlist|/compare|#", re.IGNORECASE)
_DIM_LABEL = re.compile(r"^\s*(?:overall |product |item )?(?:dimensions?|measurements?|size|abmessungen|ma[aå]tt)"
                        r"(?:\s*\([^)]*\))?\s*:?\s*$", re.IGNORECASE)
_SIZE_PARAMS = {"width", "height", "w", "h", "size", "v", "quality", "q", "format", "fit", "crop", "auto", "dpr"}
# Attributes that hold a full-size image (Amazon data-old-hires, WooCommerce data-large_image, zoom plugins).
_HIRES_ATTRS = ("data-old-hires", "data-large_image", "data-zoom-image", "data-zoom", "data-full", "data-hires",
                "data-src-large")
_SRC_ATTRS = ("src", "data-src", "data-lazy-src", "data-original", "data-lazy")
_SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset")
_UNIT_CODES = {"CMT": "cm", "MMT": "mm", "MTR": "m", "INH": "in"}


@dataclass
class ImageCandidate:
    """An image URL with how large it probably is (pixels wide; 0 unknown) and where it was found."""

    url: str
    width: float = 0.0
    origin: str = ""


@dataclass
class ProductInfo:
    """What a product page says about the product."""

    url: str
    title: str | None = None
    sku: str | None = None
    brand: str | None = None
    category: str | None = None
    price: str | None = None
    dimensions_text: str | None = None
    images: list[ImageCandidate] = field(default_factory=list)


@dataclass
class Tile:
    """One product on a listing page: link, and the tile's own title and image when it has them."""

    url: str
    title: str | None = None
    image: ImageCandidate | None = None


@dataclass
class ListingInfo:
    """What a listing (category) page offers: product tiles, further pages and the category it shows."""

    tiles: list[Tile] = field(default_factory=list)
    next_pages: list[str] = field(default_factory=list)
    category: str | None = None


def parse_html(html: str) -> BeautifulSoup:
    """Parse HTML leniently with lxml."""
    return BeautifulSoup(html, "lxml")


def base_url(soup: BeautifulSoup, page_url: str) -> str:
    """The URL relative links resolve against: <base href> when present, else the page URL."""
    base = soup.find("base", href=True)
    return urljoin(page_url, base["href"].strip()) if base else page_url


def absolute(href: str | None, base: str) -> str | None:
    """Resolve a (relative or protocol-relative) link; None for data:, javascript:, mailto: and empty links."""
    if not href:
        return None
    href = href.strip()
    if not href or href.startswith("#") or re.match(r"^(?:data|javascript|mailto|tel|blob):", href, re.IGNORECASE):
        return None
    url = urljoin(base, href)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit(parts._replace(fragment=""))


def same_site(url: str, domains: Iterable[str]) -> bool:
    """True when the URL's host is one of `domains` or a subdomain of one."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in domains)


def parse_srcset(value: str) -> list[tuple[str, float]]:
    """Parse a srcset into (url, width) pairs per the HTML spec, so commas inside URLs survive.

    Width comes from a `w` descriptor, or a density `x` times 1000 so that density-only sets still rank.
    """
    out, i, n = [], 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        if not url:
            break
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = i
            depth = 0
            while i < n and (value[i] != "," or depth):
                depth += {"(": 1, ")": -1}.get(value[i], 0)
                i += 1
            descriptor = value[start:i].strip()
        width = 0.0
        m = re.search(r"(\d+(?:\.\d+)?)\s*([wx])\b", descriptor)
        if m:
            width = float(m.group(1)) * (1 if m.group(2) == "w" else 1000)
        out.append((url, width))
    return out


def _excluded(tag: Tag, chrome: bool = True) -> bool:
    """True when the tag sits in a cross-sell block (or, with chrome, in header/footer/nav/aside)."""
    for el in [tag, *tag.parents]:
        if not isinstance(el, Tag) or el.name in ("body", "html", "[document]"):
            continue
        if chrome and el.name in _CHROME_TAGS:
            return True
        attrs = " ".join([el.name, *el.get("class", []), el.get("id", ""), el.get("aria-label", ""),
                          el.get("data-section-type", "")])
        if _EXCLUDED.search(attrs):
            return True
    return False


def _junk_img(img: Tag) -> bool:
    """Tracking pixels, icons, sprites, logos and swatches by their markup."""
    for dim in ("width", "height"):
        value = str(img.get(dim, "")).strip().rstrip("px")
        if value.isdecimal() and int(value) <= 2:
            return True
    return bool(_JUNK_CLASS.search(" ".join(img.get("class", []))))


def junk_url(url: str) -> bool:
    """True for image URLs that are never product photos (sprites, icons, pixels, SVG, placeholders)."""
    parts = urlsplit(url)
    return bool(_JUNK_URL.search(f"{parts.path}?{parts.query}"))  # the host may say "analytics" and be a CDN


def _width_hint(url: str) -> float:
    """Size hints inside CDN URLs: ?width=1946, -600x600.jpg, _1200x.jpg, /w_1600,h_1200/ ."""
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key.lower() in ("width", "w") and value.isdecimal():
            return float(value)
    m = re.search(r"[-_](\d{2,5})x\d{0,5}(?:@\d+x)?\.\w+$", parts.path) or re.search(r"\bw_(\d{2,5})\b", parts.path)
    return float(m.group(1)) if m else 0.0


def best_image(el: Tag, base: str) -> ImageCandidate | None:
    """The largest usable image an <img>/<source>/<meta>/<link>/<a> offers across src, srcset and lazy/hi-res attrs."""
    cands: list[ImageCandidate] = []
    declared_attr = str(el.get("width", "")).strip()
    declared = float(declared_attr) if declared_attr.isdecimal() else 0.0
    for attr in _SRCSET_ATTRS:
        for url, width in parse_srcset(el.get(attr) or ""):
            cands.append(ImageCandidate(url, width))
    for attr in _SRC_ATTRS + ("content", "href"):
        if el.get(attr) and isinstance(el.get(attr), str):
            # The URL's own size hint beats the width attribute, which themes often set to the original's width.
            cands.append(ImageCandidate(el[attr], _width_hint(el[attr]) or declared))
    for attr in _HIRES_ATTRS:
        if el.get(attr):
            companion = str(el.get(attr + "_width", ""))
            # A hi-res attribute is the full-size original: rank it above any srcset entry unless told its width.
            cands.append(ImageCandidate(el[attr], float(companion) if companion.isdecimal() else 1e7))
    dynamic = el.get("data-a-dynamic-image")
    if dynamic:
        try:
            for url, size in json.loads(dynamic).items():
                cands.append(ImageCandidate(url, float(size[0])))
        except (ValueError, TypeError, AttributeError, IndexError):
            log.debug("unparseable data-a-dynamic-image on %s", base)
    widths = re.findall(r"\d+", str(el.get("data-widths", "")))
    usable = []
    for c in cands:
        if "{width}" in c.url:
            # lazysizes templates (Shopify themes): data-src=".._{width}x.jpg" data-widths="[180, ..., 2048]"
            if not widths:
                continue
            c = ImageCandidate(c.url.replace("{width}", max(widths, key=int)))
        url = absolute(c.url, base)
        if url and not junk_url(url):
            usable.append(ImageCandidate(url, c.width or _width_hint(url)))
    return max(usable, key=lambda c: c.width, default=None)


def _loads_lenient(text: str) -> Any:
    """json.loads that tolerates what shops get wrong: raw control characters, trailing commas, HTML comments."""
    text = text.strip().removeprefix("<!--").removesuffix("-->").strip().rstrip(";")
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        return json.loads(re.sub(r",\s*([}\]])", r"\1", text), strict=False)


def iter_jsonld(soup: BeautifulSoup, page_url: str = "") -> Iterator[dict[str, Any]]:
    """Every typed node in the page's JSON-LD blocks (through @graph, lists and nesting); invalid blocks skipped."""
    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            if "@type" in node:
                yield node
            for key, value in node.items():
                if isinstance(value, (dict, list)) and key != "@context":
                    yield from walk(value)

    for script in soup.find_all("script", type=re.compile(r"ld\+json", re.IGNORECASE)):
        try:
            doc = _loads_lenient(script.string or script.get_text() or "")
        except json.JSONDecodeError as exc:
            log.info("invalid JSON-LD on %s skipped (%s)", page_url, exc)
            continue
        yield from walk(doc)


def _types(node: dict[str, Any]) -> set[str]:
    raw = node.get("@type")
    names = raw if isinstance(raw, list) else [raw]
    return {str(n).rsplit("/", 1)[-1].lower() for n in names if n}


def _text(value: Any) -> str | None:
    """A JSON-LD value as plain text: strings as-is, {'name': ...} objects by name, lists by their first item."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("@id")
    if value is None or isinstance(value, (dict, list)):
        return None
    text = " ".join(str(value).split())
    return text or None


def _jsonld_images(value: Any) -> list[str]:
    """Image URLs from a JSON-LD `image`: a string, a list, or ImageObject(s) with url/contentUrl."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [u for v in value for u in _jsonld_images(v)]
    if isinstance(value, dict):
        return _jsonld_images(value.get("contentUrl") or value.get("url"))
    return []


def _jsonld_dimensions(node: dict[str, Any]) -> str | None:
    """Dimension text from JSON-LD width/depth/height QuantitativeValues or an additionalProperty named like size."""
    parts = []
    unit = None
    for key, label in (("width", "W"), ("depth", "D"), ("height", "H")):
        value = node.get(key)
        if isinstance(value, dict):
            unit = _UNIT_CODES.get(str(value.get("unitCode", "")).upper()) or value.get("unitText") or unit
            value = value.get("value")
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip()):
            parts.append(f"{label} {value}")
    if parts:
        text = " x ".join(parts)
        return text if re.search(r"[a-z\"]\s*$", text, re.IGNORECASE) and not unit else f"{text} {unit or 'cm'}"
    for prop in node.get("additionalProperty") or []:
        if isinstance(prop, dict) and _DIM_LABEL.match(str(prop.get("name", ""))):
            return _text(prop.get("value"))
    return None


def _breadcrumb_jsonld(soup: BeautifulSoup, page_url: str, include_current: bool) -> str | None:
    """The deepest crumb of a JSON-LD BreadcrumbList; the current page's own crumb only when include_current."""
    for node in iter_jsonld(soup):
        if "breadcrumblist" not in _types(node):
            continue
        items = [i for i in node.get("itemListElement") or [] if isinstance(i, dict)]
        items.sort(key=lambda i: float(i.get("position") or 0))
        names = []
        for i, item in enumerate(items):
            link = item.get("item")
            link = link.get("@id") or link.get("url") if isinstance(link, dict) else link
            # schema.org lets the last crumb (the page itself) omit its link.
            current = not link or str(link).rstrip("/") == page_url.rstrip("/") or i == len(items) - 1 and not link
            name = _text(item.get("name") or item.get("item"))
            if name and name.lower() != "home" and (include_current or not current):
                names.append(name)
        if names:
            return names[-1]
    return None


def _breadcrumb_html(soup: BeautifulSoup) -> str | None:
    """The deepest linked crumb of an HTML breadcrumb trail (the unlinked last crumb is the page itself)."""
    trail = soup.select_one(".woocommerce-breadcrumb, .breadcrumbs, .breadcrumb, nav[aria-label*=readcrumb], "
                            "[itemtype*=BreadcrumbList], #breadcrumbs, [class*=breadcrumb]")
    if not trail:
        return None
    names = [" ".join(a.get_text(" ").split()) for a in trail.find_all("a")]
    names = [n for n in names if n and n.lower() not in ("home", "start", "shop")]
    return names[-1] if names else None


_HIDDEN = re.compile(r"visually-hidden|sr-only|screen-reader-text", re.IGNORECASE)


def _visible_text(el: Tag | None) -> str | None:
    """An element's text without screen-reader-only parts ("Collection: " in Shopify headings)."""
    if el is None:
        return None

    def hidden(text: Any) -> bool:
        for parent in text.parents:
            if parent is el:
                return False
            if _HIDDEN.search(" ".join(parent.get("class", []))):
                return True
        return False
    parts = [str(t) for t in el.find_all(string=True) if not hidden(t)]
    return " ".join(" ".join(parts).split()) or None


def _select_text(soup: BeautifulSoup, selector: str | None) -> str | None:
    if not selector:
        return None
    el = soup.select_one(selector)
    if el is None:
        return None
    text = el.get("content") if el.name == "meta" else el.get_text(" ")
    return " ".join(str(text).split()) or None


def _dimensions_html(soup: BeautifulSoup) -> str | None:
    """Dimension text from spec tables / definition lists / 'Dimensions: ...' lines."""
    for label in soup.find_all(["th", "dt", "td", "strong", "b", "span", "div", "h4", "label"], string=_DIM_LABEL):
        if _excluded(label, chrome=False):
            continue
        value = label.find_next_sibling(["td", "dd", "span", "div", "p"])
        if value is None and label.parent is not None:
            value = label.parent.find_next_sibling(["td", "dd"])
        if value is not None:
            text = " ".join(value.get_text(" ").split())
        else:  # "<p><strong>Dimensions:</strong> W 220 x D 95 cm</p>": the value is the label's trailing text
            text = " ".join(str(t) for t in label.next_siblings if isinstance(t, str)).strip()
        if text and re.search(r"\d", text):
            return text
    for el in soup.find_all(["li", "p"], string=re.compile(r"^\s*(?:dimensions?|size|measurements?)\s*:", re.I)):
        return " ".join(el.get_text(" ").split()).split(":", 1)[1].strip() or None
    return None


def _dedupe(cands: Iterable[ImageCandidate]) -> list[ImageCandidate]:
    """Keep one URL per picture: sizes of one CDN image collapse to the largest, first-found order kept."""
    by_key: dict[str, ImageCandidate] = {}
    for c in cands:
        parts = urlsplit(c.url)
        path = re.sub(r"(?:-\d+x\d+|_\d*x\d*(?:@\d+x)?)(?=\.\w+$)", "", parts.path)  # WP -600x600, Shopify _1200x
        path = re.sub(r"/cache/[0-9a-f]{16,}/", "/", path)  # Magento's resized-image cache segment
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() not in _SIZE_PARAMS])
        key = urlunsplit(("", parts.netloc.lower(), path, query, ""))  # http/https copies are one picture
        kept = by_key.get(key)
        if kept is None:
            by_key[key] = c
        elif c.width > kept.width:
            kept.url, kept.width = c.url, c.width
    return list(by_key.values())


def _magento_gallery(soup: BeautifulSoup, base: str) -> list[ImageCandidate]:
    """Magento 2 renders only the first photo; the whole gallery (full-size URLs) is in its x-magento-init JSON."""
    out = []
    for script in soup.find_all("script", type="text/x-magento-init"):
        text = script.string or ""
        if "mage/gallery/gallery" not in text:
            continue
        try:
            doc = _loads_lenient(text)
        except json.JSONDecodeError:
            log.info("unparseable Magento gallery JSON on %s", base)
            continue
        for widget in doc.values() if isinstance(doc, dict) else []:
            gallery = widget.get("mage/gallery/gallery") if isinstance(widget, dict) else None
            for item in (gallery or {}).get("data") or []:
                url = absolute(str(item.get("full") or item.get("img") or ""), base) if isinstance(item, dict) else None
                if url and item.get("type", "image") == "image":
                    out.append(ImageCandidate(url, 1e7 if item.get("full") else _width_hint(url), "gallery"))
    return out


def _pick_product_node(nodes: list[dict[str, Any]], page_url: str) -> dict[str, Any] | None:
    """The JSON-LD Product describing this page (matching url/@id first), ProductGroup accepted."""
    products = [n for n in nodes if _types(n) & {"product", "productgroup", "individualproduct", "productmodel"}]
    page = page_url.split("#")[0].rstrip("/")
    for node in products:
        if str(node.get("url") or node.get("@id") or "").split("#")[0].rstrip("/") == page:
            return node
    return products[0] if products else None


def extract_product(html: str, page_url: str, selectors: Selectors | None = None) -> ProductInfo:
    """Everything a product page says about its product, images in order of trust, largest variant of each."""
    sel = selectors or Selectors()
    soup = parse_html(html)
    base = base_url(soup, page_url)
    info = ProductInfo(url=page_url)
    cands: list[ImageCandidate] = []

    node = _pick_product_node(list(iter_jsonld(soup, page_url)), page_url)
    if node:
        info.title = _text(node.get("name"))
        info.sku = _text(node.get("sku") or node.get("mpn") or node.get("productID") or node.get("gtin13"))
        info.brand = _text(node.get("brand"))
        info.category = _text(node.get("category"))
        offers = node.get("offers")
        offer = offers[0] if isinstance(offers, list) and offers else offers
        if isinstance(offer, dict):
            price = offer.get("price") or offer.get("lowPrice")
            info.price = f"{price} {offer.get('priceCurrency', '')}".strip() if price is not None else None
        info.dimensions_text = _jsonld_dimensions(node)
        images = _jsonld_images(node.get("image"))
        for variant in node.get("hasVariant") or []:
            if isinstance(variant, dict):
                images += _jsonld_images(variant.get("image"))
        cands += [ImageCandidate(u, _width_hint(u), "jsonld") for u in (absolute(i, base) for i in images) if u]

    scope = soup.select_one("[itemtype*='schema.org/Product']") or soup
    for el in scope.select("[itemprop=image]"):
        c = best_image(el, base)
        if c and not _excluded(el, chrome=False):
            cands.append(ImageCandidate(c.url, c.width, "microdata"))
    if scope is not soup:
        info.title = info.title or _select_text(scope, "[itemprop=name]")
        info.sku = info.sku or _select_text(scope, "[itemprop=sku]")

    for prop in ("og:image:secure_url", "og:image", "og:image:url", "twitter:image"):
        for meta in soup.find_all("meta", attrs={"property": prop}) + soup.find_all("meta", attrs={"name": prop}):
            c = best_image(meta, base)
            if c:
                cands.append(ImageCandidate(c.url, c.width, "og"))

    if sel.image:
        gallery = [el for el in soup.select(sel.image)]
    else:
        containers = [el for el in soup.find_all(True, attrs={"class": _GALLERY}) + soup.find_all(True, id=_GALLERY)
                      if not _excluded(el)]
        gallery = [img for box in containers for img in box.find_all(["img", "source", "a"])
                   if img.name != "a" or any(img.get(a) for a in _HIRES_ATTRS)]
    for el in gallery:
        if _junk_img(el) or (not sel.image and _excluded(el)):
            continue
        c = best_image(el, base)
        if c:
            cands.append(ImageCandidate(c.url, c.width, "gallery"))

    if not sel.image:
        cands += _magento_gallery(soup, base)
    info.images = [c for c in _dedupe(cands) if not junk_url(c.url)]
    og_title = soup.find("meta", attrs={"property": "og:title"})
    h1 = soup.find("h1")
    # The h1 before og:title: SEO plugins append the shop name to og:title.
    info.title = (_select_text(soup, sel.title) or info.title or _visible_text(h1)
                  or (og_title.get("content") if og_title else None))
    info.sku = _select_text(soup, sel.sku) or info.sku
    info.category = (_select_text(soup, sel.category) or info.category
                     or _breadcrumb_jsonld(soup, page_url, include_current=False) or _breadcrumb_html(soup))
    info.dimensions_text = _select_text(soup, sel.dimensions) or info.dimensions_text or _dimensions_html(soup)
    return info


def _tile_title(tile: Tag, link: Tag | None) -> str | None:
    for el in tile.select("[class*=title], [class*=name], [class*=heading], h2, h3, h4"):
        text = " ".join(el.get_text(" ").split())
        if text:
            return text
    if link is not None and link.get_text(strip=True):
        return " ".join(link.get_text(" ").split())
    img = tile.find("img", alt=True)
    return img["alt"].strip() or None if img else None


def _link_of(el: Tag, base: str) -> str | None:
    """The URL an <a href> or a JS link (data-href / data-url) points to."""
    return absolute(el.get("href") or el.get("data-href") or el.get("data-url"), base)


def extract_listing(html: str, page_url: str, domains: Iterable[str], selectors: Selectors | None = None
                    ) -> ListingInfo:
    """Product tiles (same-site links, with tile image/title when present), next pages and the category shown."""
    sel = selectors or Selectors()
    domains = list(domains)
    soup = parse_html(html)
    base = base_url(soup, page_url)
    out = ListingInfo()
    tiles: dict[str, Tile] = {}

    def usable(url: str | None) -> bool:
        return bool(url) and same_site(url, domains) and not _NOT_PRODUCT_LINK.search(url) \
            and url.rstrip("/") != page_url.rstrip("/")

    def add(url: str | None, tile_el: Tag | None) -> None:
        if not usable(url) or url in tiles:
            return
        tile = Tile(url=url)
        if tile_el is not None:
            link = tile_el.find("a", href=True)
            tile.title = _tile_title(tile_el, link)
            imgs = [best_image(img, base) for img in tile_el.find_all(["img", "source"]) if not _junk_img(img)]
            tile.image = max((c for c in imgs if c), key=lambda c: c.width, default=None)
        tiles[url] = tile

    if sel.product_link:
        for el in soup.select(sel.product_link):
            tile_el = el.css.closest(sel.tile) if sel.tile else None
            add(_link_of(el, base), el.find_parent(["li", "article"]) if tile_el is None else tile_el)
    else:
        for node in iter_jsonld(soup, page_url):
            if "itemlist" not in _types(node):
                continue  # a BreadcrumbList's items are categories, not products
            for entry in node.get("itemListElement") or []:
                item = entry.get("item") if isinstance(entry, dict) else entry
                url = (entry.get("url") if isinstance(entry, dict) else None) or \
                    (item.get("url") or item.get("@id") if isinstance(item, dict) else item)
                add(absolute(str(url or ""), base), None)
        candidates = soup.select(sel.tile) if sel.tile else soup.find_all(True, attrs={"class": _TILE_CLASS})
        for tile_el in candidates:
            if _excluded(tile_el) or tile_el.find_parent(True, attrs={"class": _TILE_CLASS}) is not None:
                continue  # nested tiles belong to their outer tile; carousels are other products
            for a in tile_el.find_all(["a"], href=True) + tile_el.find_all(attrs={"data-href": True}):
                url = _link_of(a, base)
                if usable(url):
                    if url in tiles and tiles[url].image is None:
                        del tiles[url]  # a JSON-LD ItemList entry: upgrade it to the tile with an image
                    add(url, tile_el)
                    break
        for a in soup.find_all("a", href=_PRODUCT_PATH):
            if not _excluded(a):
                add(_link_of(a, base), None)
    out.tiles = list(tiles.values())

    nexts: list[str] = []
    if sel.next_page:
        nexts = [u for el in soup.select(sel.next_page) if (u := _link_of(el, base))]
    else:
        for el in soup.find_all(["link", "a"], rel=True):
            if "next" in [r.lower() for r in el.get("rel", [])]:
                nexts.append(_link_of(el, base) or "")
        for el in soup.find_all(["a", "button", "span", "div", "li"]):
            classes = [c.lower() for c in el.get("class", [])]
            text = " ".join(el.get_text(" ").split())
            label = el.get("aria-label", "") or el.get("title", "")
            is_next = ("next" in classes or any(c.endswith(("-next", "__next", "_next")) for c in classes)
                       or _NEXT_TEXT.match(text or "-") or _NEXT_TEXT.match(label or "-"))
            if not is_next:
                continue
            target = el if (el.get("href") or el.get("data-href") or el.get("data-url")) else el.find(
                lambda t: t.get("href") or t.get("data-href"))
            if target is not None:
                nexts.append(_link_of(target, base) or "")
    seen = set()
    for url in nexts:
        if url and same_site(url, domains) and url not in seen and url.rstrip("/") != page_url.rstrip("/"):
            seen.add(url)
            out.next_pages.append(url)

    h1 = soup.find("h1")
    out.category = (_select_text(soup, sel.category) or _breadcrumb_jsonld(soup, page_url, include_current=True)
                    or _visible_text(h1) or _breadcrumb_html(soup))
    return out
