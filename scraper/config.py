"""Typed crawl configuration (sources.yaml): dataclasses plus a loader that rejects bad configs with clear errors."""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import soupsieve

from core.categories import DEFAULT_CATEGORIES, read_yaml
from core.extract import Selectors  # the extraction module owns it: it must not depend on the crawler's config

DEFAULT_USER_AGENT = "RoomFitBot/0.1 (+https://github.com/roomfit/roomfit; product photos for research)"


class ConfigError(ValueError):
    """A crawl config that cannot be used; the message names the file and the offending key."""


@dataclass
class HttpConfig:
    """How the crawler talks to servers."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    retries: int = 3
    backoff: float = 1.0  # urllib3 backoff_factor: sleeps 0, 2b, 4b, ... between retries
    max_backoff: float = 60.0
    max_retry_after: float = 120.0  # a 429/503 Retry-After longer than this is cut down to it
    max_redirects: int = 5
    max_page_bytes: int = 5_000_000
    max_image_bytes: int = 20_000_000
    max_download_seconds: float = 120.0  # a whole body must arrive within this, however slowly it trickles
    max_crawl_delay: float = 30.0  # cap on a robots.txt Crawl-delay


@dataclass
class ImageConfig:
    """Which downloaded images are kept."""

    min_side: int = 256
    max_pixels: int = 60_000_000
    near_duplicate_distance: int = 4  # perceptual-hash Hamming distance (of 64 bits) that counts as the same picture
    max_per_product: int = 12


@dataclass
class SourceConfig:
    """One shop: where to start, what it may visit, and how much."""

    name: str
    start_urls: list[str]
    allowed_domains: list[str] = field(default_factory=list)
    category: str | None = None  # a fixed shop category; None or "auto" reads it from the page
    max_pages: int = 10
    max_products: int = 200
    min_delay: float = 2.0
    product_pages: bool = True  # False: use listing tiles only
    selectors: Selectors = field(default_factory=Selectors)


@dataclass
class CrawlConfig:
    """The whole sources.yaml."""

    sources: list[SourceConfig]
    http: HttpConfig = field(default_factory=HttpConfig)
    images: ImageConfig = field(default_factory=ImageConfig)
    categories: Path = DEFAULT_CATEGORIES


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Coerce/validate one YAML value against a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        return _check_type(value, next(a for a in args if a is not type(None)), where)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item_tp,) = typing.get_args(tp)
        return [_check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path string")
        return Path(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from a YAML mapping, rejecting unknown keys, missing keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check_type(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    return cls(**kwargs)


def _validate(cfg: CrawlConfig, where: str) -> None:
    """Semantic checks the types alone can't express."""
    if not cfg.sources:
        raise ConfigError(f"{where}: 'sources' is empty")
    for name in ("connect_timeout", "read_timeout", "max_download_seconds"):
        if getattr(cfg.http, name) <= 0:
            raise ConfigError(f"{where}: http.{name} must be > 0")
    for name in ("retries", "max_redirects", "backoff", "max_retry_after", "max_crawl_delay"):
        if getattr(cfg.http, name) < 0:
            raise ConfigError(f"{where}: http.{name} must be >= 0")
    if cfg.images.min_side < 1 or cfg.images.max_per_product < 1:
        raise ConfigError(f"{where}: images.min_side and images.max_per_product must be >= 1")
    names = set()
    for i, src in enumerate(cfg.sources):
        at = f"{where}: sources[{i}] ({src.name})"
        if not src.name or src.name in names:
            raise ConfigError(f"{at}: source names must be non-empty and unique")
        names.add(src.name)
        if not src.start_urls:
            raise ConfigError(f"{at}: start_urls is empty")
        for url in src.start_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{at}: start URL {url!r} is not an http(s) URL")
        if not src.allowed_domains:
            src.allowed_domains = sorted({urlsplit(u).hostname or "" for u in src.start_urls})
        if src.max_pages < 1 or src.max_products < 0 or src.min_delay < 0:
            raise ConfigError(f"{at}: max_pages must be >= 1, max_products and min_delay >= 0")
        if src.category is not None and src.category.strip().lower() in ("", "auto"):
            src.category = None
        for key, selector in vars(src.selectors).items():
            if selector is None:
                continue
            try:
                soupsieve.compile(selector)
            except soupsieve.SelectorSyntaxError as exc:
                raise ConfigError(f"{at}: selectors.{key} is not a valid CSS selector: {exc.args[0]}") from exc


def load_config(path: str | Path) -> CrawlConfig:
    """Read sources.yaml into a CrawlConfig; any problem raises ConfigError with a one-line message."""
    path = Path(path)
    cfg = _build(CrawlConfig, read_yaml(path, ConfigError, "config"), str(path))
    if not cfg.categories.is_absolute():
        # A relative categories path is relative to the config file, so configs can live anywhere.
        candidate = path.resolve().parent / cfg.categories
        cfg.categories = candidate if candidate.exists() else cfg.categories
    _validate(cfg, str(path))
    return cfg
