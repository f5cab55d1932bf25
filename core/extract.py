"""Generic extraction from shop HTML: product pictures and facts, listing tiles, product links and pagination.

Pure: HTML text and the page URL in, dataclasses out (no fetching, no crawler, no config files), so the web app can
import it for "paste a product URL". Dependencies: lxml, extruct, w3lib and BeautifulSoup.

Product pages are read with lxml (fast on megabyte pages) plus extruct for the structured data (JSON-LD, microdata
with its nesting, RDFa, OpenGraph). Every place shops put pictures yields candidates; variants of one picture (CDN
size parameters) collapse to one picture key; each picture is scored by evidence in `_score` and kept above a
threshold. Listings are read with BeautifulSoup. Per-source CSS selector overrides, when set, replace the generic
guess for their field.
"""
from __future__ import annotations

import html as htmllib
import itertools
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import lxml.etree
import lxml.html
from bs4 import BeautifulSoup, Tag
from extruct.jsonld import JsonLdExtractor
from extruct.opengraph import OpenGraphExtractor
from extruct.rdfa import RDFaExtractor
from extruct.uniform import _uopengraph
from extruct.w3cmicrodata import LxmlMicrodataExtractor
from w3lib.url import safe_url_string
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

log = logging.getLogger(__name__)


@dataclass
class Selectors:
    """Per-source CSS selector overrides; each one replaces the generic guess for its field."""

    product_link: str | None = None
    tile: str | None = None
    next_page: str | None = None
    image: str | None = None
    title: str | None = None
    category: str | None = None
    sku: str | None = None
    dimensions: str | None = None


# Containers whose images/links are other products (cross-sell carousels) or site chrome, never this product.
_EXCLUDED = re.compile(r"related|upsell|up-sell|cross-?sell|recommend|also-?(?:like|bought|viewed)|recently[-_ ]?viewed|"
                       r"you-?may|similar|complete-?the-?look|shop-?the-?look|mini-?cart|cart-?drawer|megamenu|"
                       r"site-?header|site-?footer|carousel-?products|product-?carousel|accessor|bundle|"
                       r"customers-?(?:also|who)|frequently|people-?also|more-?from|bought-?together|"
                       r"trending|bestseller|top-?seller|last-?seen|history|banner|advert|\bad-?(?:slot|unit|container|"
                       r"wrapper|banner)|\bads-|adsense|promo|newsletter",
                       re.IGNORECASE)
_CHROME_TAGS = {"header", "footer", "nav", "aside"}
_CHROME_ROLES = {"banner", "navigation", "contentinfo", "complementary", "dialog"}
_MEDIA_PLAYERS = {"video", "audio", "iframe", "object", "embed"}
# Image URLs that are never product photos.
_JUNK_URL = re.compile(r"sprite|(?:^|[/_.-])icons?(?:[/_.-]|$)|logo|favicon|placeholder|spinner|loader|loading\.gif|"
                       r"spacer|blank\.gif|1x1|pixel|beacon|/tr\?|/collect\?|doubleclick|analytics|\.svg(?:$|\?)|"
                       r"\.gif(?:$|\?)|badge|banner|flags?/|payment|rating|stars?[-_.]|avatar|emoji|"
                       r"transparent|no[-_]?image|noimage|nophoto|default[-_]?image|"
                       # promotional stickers, review sites' trust seals, brand logos, video stills, map tiles
                       r"disruptor|sticker|trust[-_]?(?:mark|badge|seal)|/brands?(?:xl|[-_]?logos?)?/|"
                       r"(?:^|[/_.-])videos?[-_]?\d+(?:[/_.?-]|$)|/videos?/|[/_.](?:mp4|webm|m3u8|mov)(?:[/_.?]|$)|"
                       r"/maps?/|/tiles?/|staticmap",
                       re.IGNORECASE)
# Hosts that serve video thumbnails and map tiles: never a product picture, whatever the markup says.
_JUNK_HOST = re.compile(r"(?:^|\.)(?:ytimg\.com|youtube\.com|youtube-nocookie\.com|vimeocdn\.com|vimeo\.com|"
                        r"dailymotion\.com|dmcdn\.net|maps\.googleapis\.com|maps\.gstatic\.com|"
                        r"tile\.openstreetmap\.org|api\.mapbox\.com|tiles\.mapbox\.com)$|^maps?\d*\.|^tiles?\d*\.",
                        re.IGNORECASE)
# Keys of script JSON whose pictures are the product's chrome (a brand logo, a family icon, a colour swatch).
_CHROME_KEY = re.compile(r"logo|icon|badge|brand|avatar|flag|sprite|banner|swatch|sticker|seal", re.IGNORECASE)
# An image *set* (a CDN's list of pictures, not a picture): an extensionless last segment named ..._SET.
_IMAGE_SET = re.compile(r"[-_](?:image)?set$", re.IGNORECASE)
_JUNK_CLASS = re.compile(r"\b(?:icon|logo|sprite|avatar|badge|flag|rating|swatch|payment|brand)|"
                         r"(?:^|[\s_-])colou?r[-_]?(?:image|img|chip|thumb)", re.IGNORECASE)  # another colour's chip
# Main product gallery containers across common platforms (class or id).
_GALLERY = re.compile(r"gallery|product[-_]?(?:single__)?(?:media|image|photo|picture|visual)|media[-_]?gallery|"
                      r"main[-_]?(?:image|photo|picture)|image[-_]?block|pdp[-_]?(?:image|media|viewer|gallery)|"
                      r"fotorama|product[-_]?slider|zoom|slideshow|lightbox|pdp-?main|product-?detail|"
                      r"hero[-_]?image|viewer",
                      re.IGNORECASE)
# Listing tiles: one product each (WooCommerce li.product, Magento .product-item, Shopify .card-wrapper / .grid-product,
# PrestaShop .product-miniature, generic .product-card/.product-tile).
_TILE_CLASS = re.compile(r"^(?:product|product[-_](?:item|card|tile|box|miniature|grid[-_]?item|thumb)|"
                         r"grid[-_]product|card-wrapper|product-card-wrapper)$", re.IGNORECASE)
_PRODUCT_PATH = re.compile(r"/products?/[^/?#]+")
_NEXT_TEXT = re.compile(r"^\s*(?:next(?: page)?|load more|show more|more products|›|»|→|>)\s*[›»→>]?\s*$",
                        re.IGNORECASE)
# The add-to-cart / buy control of a product page (class, id or name; the visible text is in the shop's language).
_BUY = re.compile(r"add-?to-?(?:cart|basket|bag)|add_to_(?:cart|basket|bag)|addtocart|addtobasket|buy-?now|"
                  r"buy_now|buybox|buy-?box|product-?form|buy[-_]?(?:btn|button)|(?:button|btn)[-_]?(?:cart|buy)\b",
                  re.IGNORECASE)
# The quantity field beside a product's buy control.
_QUANTITY = re.compile(r"^(?:qty|quantity|amount)$", re.IGNORECASE)
_PAGINATION = re.compile(r"paginat|pager|pages|page-?numbers|page-?list", re.IGNORECASE)
_NOT_PRODUCT_LINK = re.compile(r"add-to-cart|/cart\b|/checkout|/account|/login|/wishlist|/compare|#", re.IGNORECASE)
_DIM_LABEL = re.compile(r"^\s*(?:overall |product |item )?(?:dimensions?|measurements?|size|abmessungen|ma[aå]tt)"
                        r"(?:\s*\([^)]*\))?\s*:?\s*$", re.IGNORECASE)
_UNIT_CODES = {"CMT": "cm", "MMT": "mm", "MTR": "m", "INH": "in"}

# Attributes that hold a full-size image (Amazon data-old-hires, WooCommerce data-large_image, zoom plugins).
_HIRES_ATTRS = ("data-old-hires", "data-large_image", "data-zoom-image", "data-zoom", "data-full", "data-hires",
                "data-src-large", "data-zoom-src", "data-large", "data-big", "data-original-src", "data-full-src",
                "data-highres", "data-magnify-src", "data-image-large", "data-zoom-url", "data-large-src")
_SRC_ATTRS = ("src", "data-src", "data-lazy-src", "data-original", "data-lazy")
_SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset")
_HIRES = 1e7  # the width given to a declared full-size original
_ORIGINAL = 5e6  # the width given to a URL without any size token: the CDN's original

# Query parameters that choose a rendition of one picture, not the picture (CDN resizers, cache busters).
_SIZE_QUERY = {"width", "height", "w", "h", "size", "imwidth", "imheight", "wid", "hei", "resize", "fit", "crop",
               "quality", "q", "qlt", "format", "fm", "fmt", "auto", "dpr", "sw", "sh", "scale", "maxwidth",
               "maxheight", "mw", "mh", "impolicy", "imwidth", "odnwidth", "odnheight", "odnbg", "resmode", "bg",
               "v", "ver", "version", "sm", "mode", "trim", "op_sharpen", "x", "y", "canvas", "bgcolor", "cb",
               "t", "ts", "rev", "hash", "sharpen", "strip", "upscale", "res", "preset", "template", "io", "aspect",
               "cropmode", "extend", "compress", "webp", "type", "sz"}
_SIZE_WORDS = {"thumb": 100, "thumbs": 100, "thumbnail": 100, "thumbnails": 100, "mini": 80, "small": 200,
               "medium": 500, "large": 1000, "big": 1000, "zoom": 2000, "original": _ORIGINAL,
               "originals": _ORIGINAL, "full": _ORIGINAL, "fullsize": _ORIGINAL, "hires": 2000, "xl": 1200,
               "xxl": 1600, "preview": 300, "main": 800, "resized": 0, "resize": 0}
_IMAGE_EXT = r"(?:jpe?g|png|webp|avif|jfif)"
_IMAGE_URL = re.compile(r"(?:https?:)?//[^\s\"'<>(){}\[\],\\|^`]+?\." + _IMAGE_EXT + r"(?:\?[^\s\"'<>(){}\[\]\\|^`]*)?"
                        r"(?=$|[\s\"'<>(){}\[\],\\|^`])", re.IGNORECASE)
_RELATIVE_IMAGE = re.compile(r"^(?:/|\./|\.\./)?[\w./%+-]+\." + _IMAGE_EXT + r"(?:\?\S*)?$", re.IGNORECASE)
_IMAGE_PATH = re.compile(r"\." + _IMAGE_EXT + r"$", re.IGNORECASE)
_POWERS = {128, 256, 512, 768, 1024, 1536, 2048, 4096}
_KEEP = 3.0  # the score a picture needs to be kept (see `_score`)


@dataclass
class ImageCandidate:
    """A picture: its best URL, how wide it probably is (0 unknown), where it was found, and its other renditions."""

    url: str
    width: float = 0.0
    origin: str = ""
    key: str = ""
    alternates: list[str] = field(default_factory=list)  # other renditions to try, largest first
    score: float = 0.0


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
    is_product_page: bool = False  # the page describes one product: never read as a listing too


# ---------------------------------------------------------------------------------------------------- URLs

def parse_html(html: str) -> BeautifulSoup:
    """Parse HTML leniently with lxml into BeautifulSoup."""
    return BeautifulSoup(html, "lxml")


def base_url(soup: BeautifulSoup, page_url: str) -> str:
    """The URL relative links resolve against: <base href> when present, else the page URL."""
    base = soup.find("base", href=True)
    return urljoin(page_url, base["href"].strip()) if base else page_url


def absolute(href: str | None, base: str) -> str | None:
    """Resolve a (relative or protocol-relative) link; None for data:, javascript:, mailto: and empty links."""
    if not href or not isinstance(href, str):
        return None
    href = htmllib.unescape(href.strip())
    if not href or href.startswith("#") or re.match(r"^(?:data|javascript|mailto|tel|blob|about):", href, re.I):
        return None
    try:
        url = safe_url_string(urljoin(base, href))
        parts = urlsplit(url)
    except ValueError:  # "http://[broken" and friends: bad markup, not a crash
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit(parts._replace(fragment=""))


def same_site(url: str, domains: Iterable[str]) -> bool:
    """True when the URL's host is one of `domains` or a subdomain of one."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in domains)


def junk_url(url: str) -> bool:
    """True for image URLs that are never product photos (sprites, icons, pixels, SVG, GIF, placeholders)."""
    parts = urlsplit(url)
    if _JUNK_HOST.search(parts.hostname or ""):
        return True
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if "." not in last and _IMAGE_SET.search(last):
        return True
    return bool(_JUNK_URL.search(f"{parts.path}?{parts.query}"))  # the host may say "analytics" and be a CDN


def _strip_filename(name: str) -> tuple[str, float]:
    """A file name without its size token, and the width that token asked for (0 when none)."""
    width = 0.0
    m = re.search(r"\._[A-Z0-9_,]+_(?=\.\w+$)", name)  # Amazon: name._AC_SX679_.jpg
    if m:
        w = re.search(r"(?:SX|SY|SL|UX|UY|SR\d+,|AC_UL)(\d{2,4})", m.group(0))
        width = float(w.group(1)) if w else 0.0
        return name[:m.start()] + name[m.end():], width
    m = re.search(r"[-_](?:(\d{2,5})x(\d{0,5})|x(\d{2,5}))(?:_crop_\w+)?(?:@(\d)x)?(?=\.\w+$)", name)
    if m:
        width = float(m.group(1) or m.group(3) or 0) * float(m.group(4) or 1)
        return name[:m.start()] + name[m.end():], width
    m = re.search(r"[-_.](?:[a-zA-Z]{1,2})(\d{2,4})(?=\.\w+$)", name)  # s-l500.jpg, photo_w800.jpg
    if m:
        return name[:m.start()] + name[m.end():], float(m.group(1))
    m = re.search(r"(?<=\w)[-_](\d{3,4})(?=\.\w+$)", name)  # chair_1600.jpg: a round number is a size
    if m and 100 <= int(m.group(1)) <= 4096 and (int(m.group(1)) % 10 == 0 or int(m.group(1)) in _POWERS):
        return name[:m.start()] + name[m.end():], float(m.group(1))
    return name, 0.0


def _variant(url: str) -> tuple[str, float]:
    """(picture key, requested width) of an image URL: size tokens in path and query removed from the key.

    The width is 0 for a URL that asks for no size (the CDN's original) and for tokens whose size is unknown.
    """
    parts = urlsplit(url)
    width = 0.0
    query = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k.startswith("$") or k.lower() in _SIZE_QUERY:  # Scene7-style presets: ?$formatz$
            if k.lower() in ("width", "w", "imwidth", "wid", "maxwidth", "mw", "odnwidth", "sw") and v.isdecimal():
                width = max(width, float(v))
            elif k.lower() in ("resize", "size", "sz") and re.match(r"\d+", v):
                width = max(width, float(re.match(r"\d+", v).group()))
            elif not width and k.lower() not in ("v", "ver", "version", "cb", "t", "ts", "rev", "hash"):
                width = -1.0  # some other rendition parameter: not the original
            continue
        query.append((k, v))
    segments = parts.path.split("/")
    kept = []
    skip = set()
    for i in range(len(segments) - 1):  # /img/1024/1024/...: a width/height pair of path segments
        a, b = segments[i], segments[i + 1]
        if a.isdecimal() and b.isdecimal() and len(a) <= 4 and len(b) <= 4 and 16 <= int(a) <= 4096 \
                and 16 <= int(b) <= 4096 and not 1990 <= int(a) <= 2039:
            skip |= {i, i + 1}
            width = max(width, float(a))
    if len(segments) > 2 and "." not in segments[-1] and _IMAGE_PATH.search(segments[-2]):
        # /img_id123.jpeg/orig, /.../1hq, /.../x124_trim: a rendition named after the file
        name = segments.pop().lower()
        w = re.search(r"(\d{2,4})", name)
        width = max(width, 0.0 if name in ("orig", "original", "") else float(w.group(1)) if w else -1.0)
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if ";" in seg:  # matrix parameters: /image;s=640x0;q=60
            seg, _, params = seg.partition(";")
            m = re.search(r"(?:^|;)(?:s|w|width|size)=(\d{2,5})", params)
            width = max(width, float(m.group(1)) if m else -1.0)
        if i in skip:
            continue
        m = re.search(r"[-_]w(\d{2,5})(?:[-_]h\d{2,5})?(?=[-_]|$)", seg)
        if m and not last:  # rx-il1b03fWn-w1200-h1200: size tokens inside an id segment
            width = max(width, float(m.group(1)))
            seg = seg[:m.start()] + seg[m.end():]
        if last:
            name, w = _strip_filename(seg)
            width = max(width, w) if w else width
            kept.append(name)
            continue
        low = seg.lower()
        m = re.fullmatch(r"(?:fit-in/)?[a-z]{0,2}(\d{2,5})x(\d{0,5})[a-z]{0,2}", low) or \
            re.fullmatch(r"[wsh](\d{2,5})(?:-h\d+)?", low)
        if m:
            width = max(width, float(m.group(1)))
            continue
        if "," in low and re.search(r"(?:^|,)[whcqf]_\w+", low) or re.fullmatch(r"(?:[a-z]{1,3}_[\w.:]+,?)+", low) \
                and re.search(r"\b[wh]_\d", low):
            w = re.search(r"(?:^|,)w_(\d+)", low)  # Cloudinary-style transformation segment: w_1600,h_1200,c_fill
            width = max(width, float(w.group(1)) if w else -1.0)
            continue
        if re.fullmatch(r"[0-9a-f]{32}", low) and i > 0 and segments[i - 1].lower() == "cache":
            kept.pop()  # Magento's resized-image cache: /cache/<hash>/
            width = width or -1.0
            continue
        if re.fullmatch(r"resize\w*|\w*webp|thumbs?_?\w{0,6}|crop_\w+|fit_\w+", low):
            width = width or -1.0
            continue
        if low in _SIZE_WORDS:
            width = max(width, float(_SIZE_WORDS[low])) if _SIZE_WORDS[low] else (width or -1.0)
            continue
        kept.append(seg)
    key = urlunsplit(("", parts.netloc.lower().removeprefix("www."), "/".join(kept), urlencode(sorted(query)), ""))
    return key.lstrip("/"), width


def picture_key(url: str) -> str:
    """One key for every rendition of a picture: host and path without CDN size tokens, query without size params."""
    return _variant(url)[0]


def _rank(width: float) -> float:
    """Sort weight of a rendition: declared originals first, then URLs asking for no size, then by width."""
    return _ORIGINAL if width == 0 else max(width, 0.5)


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


def _attrs(el: Any) -> dict[str, str]:
    """An element's attributes as strings, for BeautifulSoup tags and lxml elements alike."""
    raw = el.attrs if isinstance(el, Tag) else el.attrib
    return {k.lower(): " ".join(v) if isinstance(v, list) else str(v) for k, v in raw.items()}


def _urls_in_value(value: str) -> Iterator[str]:
    """Image URLs inside an attribute value: a URL, a JSON document, or text with URLs in it."""
    value = value.strip()
    if not value:
        return
    if value[0] in "[{":
        text = value.replace("\\/", "/")
        yield from (m.group(0) for m in _IMAGE_URL.finditer(text))
        yield from (v for v in re.findall(r"\"(/[^\"\s]+\." + _IMAGE_EXT + r"(?:\?[^\"\s]*)?)\"", text, re.I))
    elif _IMAGE_URL.fullmatch(value) or _RELATIVE_IMAGE.match(value):
        yield value
    else:
        yield from (m.group(0) for m in _IMAGE_URL.finditer(value))


def _element_images(el: Any, base: str) -> list[ImageCandidate]:
    """Every image URL an element carries: src/srcset/lazy attributes, hi-res and other data-* attributes, JSON
    inside attributes, linked images (<a href=big.jpg>) and CSS backgrounds; `origin` names the attribute."""
    attrs = _attrs(el)
    tag = el.name if isinstance(el, Tag) else el.tag
    out: list[ImageCandidate] = []
    declared = float(attrs["width"]) if attrs.get("width", "").strip().isdecimal() else 0.0
    is_img = tag in ("img", "source", "picture", "image")
    widths = re.findall(r"\d+", attrs.get("data-widths", ""))
    for name, value in attrs.items():
        if name in _SRCSET_ATTRS or (name.endswith("srcset") and name.startswith("data-")):
            out += [ImageCandidate(u, w, name) for u, w in parse_srcset(value)]
        elif name in _HIRES_ATTRS:
            companion = attrs.get(name + "_width", "")
            # A hi-res attribute is the full-size original unless its companion or its URL says how wide it is.
            out += [ImageCandidate(u, float(companion) if companion.isdecimal() else _variant(u)[1] or _HIRES, name)
                    for u in _urls_in_value(value)]
        elif name == "data-a-dynamic-image":  # Amazon: {"url": [width, height], ...}
            try:
                out += [ImageCandidate(u, float(s[0]), name) for u, s in json.loads(value).items()]
            except (ValueError, TypeError, AttributeError, IndexError, KeyError):
                log.debug("unparseable data-a-dynamic-image on %s", base)
        elif name in _SRC_ATTRS and is_img or name == "content" and tag == "meta" or name == "poster":
            if "{width}" in value:
                # lazysizes templates (Shopify themes): data-src=".._{width}x.jpg" data-widths="[180, ..., 2048]"
                if widths:
                    out.append(ImageCandidate(value.replace("{width}", max(widths, key=int)), 0.0, name))
                continue
            # The URL's own size hint beats the width attribute, which themes often set to the original's width.
            hint = _variant(value)[1]
            out.append(ImageCandidate(value, hint if hint > 0 or name == "content" else declared, name))
        elif name == "href" and tag in ("a", "link"):
            if _IMAGE_PATH.search(urlsplit(value.strip()).path):
                out.append(ImageCandidate(value, 0.0, "link"))
        elif name.startswith("data-") or name in ("style", "content"):
            if "{width}" in value:
                continue
            out += [ImageCandidate(u, 0.0, name) for u in _urls_in_value(value)
                    if name != "style" or "url(" in value]
    usable = []
    for c in out:
        url = absolute(c.url, base)
        if not url or junk_url(url):
            continue
        key, hinted = _variant(url)
        usable.append(ImageCandidate(url, c.width or hinted, c.origin, key))
    return usable


def best_image(el: Any, base: str) -> ImageCandidate | None:
    """The largest usable image an element offers across src, srcset, lazy, hi-res and data-* attributes."""
    return max(_element_images(el, base), key=lambda c: _rank(c.width), default=None)


# ---------------------------------------------------------------------------------------------------- structured data

def _loads_lenient(text: str) -> Any:
    """json.loads that tolerates what shops get wrong: raw control characters, trailing commas, HTML comments."""
    text = text.strip().removeprefix("<!--").removesuffix("-->").strip().rstrip(";")
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        return json.loads(re.sub(r",\s*([}\]])", r"\1", text), strict=False)


def _walk_typed(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict with an @type under a JSON-LD document (through @graph, lists and nesting)."""
    if isinstance(node, list):
        for item in node:
            yield from _walk_typed(item)
    elif isinstance(node, dict):
        if "@type" in node:
            yield node
        for key, value in node.items():
            if isinstance(value, (dict, list)) and key != "@context":
                yield from _walk_typed(value)


def iter_jsonld(soup: BeautifulSoup, page_url: str = "") -> Iterator[dict[str, Any]]:
    """Every typed node in the page's JSON-LD blocks (through @graph, lists and nesting); invalid blocks skipped."""
    for script in soup.find_all("script", type=re.compile(r"ld\+json", re.IGNORECASE)):
        try:
            doc = _loads_lenient(script.string or script.get_text() or "")
        except json.JSONDecodeError as exc:
            log.info("invalid JSON-LD on %s skipped (%s)", page_url, exc)
            continue
        yield from _walk_typed(doc)


def _jsonld_docs(doc: Any, page_url: str) -> list[Any]:
    """The page's JSON-LD documents via extruct, one block at a time so that one broken block loses only itself."""
    out = []
    extractor = JsonLdExtractor()
    for script in doc.xpath('//script[contains(translate(@type, "LDJSON", "ldjson"), "ld+json")]'):
        try:
            out += extractor.extract_items(script)
        except ValueError:
            try:  # what extruct's lenient parser still refuses: trailing commas
                parsed = _loads_lenient(script.text or "")
                out += parsed if isinstance(parsed, list) else [parsed]
            except json.JSONDecodeError as exc:
                log.info("invalid JSON-LD on %s skipped (%s)", page_url, exc)
    return out


def _types(node: dict[str, Any]) -> set[str]:
    raw = node.get("@type")
    names = raw if isinstance(raw, list) else [raw]
    return {str(n).rsplit("/", 1)[-1].lower() for n in names if n}


_PRODUCT_TYPES = {"product", "productgroup", "individualproduct", "productmodel", "vehicle", "car", "book",
                  "offer", "aggregateoffer"}


def _text(value: Any) -> str | None:
    """A structured-data value as plain text: strings as-is, {'name': ...} by name, lists by their first item."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or value.get("@id")
    if value is None or isinstance(value, (dict, list)):
        return None
    text = " ".join(htmllib.unescape(htmllib.unescape(str(value))).split())  # "&amp;amp;" happens
    return text or None


def _sd_images(value: Any) -> list[str]:
    """Image URLs from a structured `image`: a string, a list, or ImageObject(s) with url/contentUrl."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [u for v in value for u in _sd_images(v)]
    if isinstance(value, dict):
        return _sd_images(value.get("contentUrl") or value.get("url") or value.get("@id") or value.get("@value"))
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
    props = node.get("additionalProperty") or []
    for prop in props if isinstance(props, list) else [props]:
        if isinstance(prop, dict) and _DIM_LABEL.match(str(prop.get("name", ""))):
            return _text(prop.get("value"))
    return None


def _node_url(node: dict[str, Any]) -> str:
    offers = node.get("offers")
    offer = offers[0] if isinstance(offers, list) and offers else offers
    url = node.get("url") or node.get("@id") or (offer.get("url") if isinstance(offer, dict) else None) or ""
    return _text(url) or ""


def _same_page(a: str, b: str) -> bool:
    """Two URLs name one page (scheme, fragment, tracking query and trailing slash aside)."""
    def norm(u: str) -> str:
        p = urlsplit(u.split("#")[0])
        return f"{p.netloc.lower().removeprefix('www.')}{p.path.rstrip('/')}"
    return bool(a) and bool(b) and norm(a) == norm(b)


@dataclass
class _Structured:
    """The page's structured data, split into this product and the other products the page names."""

    product: dict[str, Any] | None
    product_images: list[str]
    foreign_images: list[str]
    og: dict[str, Any]
    breadcrumbs: list[tuple[str, str]]  # (name, url) from BreadcrumbList, in order
    microdata_scope: Any  # the lxml element of the product's microdata itemscope, if any
    has_itemlist: bool


def _structured(doc: Any, page_url: str, base: str) -> _Structured:
    """Read JSON-LD, microdata (nesting kept: nested products are other products), RDFa and OpenGraph via extruct."""
    roots: list[dict[str, Any]] = []  # top-level product-like nodes, in page order; JSON-LD first
    nested: list[dict[str, Any]] = []  # products named inside a product (isRelatedTo, isSimilarTo, ...)
    breadcrumbs: list[tuple[str, str]] = []
    has_itemlist = False
    micro_nodes: list[tuple[dict[str, Any], Any]] = []

    def collect(doc_node: Any, source: str) -> None:
        nonlocal has_itemlist
        for node in _walk_typed(doc_node):
            types = _types(node)
            if "breadcrumblist" in types and not breadcrumbs:
                items = node.get("itemListElement") or []
                items = [i for i in (items if isinstance(items, list) else [items]) if isinstance(i, dict)]
                items.sort(key=lambda i: float(re.sub(r"[^\d.]", "", str(i.get("position") or 0)) or 0))
                for item in items:
                    link = item.get("item")
                    name = _text(item.get("name") or (link.get("name") if isinstance(link, dict) else None))
                    link = (link.get("@id") or link.get("url")) if isinstance(link, dict) else link
                    if name:
                        breadcrumbs.append((name, _text(link) or ""))
            if "itemlist" in types or "offercatalog" in types:
                has_itemlist = True

    for d in _jsonld_docs(doc, page_url):
        collect(d, "json-ld")
        for node in _top_products(d):
            roots.append(node)
            nested.extend(_nested_products(node))
    try:
        micro = LxmlMicrodataExtractor(add_html_node=True).extract_items(doc, base)
    except (ValueError, TypeError, KeyError, AttributeError, lxml.etree.LxmlError) as exc:
        log.info("unreadable microdata on %s (%s)", page_url, exc)
        micro = []
    for item in micro:
        node = _flatten_microdata(item)
        collect(node, "microdata")
        for prod in _top_products(node):
            roots.append(prod)
            nested.extend(_nested_products(prod))
            micro_nodes.append((prod, item.get("htmlNode") if prod is node else None))
    try:
        # RDFa: only when the page declares it (pyRdfa is slow on large pages that carry none).
        if doc.xpath("boolean(//*[@typeof or @vocab])"):
            for node in RDFaExtractor().extract_items(doc.getroottree(), base_url=base):
                flat = _flatten_rdfa(node)
                if flat and _types(flat) & _PRODUCT_TYPES:
                    roots.append(flat)
    except Exception as exc:  # noqa: BLE001 -- pyRdfa raises anything on bad markup; RDFa is a bonus, logged
        log.info("unreadable RDFa on %s (%s: %s)", page_url, type(exc).__name__, exc)
    og: dict[str, Any] = {}
    try:
        for raw in OpenGraphExtractor().extract_items(doc):
            og.update({k: v for k, v in _uopengraph([raw], with_og_array=True)[0].items() if k not in og})
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.info("unreadable OpenGraph on %s (%s)", page_url, exc)
    # twitter:image and <link rel=image_src> count as OpenGraph-like page images.
    for value in doc.xpath("//meta[@name='twitter:image' or @property='twitter:image' or @name='twitter:image:src']"
                           "/@content | //link[@rel='image_src']/@href"):
        og.setdefault("og:image", [])
        og["og:image"] = (og["og:image"] if isinstance(og["og:image"], list) else [og["og:image"]]) + [value]

    product = _pick_product(roots, page_url, og, doc)
    scope = None
    for prod, html_node in micro_nodes:
        if prod is product:
            scope = html_node
    own, foreign = [], []
    if product is not None:
        own += _sd_images(product.get("image")) + _sd_images(product.get("photo"))
        for key in ("hasVariant", "model", "isVariantOf"):
            for variant in product.get(key) or [] if isinstance(product.get(key), list) else [product.get(key)]:
                if isinstance(variant, dict):
                    own += _sd_images(variant.get("image"))
        offers = product.get("offers")
        for offer in offers if isinstance(offers, list) else [offers]:
            if isinstance(offer, dict):
                own += _sd_images(offer.get("image"))
                item = offer.get("itemOffered")
                own += _sd_images(item.get("image")) if isinstance(item, dict) else []
    for node in roots + nested:
        if node is not product and not _variant_of(node, product):
            foreign += _sd_images(node.get("image"))
    return _Structured(product, own, foreign, og, breadcrumbs, scope, has_itemlist)


def _top_products(doc_node: Any) -> list[dict[str, Any]]:
    """The product-like nodes of a structured document not nested inside another product (through @graph/lists,
    ItemList elements and an Offer's itemOffered)."""
    out: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            types = _types(node)
            if types & _PRODUCT_TYPES - {"offer", "aggregateoffer"}:
                out.append(node)
                return
            if types & {"offer", "aggregateoffer"} and isinstance(node.get("itemOffered"), dict):
                walk(node["itemOffered"])
                return
            for key, value in node.items():
                if key != "@context" and isinstance(value, (dict, list)):
                    walk(value)
    walk(doc_node)
    return out


def _nested_products(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Products named inside a product (related, similar, accessories): other products, not variants."""
    out = []
    for key, value in node.items():
        if key in ("hasVariant", "model", "offers", "isVariantOf", "@context"):
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, dict):
                out += _top_products(v)
    return out


def _variant_of(node: dict[str, Any], product: dict[str, Any] | None) -> bool:
    """A node that is the product itself in another syntax, or one of its variants (same productGroupID/name)."""
    if product is None:
        return False
    for key in ("productGroupID", "inProductGroupWithID", "sku", "productID", "mpn"):
        a, b = _text(node.get(key)), _text(product.get(key))
        if a and b and (a == b or key != "sku" and a == _text(product.get("productGroupID"))):
            return True
    group = product.get("hasVariant")
    if isinstance(group, list) and any(v is node for v in group):
        return True
    name, own = _text(node.get("name")), _text(product.get("name"))
    return bool(name and own and name == own)


def _flatten_microdata(item: dict[str, Any]) -> dict[str, Any]:
    """An extruct microdata item as a JSON-LD-like node: @type from `type`, properties inline, nesting kept."""
    props = item.get("properties") or {}
    types = item.get("type") or []
    node: dict[str, Any] = {"@type": types if isinstance(types, list) else [types]}
    for key, value in props.items():
        values = value if isinstance(value, list) else [value]
        conv = [_flatten_microdata(v) if isinstance(v, dict) and "properties" in v else v for v in values]
        node[key] = conv if isinstance(value, list) else conv[0]
    return node


def _flatten_rdfa(node: dict[str, Any]) -> dict[str, Any] | None:
    """An extruct RDFa node (expanded JSON-LD) as a plain node with short property names."""
    out: dict[str, Any] = {"@type": node.get("@type") or []}
    for key, values in node.items():
        if key.startswith("@"):
            continue
        short = re.split(r"[/#:]", key)[-1]
        vals = [v.get("@value") or v.get("@id") for v in values if isinstance(v, dict)] if isinstance(values, list) \
            else [values]
        out[short] = vals if len(vals) > 1 else (vals[0] if vals else None)
    return out


def _pick_product(roots: list[dict[str, Any]], page_url: str, og: dict[str, Any], doc: Any) -> dict[str, Any] | None:
    """The product this page describes: the node whose URL is the page's, else the one named like the page's
    heading, else the first with offers or images (other nodes are recommendations)."""
    if not roots:
        return None
    canonical = (doc.xpath("//link[@rel='canonical']/@href") or [""])[0]
    og_url = _text(og.get("og:url")) or ""
    for node in roots:
        url = _node_url(node)
        if url and any(_same_page(urljoin(page_url, url), u) for u in (page_url, canonical, og_url) if u):
            return node
    heading = _norm_words(" ".join(doc.xpath("string(//h1)").split()) or _text(og.get("og:title")) or "")
    for node in roots:
        name = _norm_words(_text(node.get("name")) or "")
        if name and heading and (name <= heading or heading <= name):
            return node
    with_data = [n for n in roots if n.get("offers") or n.get("image")]
    return (with_data or roots)[0]


def _norm_words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if len(w) > 1}


# ---------------------------------------------------------------------------------------------------- page text

_HIDDEN = re.compile(r"visually-hidden|sr-only|screen-reader-text|hidden", re.IGNORECASE)


def _visible_text(el: Any) -> str | None:
    """An element's text without screen-reader-only parts ("Collection: " in Shopify headings)."""
    if el is None:
        return None
    if isinstance(el, Tag):
        def hidden(text: Any) -> bool:
            for parent in text.parents:
                if parent is el:
                    return False
                if _HIDDEN.search(" ".join(parent.get("class", []))):
                    return True
            return False
        parts = [str(t) for t in el.find_all(string=True) if not hidden(t)]
    else:
        parts = _lxml_visible_texts(el)
    return " ".join(htmllib.unescape(" ".join(parts)).split()) or None


def _lxml_visible_texts(el: Any) -> list[str]:
    out: list[str] = []

    def walk(node: Any) -> None:
        if not isinstance(node.tag, str) or node.tag in ("script", "style", "button"):
            pass
        elif not _HIDDEN.search(node.get("class") or ""):
            if node.text:
                out.append(node.text)
            for child in node:
                walk(child)
        if node is not el and node.tail:
            out.append(node.tail)
    walk(el)
    return out


def _select_text(soup: BeautifulSoup | None, selector: str | None) -> str | None:
    if not selector or soup is None:
        return None
    el = soup.select_one(selector)
    if el is None:
        return None
    text = el.get("content") if el.name == "meta" else el.get_text(" ")
    return " ".join(str(text).split()) or None


def _breadcrumb_html(doc: Any, page_url: str, include_current: bool) -> str | None:
    """The deepest crumb of an HTML breadcrumb trail: linked crumbs only (the unlinked last one is the page),
    leaving out "home" and "back" links and links to the page itself."""
    trails = doc.xpath("//*[contains(translate(@class, 'BREADCUMS', 'breadcums'), 'breadcrumb') or "
                       "contains(translate(@id, 'BREADCUMS', 'breadcums'), 'breadcrumb') or "
                       "contains(@itemtype, 'BreadcrumbList') or contains(translate(@aria-label, 'BREADCUMS', "
                       "'breadcums'), 'breadcrumb')]")
    for trail in trails:
        names = []
        for a in trail.iter("a"):
            name = " ".join(a.text_content().split())
            href = a.get("href") or ""
            if not name or re.fullmatch(r"(?:home|start|shop|homepage|главная|startseite|inicio|accueil|back|"
                                        r"zurück|retour|volver|indietro|[<‹«←].*|.*\bback\b.*)", name, re.I):
                continue
            if not include_current and _same_page(urljoin(page_url, href), page_url):
                continue
            names.append(name)
        if names:
            return htmllib.unescape(names[-1])
    return None


def _dimensions_html(doc: Any) -> str | None:
    """Dimension text from spec tables / definition lists / 'Dimensions: ...' lines."""
    for label in doc.iter("th", "dt", "td", "strong", "b", "span", "div", "h4", "label"):
        own = "".join(label.itertext()) if len(label) == 0 else (label.text or "")
        if not _DIM_LABEL.match(own) or len(label) and "".join(label.itertext()).strip() != own.strip():
            continue
        if _in_excluded(label, chrome=False):
            continue
        value = next((s for s in label.itersiblings() if s.tag in ("td", "dd", "span", "div", "p")), None)
        parent = label.getparent()
        if value is None and parent is not None:
            value = next((s for s in parent.itersiblings() if s.tag in ("td", "dd")), None)
        if value is not None:
            text = " ".join(value.text_content().split())
        else:  # "<p><strong>Dimensions:</strong> W 220 x D 95 cm</p>": the value is the label's trailing text
            text = " ".join((label.tail or "").split())
        if text and re.search(r"\d", text):
            return text
    for el in doc.iter("li", "p"):
        text = " ".join(el.text_content().split())
        m = re.match(r"^(?:dimensions?|size|measurements?)\s*:\s*(.+)", text, re.I)
        if m and len(el) == 0:
            return m.group(1).strip() or None
    return None


def _in_excluded(el: Any, chrome: bool = True) -> bool:
    """True when an lxml element sits in a cross-sell block (or, with chrome, in header/footer/nav/aside)."""
    while el is not None and el.tag not in ("body", "html"):
        if chrome and (el.tag in _CHROME_TAGS or el.get("role") in _CHROME_ROLES):
            return True
        if _EXCLUDED.search(" ".join(filter(None, (el.get("class"), el.get("id"), el.get("aria-label"),
                                                   el.get("data-section-type"))))):
            return True
        el = el.getparent()
    return False


def _excluded(tag: Tag, chrome: bool = True) -> bool:
    """True when a BeautifulSoup tag sits in a cross-sell block (or, with chrome, in header/footer/nav/aside)."""
    for el in [tag, *tag.parents]:
        if not isinstance(el, Tag) or el.name in ("body", "html", "[document]"):
            continue
        if chrome and (el.name in _CHROME_TAGS or el.get("role") in _CHROME_ROLES):
            return True
        attrs = " ".join([el.name, *el.get("class", []), el.get("id", ""), el.get("aria-label", ""),
                          el.get("data-section-type", "")])
        if _EXCLUDED.search(attrs):
            return True
    return False


def _junk_img(img: Any) -> bool:
    """Tracking pixels, icons, sprites, logos and swatches by their markup."""
    attrs = _attrs(img)
    for dim in ("width", "height"):
        value = attrs.get(dim, "").strip().removesuffix("px")
        if value.isdecimal() and int(value) <= 60:
            return True
    return bool(_JUNK_CLASS.search(attrs.get("class", "") + " " + attrs.get("id", "")))


# ---------------------------------------------------------------------------------------------------- pictures

@dataclass
class _Context:
    """What the ancestors of an element say about the pictures inside it."""

    gallery: bool = False
    excluded: bool = False
    foreign_scope: bool = False
    other_link: bool = False  # inside a link to another page: a tile of another product
    junk: bool = False


@dataclass
class _Evidence:
    """Everything known about one picture (all renditions of it), gathered before scoring."""

    key: str
    renditions: dict[str, float] = field(default_factory=dict)  # url -> width
    origins: set[str] = field(default_factory=set)
    named: bool = False  # by the product's structured data
    named_foreign: bool = False  # by another product's structured data
    og: bool = False
    best_place: float = -99.0  # the best score among the places it was found (see `_place_score`)
    place_reasons: tuple[str, ...] = ()
    matches_product: bool = False  # shares the product's id, SKU or slug
    alt_match: bool = False
    script_scope: bool = False  # in the part of an inline script's JSON that describes this product
    merged: set[str] = field(default_factory=set)  # the keys of the renditions merged into this picture
    sibling: bool = False  # a slot of a list (thumbnail strip) whose other slots hold this product's pictures
    order: int = 0


def _place_score(ctx: _Context, origin: str, width: float) -> tuple[float, tuple[str, ...]]:
    """How much one place where a picture was found speaks for it (and why)."""
    score, why = 0.0, []
    if ctx.gallery:
        score += 3
        why.append("gallery+3")
    if ctx.excluded:
        score -= 6
        why.append("recommendation/chrome-6")
    if ctx.foreign_scope:
        score -= 6
        why.append("other-product-scope-6")
    if ctx.other_link:
        score -= 3
        why.append("links-elsewhere-3")
    if width >= 500 or origin in _HIRES_ATTRS or origin == "link":
        score += 1
        why.append("large+1")
    return score, tuple(why)


def _score(ev: _Evidence) -> tuple[float, list[str]]:
    """The evidence that a picture is this product's, as a score (kept at >= _KEEP) and its reasons.

    Named by the product's structured data is the strongest sign; OpenGraph names the page's main picture; the
    gallery, a shared id/slug/SKU, an alt text like the title and the product's part of an inline script support;
    another product's structured data, a recommendation block, another product's scope and a link to another
    page speak against. A picture's place score is the best place it was found in.
    """
    score, why = ev.best_place, list(ev.place_reasons)
    for flag, points, reason in ((ev.named, 6, "structured-data"), (ev.og, 4, "opengraph"),
                                 (ev.matches_product, 2, "id/slug"), (ev.alt_match, 2, "alt-text"),
                                 (ev.script_scope, 3, "script-product-json"), (ev.sibling, 2, "gallery-sibling"),
                                 (ev.named_foreign and not ev.named, -6, "other-product-data")):
        if flag:
            score += points
            why.append(f"{reason}{points:+d}")
    return score, why


def _product_tokens(page_url: str, info: ProductInfo, product: dict[str, Any] | None) -> set[str]:
    """Identifiers of this product that its picture URLs often contain: numeric ids, SKU, model codes."""
    tokens: set[str] = set()
    for value in (info.sku, _text(product.get("productID")) if product else None,
                  _text(product.get("mpn")) if product else None, _text(product.get("gtin13")) if product else None):
        if value and len(value) >= 4:
            tokens.add(value.lower())
    parts = urlsplit(page_url)
    for m in re.finditer(r"(?<![a-z0-9])([a-z]{0,3}\d[a-z0-9]{4,}|\d{5,})(?![a-z0-9])", parts.path.lower()):
        tokens.add(m.group(1))
    for _, v in parse_qsl(parts.query):
        if re.fullmatch(r"[A-Za-z]{0,3}\d{5,}", v):
            tokens.add(v.lower())
    return {t for t in tokens if not re.fullmatch(r"20[0-3]\d|\d{1,4}", t)}


def _slug_words(page_url: str) -> set[str]:
    path = urlsplit(page_url).path.lower()
    slug = max(re.split(r"/", path), key=lambda s: s.count("-") + s.count("_"), default="")
    return {w for w in re.split(r"[-_.]", slug) if len(w) >= 3 and not w.isdigit() and w not in ("html", "htm")}


def _matches_product(url: str, tokens: set[str], slug: set[str]) -> bool:
    path = urlsplit(url).path.lower()
    if any(t in path for t in tokens):
        return True
    name_words = {w for w in re.split(r"[-_./]", path.rsplit("/", 1)[-1]) if len(w) >= 3}
    return len(slug) >= 2 and len(name_words & slug) >= 2


@dataclass
class _ScriptFinds:
    """Image URLs found in inline scripts: each with whether it sits in an object that names this product, and the
    lists they sit in (a gallery list holds the product's known pictures beside the ones found nowhere else)."""

    urls: list[tuple[str, bool]] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)


def _url_id(url: str) -> str:
    """A page URL as an identifier: host and path, lower case, without scheme, query, fragment or trailing slash."""
    parts = urlsplit(url.strip())
    return f"{(parts.hostname or '').removeprefix('www.')}{parts.path.rstrip('/')}".lower()


def _script_images(doc: Any, ids: set[str], page_id: str = "") -> _ScriptFinds:
    """Image URLs in inline scripts (JSON state blobs, JS object literals); JSON is walked as data, the rest is
    searched as text (an image then counts as this product's when an id of it is near). An object whose URL is
    this page names this product as much as one holding its id."""
    ids = ids | ({page_id} if page_id.count("/") >= 1 and not page_id.endswith("/") else set())
    finds = _ScriptFinds()
    for script in doc.iter("script"):
        kind = (script.get("type") or "").lower()
        if "ld+json" in kind or script.get("src"):
            continue
        text = script.text or ""
        if not text or not re.search(_IMAGE_EXT, text, re.I):
            continue
        data = _script_json(text)
        if data is not None:
            _walk_script_json(data, ids, False, finds)
            continue
        text = text.replace("\\/", "/").replace("\\u002F", "/").replace("\\u002f", "/")
        low = text.lower()
        for m in _IMAGE_URL.finditer(text):
            keys = re.findall(r"[\"']?([A-Za-z_]\w*)[\"']?\s*:", text[max(0, m.start() - 60):m.start()])
            if any(_CHROME_KEY.search(k) for k in keys[-2:]):
                continue  # {"icon": {"original": url}}: a logo, icon or swatch, as in parsed JSON
            window = low[max(0, m.start() - 600):m.end() + 600]
            finds.urls.append((m.group(0), any(t in window for t in ids)))
    return finds


def _script_json(text: str) -> Any:
    """The JSON a script holds (a JSON script, or one `x = {...};` assignment), or None when it is other JS."""
    # XHTML-era pages wrap script bodies in (commented) CDATA markers.
    text = re.sub(r"^\s*(?://\s*|/\*\s*)?<!\[CDATA\[|(?://\s*|/\*\s*)?\]\]>(?:\s*\*/)?\s*$", "", text).strip()
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    end = max(text.rfind("}"), text.rfind("]"))
    try:
        return json.loads(text[start:end + 1], strict=False)
    except (ValueError, RecursionError):
        return None


def _walk_script_json(node: Any, ids: set[str], own: bool, finds: _ScriptFinds, depth: int = 0) -> None:
    """Collect image URLs from parsed script JSON: an object whose own values name this product (id, SKU, title)
    makes its whole subtree the product's; each list's direct pictures form a group."""
    if depth > 60:
        return
    if isinstance(node, dict):
        own = _names_product(node, ids) or own and not _names_other_page(node, ids)
        for key, value in node.items():
            if isinstance(key, str) and _CHROME_KEY.search(key):
                continue  # a logo, icon, badge or swatch of the product is not a picture of it
            _walk_script_json(value, ids, own, finds, depth + 1)
    elif isinstance(node, list):
        group = []
        # A list of objects one of which is this product (its colours, models, variants): the others are other
        # products, even though the list sits inside this product's object.
        naming = [isinstance(item, dict) and _names_product(item, ids) for item in node]
        siblings = any(naming) and sum(isinstance(item, dict) for item in node) >= 2
        for item, names in zip(node, naming):
            values = item.values() if isinstance(item, dict) else [item]
            if not siblings or names:  # other models' pictures are no part of this product's gallery list
                group += [v for v in values if isinstance(v, str) and _IMAGE_URL.fullmatch(v.strip())]
            _walk_script_json(item, ids, own and not (siblings and not names), finds, depth + 1)
        if len(group) > 1:
            finds.groups.append(group)
    elif isinstance(node, str) and len(node) < 2000:
        value = node.strip()
        if _IMAGE_URL.fullmatch(value) or value.startswith("/") and _RELATIVE_IMAGE.match(value):
            finds.urls.append((value, own))
        elif "<img" in value or "srcset" in value:  # HTML inside JSON (rendered fragments)
            finds.urls += [(m.group(0), own) for m in _IMAGE_URL.finditer(value)]


def _names_product(node: dict[str, Any], ids: set[str]) -> bool:
    """True when one of an object's own scalar values is an identifier (id, SKU, title) of this product."""
    for v in node.values():
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            text = str(v).strip().lower()
            if text in ids or text.startswith(("http", "/")) and len(text) < 500 and _url_id(text) in ids:
                return True
    return False


def _names_other_page(node: dict[str, Any], ids: set[str]) -> bool:
    """True when a named object (name/title beside a URL) links another page: a tile of another product or colour."""
    if not any(isinstance(k, str) and k.lower() in ("name", "title", "label") for k in node):
        return False
    for key, v in node.items():
        if isinstance(key, str) and re.search(r"(?:url|link|href)$", key, re.IGNORECASE) and isinstance(v, str):
            text = v.strip().lower()
            if text.startswith(("http", "/")) and not _IMAGE_PATH.search(urlsplit(text).path) and _url_id(text) \
                    and _url_id(text) not in ids and urlsplit(text).path.strip("/"):
                return True
    return False


def _gather_dom(doc: Any, base: str, scope: Any, page_url: str, add: Any) -> None:
    """Walk the document once, calling add(candidate, context, element) for every image URL an element carries."""
    product_scopes = doc.xpath("//*[@itemscope][contains(@itemtype, 'Product') or contains(@itemtype, 'product')]")
    main_scope = scope if scope is not None else (product_scopes[0] if product_scopes else None)
    # The containers of the product's heading (and of its microdata scope) describe this product, whatever their
    # class names say ("ad", "promo-..." and the like name product containers on some shops).
    starts = [h for h in doc.iter("h1") if not any(a.tag in _CHROME_TAGS for a in h.iterancestors())]
    main_chain = {id(a) for start in starts + [main_scope] if start is not None for a in start.iterancestors()}
    main_chain |= {id(el) for el in doc.iter("html", "body")}  # Modernizr puts "history" on <html>
    contexts: dict[Any, _Context] = {}
    for el in doc.iter():
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "noscript", "template", "head", "title"):
            continue
        parent = el.getparent()
        pctx = contexts.get(parent, _Context()) if parent is not None else _Context()
        attrs = " ".join(filter(None, (el.get("class"), el.get("id"), el.get("aria-label"),
                                       el.get("data-section-type"))))
        ctx = _Context(gallery=pctx.gallery or (bool(_GALLERY.search(attrs)) and el.tag not in ("a", "img")),
                       excluded=pctx.excluded or id(el) not in main_chain and (
                           el.tag in _CHROME_TAGS or el.get("role") in _CHROME_ROLES or bool(_EXCLUDED.search(attrs))),
                       foreign_scope=pctx.foreign_scope or (el.get("itemscope") is not None and el in product_scopes
                                                            and main_scope is not None and el is not main_scope),
                       other_link=pctx.other_link or (el.tag == "a" and _links_elsewhere(el.get("href"), base,
                                                                                         page_url)),
                       junk=pctx.junk)
        if el.tag in ("img", "source", "picture"):
            ctx.junk = ctx.junk or _junk_img(el)
        elif el.tag in _MEDIA_PLAYERS:  # a video's poster and sources are stills of a film, not product pictures
            ctx.junk = True
        contexts[el] = ctx
        if not el.attrib or el.tag in ("meta", "link", "html", "body") or ctx.junk:
            continue
        for cand in _element_images(el, base):
            add(cand, ctx, el)


def _links_elsewhere(href: str | None, base: str, page_url: str) -> bool:
    url = absolute(href, base)
    if url is None or _IMAGE_PATH.search(urlsplit(url).path):
        return False
    return not _same_page(url, page_url)


def _alt_matches(el: Any, title_words: set[str]) -> bool:
    alt = " ".join(filter(None, (el.get("alt"), el.get("title"))))
    words = _norm_words(alt)
    return len(title_words) >= 2 and len(words & title_words) >= max(2, 0.6 * min(len(words), len(title_words)))


def _pictures(doc: Any, base: str, page_url: str, sd: _Structured, info: ProductInfo,
              selected: list[Any] | None) -> list[ImageCandidate]:
    """Every picture the page offers, scored; the product's ones (score >= _KEEP), best first."""
    evidence: dict[str, _Evidence] = {}
    tokens = _product_tokens(page_url, info, sd.product)
    slug = _slug_words(page_url)
    title_words = _norm_words(info.title or "")

    def ev_for(url: str, width: float, origin: str) -> _Evidence | None:
        url = absolute(url, base) or ""
        if not url or junk_url(url):
            return None
        key, hinted = _variant(url)
        ev = evidence.get(key)
        if ev is None:
            ev = evidence[key] = _Evidence(key, order=len(evidence))
            ev.matches_product = _matches_product(url, tokens, slug)
        width = width or hinted
        ev.renditions[url] = max(ev.renditions.get(url, -1.0), width)
        ev.origins.add(origin)
        return ev

    for url in sd.product_images:
        if ev := ev_for(url, 0.0, "structured"):
            ev.named = True
    for url in sd.foreign_images:
        if ev := ev_for(url, 0.0, "structured-other"):
            ev.named_foreign = True
    og_images = sd.og.get("og:image") or []
    for value in og_images if isinstance(og_images, list) else [og_images]:
        url = value.get("og:image") if isinstance(value, dict) else value
        if isinstance(url, str) and (ev := ev_for(url, 0.0, "og")):
            ev.og = True

    shown: dict[Any, dict[str, set[str]]] = {}  # element -> attribute -> picture keys it carries
    clean: set[Any] = set()  # elements outside recommendations, other products' scopes and links elsewhere

    def add(cand: ImageCandidate, ctx: _Context, el: Any) -> None:
        ev = ev_for(cand.url, cand.width, cand.origin)
        if ev is None:
            return
        if selected is not None:  # a selector override names the gallery: its elements are the gallery
            ctx = _Context(gallery=True)
        place, why = _place_score(ctx, cand.origin, cand.width or _variant(cand.url)[1])
        if place > ev.best_place:
            ev.best_place, ev.place_reasons = place, why
        ev.alt_match = ev.alt_match or (not ctx.excluded and not ctx.foreign_scope and _alt_matches(el, title_words))
        if isinstance(el, Tag):  # a selector override's BeautifulSoup element: it names the gallery itself
            return
        shown.setdefault(el, {}).setdefault(cand.origin, set()).add(ev.key)
        if not (ctx.excluded or ctx.foreign_scope or ctx.other_link):
            clean.add(el)

    if selected is not None:
        for el in selected:
            for cand in _element_images(el, base):
                add(cand, _Context(gallery=True), el)
    else:
        _gather_dom(doc, base, sd.microdata_scope, page_url, add)
        ids = tokens | {n for n in [(info.title or "").lower()] if len(n) >= 8}
        finds = _script_images(doc, ids, _url_id(page_url))
        for url, own in finds.urls:
            if ev := ev_for(url, 0.0, "script"):
                ev.script_scope = ev.script_scope or own
        for group in finds.groups:
            evs = [evidence.get(_variant(u)[0]) for u in (absolute(u, base) for u in group) if u]
            # A list that holds the product's known pictures is its gallery: the rest of the list is too.
            if any(e is not None and (e.named or e.og or e.best_place >= 3) for e in evs):
                for e in evs:
                    if e is not None:
                        e.script_scope = True

    evidence = _merge_renditions(evidence, _shown_together(shown))
    _mark_siblings(evidence, shown, clean)
    kept: list[ImageCandidate] = []
    for ev in evidence.values():
        if ev.best_place == -99.0:
            ev.best_place = 0.0  # named by metadata only, never seen in the page body
        score, why = _score(ev)
        urls = sorted(ev.renditions, key=lambda u: -_rank(ev.renditions[u]))
        log.debug("picture %s: %.0f (%s) %s; renditions %s", ev.key, score, ", ".join(why) or "no evidence",
                  "kept" if score >= _KEEP else "dropped", " ".join(urls))
        if score < _KEEP:
            continue
        alternates = urls[1:]
        original = _original_url(urls[0])
        if original and original not in ev.renditions:
            alternates.append(original)  # the rendition without size tokens: often the largest one reachable
        kept.append(ImageCandidate(urls[0], ev.renditions[urls[0]], ",".join(sorted(ev.origins)), ev.key,
                                   alternates, score))
    # Structured data's own order first (its first image is the main one), then by evidence, then page order.
    kept.sort(key=lambda c: (-min(c.score, 6 + 4), evidence[c.key].order))
    return kept


def _shown_together(shown: dict[Any, dict[str, set[str]]]) -> list[set[str]]:
    """Picture keys the markup shows as one picture: one element's srcset and single-URL attributes (src,
    data-zoom, ...), and an image inside a <picture> or inside a link or slide that holds no other image."""
    def own(el: Any) -> set[str]:
        out: set[str] = set()
        for origin, keys in shown.get(el, {}).items():
            # Renditions sit in srcset and in src/zoom/large/thumb attributes; other data-* attributes may hold
            # another picture (a hover image) and one holding several pictures (a JSON list) is a gallery.
            if origin in _SRCSET_ATTRS or origin.endswith("srcset") or len(keys) == 1 and _RENDITION_ATTR.search(
                    origin):
                out |= keys
        return out

    together = []
    for el in shown:
        if el.tag != "img":
            continue
        keys = own(el)
        parent, depth = el.getparent(), 0
        while parent is not None and depth < 3 and parent.tag not in ("body", "html"):
            if parent.tag == "picture" or sum(1 for _ in itertools.islice(parent.iter("img"), 2)) == 1:
                keys |= own(parent)
                for sub in parent.iter("source"):
                    keys |= own(sub)
            else:
                break
            parent, depth = parent.getparent(), depth + 1
        if len(keys) > 1:
            together.append(keys)
    together += [k for el in shown if el.tag != "img" and len(k := own(el)) > 1]
    return together


def _slot_lists(shown: dict[Any, dict[str, set[str]]]) -> dict[Any, list[tuple[Any, Any]]]:
    """Lists of like slots holding images (thumbnail strips, gallery slides): list element -> (slot, element)."""
    lists: dict[Any, list[tuple[Any, Any]]] = {}
    for el in shown:
        node, depth = el, 0
        while depth < 7:  # old table layouts nest a thumbnail 6 deep inside its <li> slot
            parent = node.getparent()
            if parent is None or parent.tag in ("body", "html"):
                break
            like = sum(1 for c in itertools.islice(parent.iterchildren(node.tag), 3))
            if like >= 2:
                lists.setdefault(parent, []).append((node, el))
                break
            node, depth = parent, depth + 1
    return lists


def _mark_siblings(evidence: dict[str, _Evidence], shown: dict[Any, dict[str, set[str]]], clean: set[Any]) -> None:
    """A picture in a list of like slots (a strip of thumbnails) beside this product's pictures is one of them:
    small thumbnails carry little evidence of their own. Only slots outside recommendations and other products'
    links count, and a list counts when one of its pictures is named by structured data or OpenGraph or sits in the
    product's gallery."""
    owner = {key: ev for ev in evidence.values() for key in ev.merged | {ev.key}}
    for members in _slot_lists(shown).values():
        evs = [(owner[key], el in clean) for _, el in members for keys in shown[el].values() for key in keys
               if key in owner]
        if len({id(e) for e, _ in evs}) < 2:
            continue
        if any(ok and (e.named or e.og or e.best_place >= 3) for e, ok in evs):
            for e, ok in evs:
                e.sibling = e.sibling or ok


def _merge_renditions(evidence: dict[str, _Evidence], together: list[set[str]]) -> dict[str, _Evidence]:
    """One evidence per picture: the evidences of keys `picture_groups` finds to be renditions of one picture,
    combined (renditions, origins and flags pooled, the best place kept, the earliest page order)."""
    groups = picture_groups(evidence, together)
    out: dict[str, _Evidence] = {}
    for key, ev in evidence.items():
        root = groups[key]
        into = out.get(root)
        if into is None:
            out[root] = ev
            ev.merged.add(key)
            ev.key = root
            continue
        for url, width in ev.renditions.items():
            into.renditions[url] = max(into.renditions.get(url, -1.0), width)
        into.origins |= ev.origins
        for flag in ("named", "named_foreign", "og", "matches_product", "alt_match", "script_scope"):
            setattr(into, flag, getattr(into, flag) or getattr(ev, flag))
        if ev.best_place > into.best_place:  # -99: named by metadata only, no place in the page body
            into.best_place, into.place_reasons = ev.best_place, ev.place_reasons
        into.order = min(into.order, ev.order)
        into.merged |= ev.merged | {key}
    return out


def _original_url(url: str) -> str | None:
    """The URL of a rendition with its size tokens removed (the CDN's original), or None when it has none."""
    key, width = _variant(url)
    if width == 0:
        return None
    parts = urlsplit(url)
    host_path, _, query = key.partition("?")
    path = host_path[len(host_path.split("/", 1)[0]):] if "/" in host_path else "/"
    kept = urlunsplit((parts.scheme, parts.netloc, path, query, ""))
    kept_q = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if k.lower() not in _SIZE_QUERY or k.lower() in ("v", "ver", "version")]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(kept_q), "")) if kept else None


# ---------------------------------------------------------------------------------------------------- picture groups

# Words CDNs and shop platforms name renditions with (a file name's prefix/suffix or a path segment).
_RENDITION_WORDS = (frozenset(_SIZE_WORDS) - {"main"}) | {  # "-main" often names another photo
    "xs", "sm", "md", "lg", "xxs", "xxxl", "hd", "sd", "uhd", "fhd", "orig", "list", "listing", "cart", "catalog",
    "desktop", "mobile", "tablet", "retina", "lowres", "highres", "hq", "lq", "normal", "std", "standard", "popup",
    "tiny", "square", "img"}
_RENDITION_ATTR = re.compile(r"^(?:src|link|poster)$|^data-(?:.*[-_])?(?:src|zoom|large|full|big|hi-?res|orig\w*|thumb\w*|"
                             r"main|lazy|original|image-large|old-hires|iesrc)(?:[-_].*)?$")
_SEPARATORS = re.compile(r"([-_,.~@=+]+)")
_HEX_ID = re.compile(r"[0-9a-f]{16,}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


def _size_token(tok: str, whole_segment: bool, first_of_name: bool, alone: bool, id_in_name: bool
                ) -> tuple[bool, float | None]:
    """Whether one token of a key names a size or rendition, and the number it holds (None for a word)."""
    t = tok.lower()
    m = re.fullmatch(r"[a-z]{0,3}(\d{2,4})x\d{0,4}[a-z]?|x(\d{2,4})|[a-z]{1,2}(\d{2,4})", t)
    if m:
        return True, float(next(g for g in m.groups() if g))
    if t in _RENDITION_WORDS or re.fullmatch(r"\d(?:\.\d+)?x", t):  # words and densities (@2x)
        return True, None
    if t.isdecimal() and not t.startswith("0") and 16 <= int(t) <= 4096 and (not alone or whole_segment and id_in_name):
        return True, float(t)  # a whole numeric segment is a size only beside a file named by an id
    if re.fullmatch(r"[a-z]", t) and (whole_segment or first_of_name and not alone):
        return True, None  # /m/123.jpg, l_123.jpg: a rendition letter
    return False, None


def _loose_key(key: str) -> tuple[str, tuple[float | None, ...]]:
    """A picture key with every size-like token (numbers a size could be, NxM, rendition words, a lone letter as
    a path segment or file prefix) replaced by '*' (runs of them by one '*'), and the numbers it replaced.

    Two keys with one loose key differ only in such tokens: renditions of one picture, when their numbers are
    far enough apart to be sizes (see `_same_sizes`).
    """
    host, _, rest = key.partition("/")
    path, _, query = rest.partition("?")
    segments = path.split("/")
    segments[-1] = re.sub(r"\." + _IMAGE_EXT + r"$", "", segments[-1], flags=re.IGNORECASE)
    id_in_name = len(re.findall(r"\d", segments[-1])) >= 4
    tokens: list[tuple[str, bool, float | None]] = []  # (text, is size, number); "/" and separators kept
    for i, seg in enumerate(segments):
        if i:
            tokens.append(("/", False, None))
        parts = _SEPARATORS.split(seg)
        words = parts[0::2]
        for j, tok in enumerate(parts):
            if j % 2:
                tokens.append((tok, False, None))
                continue
            size, value = _size_token(tok, len(words) == 1 and i < len(segments) - 1,
                                      i == len(segments) - 1 and j == 0, len(words) == 1, id_in_name)
            tokens.append((tok, size, value))
    out: list[str] = []
    values: list[float | None] = []
    run = False  # inside a run of size tokens (separators between them belong to the run)
    pending = ""
    for text, size, value in tokens:
        if size:
            if run:
                pending = ""
                if values[-1] is None:
                    values[-1] = value
            else:
                out.append(pending + "*")
                pending = ""
                values.append(value)
            run = True
        elif text == "/" or _SEPARATORS.fullmatch(text) or text == "":
            pending += text
        else:
            out.append(pending + text)
            pending = ""
            run = False
    out.append(pending)
    return f"{host}/{''.join(out)}?{query}", tuple(values)


def _same_sizes(a: tuple[float | None, ...], b: tuple[float | None, ...]) -> bool:
    """Two loose keys' replaced numbers say renditions: each pair equal, a word on either side, or sizes at least
    a quarter apart (so that photo_101 and photo_102, a sequence, stay two pictures)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is None or y is None or x == y:
            continue
        if max(x, y) / max(1.0, min(x, y)) < 1.25:
            return False
    return True


class _Groups:
    """Union-find over picture keys: which keys on a page are renditions of one picture."""

    def __init__(self, keys: Iterable[str]):
        self.parent = {k: k for k in keys}

    def find(self, key: str) -> str:
        """The group's representative key."""
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        """Make two keys one picture."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def picture_groups(keys: Iterable[str], together: Iterable[Iterable[str]] = ()) -> dict[str, str]:
    """Which of a page's picture keys are one picture: key -> its group's representative.

    Keys are one picture when the page shows them as one (`together`: the URLs of one element, a srcset, a link to
    a large image around its thumbnail), when they differ only in size-like tokens (`_loose_key`), when one is the
    other plus a descriptive file name (/i/<id> and /i/<id>/name.jpg), or when they share a file name that is a
    long hexadecimal id (one picture served by two CDN hosts or paths).
    """
    keys = list(dict.fromkeys(keys))
    groups = _Groups(keys)
    for members in together:
        members = [m for m in members if m in groups.parent]
        for other in members[1:]:
            groups.union(members[0], other)
    loose: dict[str, list[tuple[str, tuple[float | None, ...]]]] = {}
    bare: dict[str, list[tuple[str, bool]]] = {}  # loose key without the file name's size affix -> (key, is bare)
    by_hex: dict[str, str] = {}
    known = set(keys)
    for key in keys:
        sig, values = _loose_key(key)
        for other, other_values in loose.get(sig, []):
            if _same_sizes(values, other_values):
                groups.union(key, other)
        loose.setdefault(sig, []).append((key, values))
        # chair.jpg and chair_50x50c.jpg: the original and a rendition, whatever the rendition's size
        plain = re.sub(r"(?:[-_,.~@=+]+\*(?=\?)|(?<=/)\*[-_,.~@=+]+(?=[^/]*\?))", "", sig)
        for other, other_bare in bare.get(plain, []):
            if plain == sig or other_bare:
                groups.union(key, other)
        bare.setdefault(plain, []).append((key, plain == sig))
        path = key.partition("?")[0]
        head, _, name = path.rpartition("/")
        if head in known and _IMAGE_PATH.search(name) and re.search(r"\d", head.rsplit("/", 1)[-1]):
            groups.union(key, head)  # /i/<id>/seo-name.jpg is /i/<id>
        stem = re.sub(r"\." + _IMAGE_EXT + r"$", "", name, flags=re.IGNORECASE)
        if _HEX_ID.fullmatch(stem):
            if stem.lower() in by_hex:
                groups.union(key, by_hex[stem.lower()])
            by_hex.setdefault(stem.lower(), key)
    return {k: groups.find(k) for k in keys}


# ---------------------------------------------------------------------------------------------------- product

def _parse_lxml(html: str) -> Any:
    """The page as an lxml document (never None: an empty page is an empty <html>)."""
    text = html if html.strip() else "<html></html>"
    try:
        return lxml.html.document_fromstring(text.encode("utf-8", "replace"),
                                             parser=lxml.html.HTMLParser(encoding="utf-8", recover=True,
                                                                         remove_comments=True))
    except lxml.etree.ParserError:
        return lxml.html.document_fromstring("<html></html>")


def _doc_base(doc: Any, page_url: str) -> str:
    href = (doc.xpath("//base/@href") or [""])[0].strip()
    return urljoin(page_url, href) if href else page_url


def extract_product(html: str, page_url: str, selectors: Selectors | None = None) -> ProductInfo:
    """Everything a product page says about its product; its pictures (one URL per picture, the largest rendition
    found), best evidence first."""
    sel = selectors or Selectors()
    doc = _parse_lxml(html)
    base = _doc_base(doc, page_url)
    info = ProductInfo(url=page_url)
    sd = _structured(doc, page_url, base)
    node = sd.product
    if node:
        info.title = _text(node.get("name"))
        info.sku = _text(node.get("sku") or node.get("mpn") or node.get("productID") or node.get("gtin13"))
        info.brand = _text(node.get("brand"))
        info.category = _text(node.get("category"))
        offers = node.get("offers")
        offer = offers[0] if isinstance(offers, list) and offers else offers
        if isinstance(offer, dict):
            price = _text(offer.get("price") or offer.get("lowPrice"))
            info.price = f"{price} {_text(offer.get('priceCurrency')) or ''}".strip() if price is not None else None
        info.dimensions_text = _jsonld_dimensions(node)
    soup = parse_html(html) if any((sel.image, sel.title, sel.sku, sel.category, sel.dimensions)) else None
    h1 = next((h for h in doc.iter("h1") if not _in_excluded(h)), None)
    # The h1 before og:title: SEO plugins append the shop name to og:title.
    info.title = (_select_text(soup, sel.title) or info.title or _visible_text(h1) or _text(sd.og.get("og:title")))
    info.sku = _select_text(soup, sel.sku) or info.sku
    crumbs = [name for name, url in sd.breadcrumbs
              if name.lower() not in ("home", "start", "homepage") and not (url and _same_page(urljoin(page_url, url),
                                                                                          page_url))]
    if sd.breadcrumbs and not sd.breadcrumbs[-1][1] and crumbs and crumbs[-1] == sd.breadcrumbs[-1][0]:
        crumbs.pop()  # schema.org lets the last crumb (the page itself) omit its link
    if crumbs and info.title and crumbs[-1].lower() == info.title.lower():
        crumbs.pop()
    info.category = (_select_text(soup, sel.category) or info.category or (crumbs[-1] if crumbs else None)
                     or _breadcrumb_html(doc, page_url, include_current=False))
    info.dimensions_text = _select_text(soup, sel.dimensions) or info.dimensions_text or _dimensions_html(doc)
    selected = soup.select(sel.image) if soup is not None and sel.image else None
    info.images = _pictures(doc, base, page_url, sd, info, selected)
    return info


# ---------------------------------------------------------------------------------------------------- listings

def _tile_title(tile: Tag, link: Tag | None) -> str | None:
    for el in tile.select("[class*=title], [class*=name], [class*=heading], h2, h3, h4"):
        text = " ".join(el.get_text(" ").split())
        if text:
            return text
    if link is not None and link.get_text(strip=True):
        return " ".join(link.get_text(" ").split())
    img = tile.find("img", alt=True)
    return img["alt"].strip() or None if img else None


_LINK_ATTRS = ("href", "data-href", "data-url", "data-link", "data-page-url", "data-next-url", "data-target-url")


def _link_of(el: Tag, base: str) -> str | None:
    """The URL an <a href> or a JS link points to: the first of href, data-href, data-url, ... that resolves
    (a `javascript:` href defers to the data attribute)."""
    for attr in _LINK_ATTRS:
        url = absolute(el.get(attr), base)
        if url:
            return url
    return None


def _structural_tiles(soup: BeautifulSoup, usable: Any, base: str) -> list[tuple[str, Tag]]:
    """Tiles found by structure: the largest group of >= 3 like sibling blocks each holding its own product link
    and an image (a grid of products, whatever its class names)."""
    best: list[tuple[str, Tag]] = []
    for parent in soup.find_all(True):
        children = [c for c in parent.find_all(True, recursive=False)]
        if len(children) < 3:
            continue
        groups: dict[tuple[str, str], list[Tag]] = {}
        for c in children:
            sig = (c.name, " ".join(sorted(k for k in c.get("class", []) if not re.search(r"\d", k)))[:60])
            groups.setdefault(sig, []).append(c)
        for members in groups.values():
            if len(members) < 3 or len(members) <= len(best):
                continue
            found, seen = [], set()
            for m in members:
                if not m.find(["img", "picture"]) and not m.find(attrs={"data-src": True}):
                    continue
                link = next((u for a in m.find_all(True, attrs={"href": True}) + m.find_all(
                    True, attrs={"data-href": True}) if usable(u := _link_of(a, base))), None)
                if link and link not in seen:
                    seen.add(link)
                    found.append((link, m))
            if len(found) >= 3 and len(found) >= 0.6 * len(members) and len(found) > len(best) \
                    and not _excluded(members[0]):
                best = found
    return best


def _is_product_page(soup: BeautifulSoup, html: str, page_url: str) -> bool:
    """The page describes one product (OpenGraph type product, or a structured Product for this URL), so its
    product links are recommendations, not a listing."""
    og_type = soup.find("meta", attrs={"property": "og:type"})
    if og_type and "product" in str(og_type.get("content", "")).lower():
        return True
    # OpenGraph/Facebook product price tags describe the one product a page sells.
    if soup.find("meta", attrs={"property": re.compile(r"^(?:og:price|og:price:amount|product:price:amount)$")}):
        return True
    doc = _parse_lxml(html)
    sd = _structured(doc, page_url, _doc_base(doc, page_url))
    if sd.has_itemlist:
        return False
    if sd.product is not None:
        url = _node_url(sd.product)
        canonical = soup.find("link", rel="canonical")
        if not url or _same_page(urljoin(page_url, url), page_url) or bool(
                canonical and _same_page(urljoin(page_url, url), urljoin(page_url, canonical.get("href", "")))):
            return True  # a Product without a URL of its own is the page's
    # A buy control of its own: a product page has one or two (top and sticky bar), a listing one per tile.
    buys = [el for el in soup.find_all(["button", "input", "a", "form", "div"], attrs={"class": True}) + soup.find_all(
        ["button", "input", "a", "form"], id=True) if _BUY.search(" ".join([*el.get("class", []), el.get("id", ""),
                                                                              el.get("name", "")]))]
    own = {id(b) for b in buys if not _excluded(b) and b.find_parent(True, attrs={"class": _TILE_CLASS}) is None}
    if 1 <= len(own) <= 2:  # buttons inside listing tiles are the tiles' own
        return True
    # A quantity field of its own (a product form, perhaps repeated in a sticky bar); tiles rarely carry one each.
    qty = [el for el in soup.find_all("input", attrs={"name": _QUANTITY}) if not _excluded(el)
           and el.find_parent(True, attrs={"class": _TILE_CLASS}) is None]
    return 1 <= len(qty) <= 2


def extract_listing(html: str, page_url: str, domains: Iterable[str], selectors: Selectors | None = None
                    ) -> ListingInfo:
    """Product tiles (same-site links, with tile image/title when present), next pages and the category shown;
    a product page yields no tiles and `is_product_page`."""
    sel = selectors or Selectors()
    domains = list(domains)
    soup = parse_html(html)
    base = base_url(soup, page_url)
    out = ListingInfo()
    tiles: dict[str, Tile] = {}

    def usable(url: str | None) -> bool:
        return bool(url) and same_site(url, domains) and not _NOT_PRODUCT_LINK.search(url) \
            and url.rstrip("/") != page_url.rstrip("/") and not _IMAGE_PATH.search(urlsplit(url).path)

    def add(url: str | None, tile_el: Tag | None) -> None:
        if not usable(url) or url in tiles:
            return
        tile = Tile(url=url)
        if tile_el is not None:
            link = tile_el.find("a", href=True)
            tile.title = _tile_title(tile_el, link)
            imgs = [best_image(img, base) for img in tile_el.find_all(["img", "source"]) if not _junk_img(img)]
            tile.image = max((c for c in imgs if c), key=lambda c: _rank(c.width), default=None)
        tiles[url] = tile

    if not sel.product_link and not sel.tile and _is_product_page(soup, html, page_url):
        out.is_product_page = True
    elif sel.product_link:
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
        found = []
        for tile_el in candidates:
            if _excluded(tile_el) or tile_el.find_parent(True, attrs={"class": _TILE_CLASS}) is not None:
                continue  # nested tiles belong to their outer tile; carousels are other products
            url = next((u for a in tile_el.find_all(True, attrs={"href": True}) + tile_el.find_all(
                attrs={"data-href": True}) if usable(u := _link_of(a, base))), None)
            if url:
                found.append((url, tile_el))
        if len(found) < 2 and not sel.tile:
            found = _structural_tiles(soup, usable, base) or found
        for url, tile_el in found:
            if url in tiles and tiles[url].image is None:
                del tiles[url]  # a JSON-LD ItemList entry: upgrade it to the tile with an image
            add(url, tile_el)
        for a in soup.find_all("a", href=_PRODUCT_PATH):
            if not _excluded(a):
                add(_link_of(a, base), None)
    out.tiles = list(tiles.values())
    if not out.is_product_page:
        out.next_pages = _next_pages(soup, page_url, base, domains, sel)

    h1 = soup.find("h1")
    crumb = None
    for node in iter_jsonld(soup, page_url):
        if "breadcrumblist" in _types(node):
            items = [i for i in node.get("itemListElement") or [] if isinstance(i, dict)]
            items.sort(key=lambda i: float(i.get("position") or 0))
            names = [n for i in items if (n := _text(i.get("name") or i.get("item"))) and n.lower() != "home"]
            crumb = names[-1] if names else None
            break
    out.category = (_select_text(soup, sel.category) or crumb or _visible_text(h1)
                    or _breadcrumb_html(_parse_lxml(html), page_url, include_current=False))
    return out


def _next_pages(soup: BeautifulSoup, page_url: str, base: str, domains: list[str], sel: Selectors) -> list[str]:
    """Further pages of a listing: rel=next, "next"/"load more" controls (href or data-href), else the numbered
    pagination links after the current page."""
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
            target = el if any(el.get(a) for a in _LINK_ATTRS) else el.find(
                lambda t: any(t.get(a) for a in _LINK_ATTRS))
            if target is not None:
                nexts.append(_link_of(target, base) or "")
        if not any(nexts):
            nexts += _numbered_pages(soup, page_url, base)
    out, seen = [], set()
    for url in nexts:
        if url and same_site(url, domains) and url not in seen and url.rstrip("/") != page_url.rstrip("/"):
            seen.add(url)
            out.append(url)
    return out


def _numbered_pages(soup: BeautifulSoup, page_url: str, base: str) -> list[str]:
    """Numbered pagination without a "next" control: the links numbered above the current page, nearest first."""
    for box in soup.find_all(True, attrs={"class": _PAGINATION}) + soup.find_all(True, id=_PAGINATION) + \
            soup.find_all(attrs={"aria-label": _PAGINATION}):
        current = 1
        marked = box.find(attrs={"aria-current": True}) or box.find(True, attrs={"class": re.compile(
            r"^(?:active|current|selected|is-active|is-current)$", re.I)})
        if marked is not None and marked.get_text(strip=True).isdecimal():
            current = int(marked.get_text(strip=True))
        pages = []
        for el in box.find_all(True):
            text = el.get_text(strip=True)
            if text.isdecimal() and int(text) > current and (url := _link_of(el, base)):
                pages.append((int(text), url))
        if pages:
            return [u for _, u in sorted(pages)]
    return []
