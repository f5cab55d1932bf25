"""The crawl: listing pages -> product pages -> verified, de-duplicated images in the manifest."""
from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from core.categories import CategoryMap, load_categories
from core.manifest import parse_dimensions

from .config import CrawlConfig, SourceConfig
from core.extract import ImageCandidate, ProductInfo, Tile, extract_listing, extract_product, same_site
from .fetch import Body, FetchError, PoliteClient
from .images import ImageInfo, ImageRejected, inspect_image
from .storage import ImageStore

log = logging.getLogger(__name__)

# What the extractors can raise on a malformed page (JSON-LD with a number where a list goes, nesting 100k deep, "²"
# where a width goes). Such a page is counted as a parse_error and the crawl goes on: no page stops a crawl.
MALFORMED = (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError)
# A picture's renditions are tried largest first; a smaller one only when the larger is missing or too small, and
# at most this many per picture (each is a request to the shop).
MAX_RENDITIONS = 3
RENDITION_MISSING = ("http_404", "http_410", "not_an_image")


@dataclass
class CrawlStats:
    """Counts for the progress bar and the end-of-run summary."""

    pages: int = 0
    products: int = 0
    products_resumed: int = 0
    tile_fallbacks: int = 0
    images: int = 0
    images_resumed: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    failures: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """A plain-text table of the run."""
        rows = [("listing pages", self.pages), ("products", self.products),
                ("products already done", self.products_resumed), ("listing-tile fallbacks", self.tile_fallbacks),
                ("images saved", self.images), ("images in manifest before", self.images_resumed),
                ("exact duplicates", self.duplicates), ("near-duplicate resizes", self.near_duplicates),
                ("failures", sum(self.failures.values()))]
        rows += [(f"  {reason}", n) for reason, n in sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{name:<{width}}  {value:>7}" for name, value in rows)


class Crawler:
    """Runs every configured source into one output folder; every failure is counted, none stops the crawl."""

    def __init__(self, cfg: CrawlConfig, out_dir: str | Path, categories: CategoryMap | None = None,
                 client: PoliteClient | None = None, progress: bool = True):
        self.cfg = cfg
        self.categories = categories or load_categories(cfg.categories)
        self.client = client or PoliteClient(cfg.http)
        self.store = ImageStore(out_dir, cfg.images.near_duplicate_distance)
        self.stats = CrawlStats(images_resumed=self.store.resumed_records)
        self._bar = tqdm(desc="crawl", unit="img", disable=not progress)

    def close(self) -> None:
        """Release the network session, the output files and the progress bar."""
        self._bar.close()
        self.store.close()
        self.client.close()

    def __enter__(self) -> "Crawler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, reason: str, url: str, detail: object = "") -> None:
        self.stats.failures[reason] += 1
        log.warning("%s: %s %s", reason, url, detail)
        self._progress()

    def _progress(self) -> None:
        self._bar.set_postfix(pages=self.stats.pages, products=self.stats.products,
                              dup=self.stats.duplicates + self.stats.near_duplicates,
                              failed=sum(self.stats.failures.values()), refresh=False)

    def run(self, only: list[str] | None = None) -> CrawlStats:
        """Crawl the configured sources (or only the named ones) and return the counts."""
        for source in self.cfg.sources:
            if only and source.name not in only:
                continue
            self.crawl_source(source)
        return self.stats

    def crawl_source(self, source: SourceConfig) -> None:
        """Walk a source's listing pages (with pagination) and take each product found on them."""
        for url in source.start_urls:
            self.client.set_min_delay(url, source.min_delay)
        self.client.set_default_delay(source.min_delay)  # hosts met through redirects and links, too
        queue = deque(source.start_urls)
        visited: set[str] = set()
        products: set[str] = set()
        pages = 0
        category: str | None = None  # later pages of a listing often don't repeat the category heading
        while queue and pages < source.max_pages and len(products) < source.max_products:
            url = queue.popleft()
            if url in visited:
                continue
            visited.add(url)
            try:
                page = self._get_page(source, url)
            except FetchError as exc:
                self._fail(exc.reason, url)
                continue
            visited.add(page.url)  # a redirect target counts as visited too
            pages += 1
            self.stats.pages += 1
            try:
                listing = extract_listing(page.text, page.url, source.allowed_domains, source.selectors)
            except MALFORMED as exc:
                self._fail("parse_error", page.url, repr(exc)[:120])
                continue
            category = listing.category = listing.category or category
            log.info("%s: listing %s (%s): %d products, next %s", source.name, page.url, category,
                     len(listing.tiles), listing.next_pages[:1])
            if not listing.tiles:  # a start URL may itself be a product page
                self._page_as_product(source, page, listing.category, products)
            for tile in listing.tiles:
                if len(products) >= source.max_products:
                    break
                if tile.url in products:
                    continue
                products.add(tile.url)
                self._product(source, tile, listing.category)
            queue.extend(u for u in listing.next_pages if u not in visited)

    def _page_as_product(self, source: SourceConfig, page: Body, listing_category: str | None,
                         products: set[str]) -> None:
        """Take a fetched page with no product tiles as a product page of its own, if it is one."""
        try:
            info = extract_product(page.text, page.url, source.selectors)
        except MALFORMED as exc:
            self._fail("parse_error", page.url, repr(exc)[:120])  # counted once, not also as "no products"
            return
        if not info.images:
            # Most often a shop whose markup needs selector overrides: say so rather than finish silently.
            self._fail("no_products_found", page.url)
        elif page.url not in products and len(products) < source.max_products:
            products.add(page.url)
            if self.store.page_done(page.url):
                self.stats.products_resumed += 1
            elif self._take_product(source, info, listing_category):
                self.store.mark_page_done(page.url)

    def _get_page(self, source: SourceConfig, url: str) -> Body:
        """A page of this source; a redirect off its allowed domains is not followed and counts as a failure."""
        return self.client.get_page(url, allow=lambda hop: same_site(hop, source.allowed_domains))

    def _product(self, source: SourceConfig, tile: Tile, listing_category: str | None) -> None:
        """Take one product: its page when it can be fetched, else the listing tile's own image."""
        if self.store.page_done(tile.url):
            self.stats.products_resumed += 1
            return
        info: ProductInfo | None = None
        transient = False
        if source.product_pages:
            try:
                page = self._get_page(source, tile.url)
                info = extract_product(page.text, page.url, source.selectors)
                info.url = tile.url
            except FetchError as exc:
                self._fail(f"page_{exc.reason}", tile.url)
                transient = exc.transient
            except MALFORMED as exc:  # the listing tile's own image is still worth taking
                self._fail("page_parse_error", tile.url, repr(exc)[:120])
        if info is None or not info.images:
            if tile.image is None:
                if info is not None:
                    self._fail("no_images_found", tile.url)
                return
            self.stats.tile_fallbacks += 1
            info = info or ProductInfo(url=tile.url)
            info.title = info.title or tile.title
            info.images = [tile.image]
        if self._take_product(source, info, listing_category) and not transient:
            self.store.mark_page_done(tile.url)

    def _take_product(self, source: SourceConfig, info: ProductInfo, listing_category: str | None) -> bool:
        """Download, verify and store a product's images; True when none needs another try later."""
        self.stats.products += 1
        self._progress()
        category = source.category or info.category or listing_category
        meta = dict(category=category, klass=self.categories.classify(category), title=info.title, sku=info.sku,
                    dimensions=parse_dimensions(info.dimensions_text), page_url=info.url, source=source.name)
        settled = True
        for cand in info.images[: self.cfg.images.max_per_product]:
            settled &= self._take_image(cand, meta, source.min_delay)
        return settled

    def _take_image(self, cand: ImageCandidate, meta: dict, min_delay: float) -> bool:
        """One picture: its largest rendition that can be had (the next rendition only when one is too small or
        missing), skipped if seen, verified and stored; True unless a later run might do better."""
        renditions = [cand.url, *cand.alternates][:MAX_RENDITIONS]
        for i, url in enumerate(renditions):
            if self.store.image_seen(url):
                return True
            self.client.set_min_delay(url, min_delay)  # image CDNs on other hosts get the same courtesy
            last = i == len(renditions) - 1
            try:
                body = self.client.get_image(url)
                info = inspect_image(body.data, self.cfg.images)
            except FetchError as exc:
                if not last and exc.reason in RENDITION_MISSING:
                    log.info("%s: %s, trying the next rendition", exc.reason, url)
                    continue
                self._fail(exc.reason, url)
                if not exc.transient:
                    self.store.mark_image(url, exc.reason)
                return not exc.transient
            except ImageRejected as exc:
                if not last and exc.reason == "too_small":
                    log.info("too small: %s (%s), trying the next rendition", url, exc)
                    continue
                self._fail(exc.reason, url, exc)
                self.store.mark_image(url, exc.reason)
                return True
            return self._store(body.data, info, url, cand, meta)
        return True

    def _store(self, data: bytes, info: ImageInfo, url: str, cand: ImageCandidate, meta: dict) -> bool:
        """Keep verified image bytes (or count them as a duplicate); always settled."""
        result = self.store.add(data, info, url, **meta)
        if result.status == "saved":
            log.debug("saved %s (%s, found in %s)", url, result.record.id, cand.origin or "listing tile")
            self.stats.images += 1
            self._bar.update(1)
        elif result.status == "duplicate":
            self.stats.duplicates += 1
        else:
            self.stats.near_duplicates += 1
            log.info("near-duplicate of %s: %s", result.duplicate_of, url)
        return True
