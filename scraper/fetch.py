"""A polite HTTP client: robots.txt, per-host delays, urllib3 retries, bounded redirects and capped streaming bodies."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit

import requests
from bs4.dammit import EncodingDetector
from protego import Protego
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .config import HttpConfig

log = logging.getLogger(__name__)

# Transient statuses worth retrying; urllib3 honours Retry-After on 429 and 503 (capped by retry_after_max).
RETRY_STATUSES = (429, 500, 502, 503, 504)


class FetchError(Exception):
    """A request that produced nothing usable; `reason` is the short key failures are counted under."""

    def __init__(self, reason: str, url: str, detail: str = ""):
        super().__init__(f"{reason}: {url}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.url = url

    @property
    def transient(self) -> bool:
        """True when a later run might succeed (so the URL is not remembered as done)."""
        return self.reason in ("timeout", "connection_error", "retries_exhausted", "http_429",
                               "robots_unreachable") or \
            self.reason.startswith("http_5")


@dataclass
class Body:
    """A fetched response body and what the server said about it."""

    url: str  # after redirects
    status: int
    content_type: str
    data: bytes
    location: str | None = None  # a redirect's target (then data is empty): the caller decides whether to follow

    @property
    def text(self) -> str:
        """The body decoded as HTML text: charset from the header, else from the page's own <meta charset>, else
        UTF-8 (undecodable bytes replaced, an unknown charset falls back to UTF-8)."""
        charset = None
        for part in self.content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        charset = charset or EncodingDetector.find_declared_encoding(self.data, is_html=True) or "utf-8"
        try:
            return self.data.decode(charset, errors="replace")
        except (LookupError, UnicodeError):  # an unknown name, or a codec such as idna that cannot decode a page
            return self.data.decode("utf-8", errors="replace")


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL: the scope of robots.txt and of the per-host delay."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class _Host:
    """Per-origin politeness state."""

    robots: Protego | None = None
    robots_error: str | None = None  # why robots.txt could not be read: nothing on this host is fetched
    delay: float = 0.0
    last: float = field(default=-1e18)


class PoliteClient:
    """GETs pages and images one at a time, obeying robots.txt and a minimum delay per host."""

    def __init__(self, cfg: HttpConfig, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self._clock, self._sleep = clock, sleep
        self._hosts: dict[str, _Host] = {}
        self.default_delay = 0.0  # every host not seen yet starts with this delay (see set_default_delay)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": cfg.user_agent,
                                     "Accept-Language": "en;q=0.9, *;q=0.5"})
        retry = Retry(total=cfg.retries, connect=cfg.retries, read=cfg.retries, status=cfg.retries, other=0,
                      redirect=None, status_forcelist=RETRY_STATUSES, allowed_methods={"GET", "HEAD"},
                      backoff_factor=cfg.backoff, backoff_max=cfg.max_backoff,
                      respect_retry_after_header=True, retry_after_max=cfg.max_retry_after,
                      raise_on_status=False)  # the last 5xx response comes back and is counted as http_5xx
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def set_min_delay(self, url: str, seconds: float) -> None:
        """Ask for at least `seconds` between two requests to the origin of `url`."""
        host = self._host(url)
        host.delay = max(host.delay, seconds)

    def set_default_delay(self, seconds: float) -> None:
        """Ask for at least `seconds` between requests to every host met from now on: those a redirect or a link
        leads to (http -> https, shop.com -> www.shop.com) deserve the same courtesy as the configured ones."""
        self.default_delay = max(self.default_delay, seconds)

    def _host(self, url: str) -> _Host:
        origin = origin_of(url)
        if origin not in self._hosts:
            self._hosts[origin] = _Host(delay=self.default_delay)
        return self._hosts[origin]

    def _wait_turn(self, url: str) -> None:
        """Sleep until this origin's minimum delay since its last response has passed."""
        host = self._host(url)
        wait = host.last + host.delay - self._clock()
        if wait > 0:
            self._sleep(wait)

    def allowed(self, url: str) -> bool:
        """True when robots.txt of the URL's origin lets our User-Agent fetch it."""
        host = self._host(url)
        if host.robots is None:
            host.robots, host.robots_error = self._load_robots(origin_of(url))
            crawl_delay = host.robots.crawl_delay(self.cfg.user_agent)
            if crawl_delay:
                host.delay = max(host.delay, min(float(crawl_delay), self.cfg.max_crawl_delay))
        return host.robots.can_fetch(url, self.cfg.user_agent)

    def _load_robots(self, origin: str) -> tuple[Protego, str | None]:
        """Fetch and parse robots.txt with our session (our User-Agent, timeouts, retries); (rules, error).

        Protego, not urllib.robotparser: the latter ignores the `*` and `$` wildcards shops use (`Disallow:
        /*?sort=`) and takes the first matching rule instead of the longest one (RFC 9309)."""
        try:
            body = self._follow(origin + "/robots.txt", max_bytes=500_000, robots=False)
        except FetchError as exc:
            # RFC 9309: a missing robots.txt (4xx) means "no restrictions"; an unreachable one (5xx, network)
            # means "assume complete disallow". 401/403 are treated as disallow.
            if exc.reason.startswith("http_4") and exc.reason not in ("http_401", "http_403", "http_429"):
                return Protego.parse(""), None
            log.warning("robots.txt of %s unavailable (%s): not crawling this host", origin, exc.reason)
            return Protego.parse("User-agent: *\nDisallow: /"), exc.reason
        return Protego.parse(body.text), None

    def get_page(self, url: str, allow: Callable[[str], bool] | None = None) -> Body:
        """GET an HTML page (robots-checked at every redirect hop; with `allow`, a redirect to a URL it refuses is
        not followed: FetchError offsite_redirect); raises FetchError."""
        body = self._follow(url, max_bytes=self.cfg.max_page_bytes,
                            accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5", allow=allow)
        mime = body.content_type.split(";")[0].strip().lower()
        if mime and "html" not in mime and "xml" not in mime:
            raise FetchError("not_html", url, mime)
        return body

    def get_image(self, url: str) -> Body:
        """GET an image (robots-checked at every redirect hop, size-capped, content type checked); raises FetchError."""
        body = self._follow(url, max_bytes=self.cfg.max_image_bytes,
                            accept="image/webp,image/jpeg,image/png;q=0.9,image/*;q=0.5")
        mime = body.content_type.split(";")[0].strip().lower()
        # Some CDNs send octet-stream or nothing: Pillow decides then. Anything else that is not image/* is wrong.
        if mime and not mime.startswith("image/") and mime not in ("application/octet-stream", "binary/octet-stream"):
            raise FetchError("bad_content_type", url, mime)
        return body

    def _check_robots(self, url: str) -> None:
        if not self.allowed(url):
            error = self._host(url).robots_error
            # An unreadable robots.txt is worth another try on the next run; a Disallow is not.
            raise FetchError("robots_unreachable" if error else "robots_disallowed", url, error or "")

    def _follow(self, url: str, max_bytes: int, accept: str = "*/*", allow: Callable[[str], bool] | None = None,
                robots: bool = True) -> Body:
        """GET, following redirects one hop at a time (requests would follow them all unchecked): every hop waits
        its own host's turn and is robots-checked (unless fetching robots.txt itself) and, after the first, must
        pass `allow`."""
        start = url
        for hop in range(self.cfg.max_redirects + 1):
            if hop and allow is not None and not allow(url):
                raise FetchError("offsite_redirect", start, url)
            if robots:
                self._check_robots(url)
            body = self._get(url, max_bytes, accept)
            if body.location is None:
                return body
            url = urljoin(body.url, body.location)
        raise FetchError("too_many_redirects", start)

    def _get(self, url: str, max_bytes: int, accept: str = "*/*") -> Body:
        """One polite GET with retries; the body is streamed and abandoned beyond max_bytes or the time budget."""
        self._wait_turn(url)
        timeout = (self.cfg.connect_timeout, self.cfg.read_timeout)
        try:
            return self._get_now(url, max_bytes, accept, timeout)
        finally:
            # The delay counts from the end of a response, so a slow server gets more rest, not less.
            self._host(url).last = self._clock()

    def _get_now(self, url: str, max_bytes: int, accept: str, timeout: tuple[float, float]) -> Body:
        """The GET itself, with every requests/urllib3 failure mapped to a FetchError reason."""
        try:
            with self.session.get(url, stream=True, timeout=timeout, headers={"Accept": accept},
                                  allow_redirects=False) as resp:
                if resp.is_redirect:
                    return Body(resp.url, resp.status_code, resp.headers.get("Content-Type", ""), b"",
                                location=resp.headers["Location"])
                if resp.status_code >= 400:
                    raise FetchError(f"http_{resp.status_code}", url)
                declared = resp.headers.get("Content-Length", "")
                if declared.isdecimal() and int(declared) > max_bytes:
                    raise FetchError("too_large", url, f"Content-Length {declared} > {max_bytes}")
                data = self._read_capped(resp, url, max_bytes)
                return Body(resp.url, resp.status_code, resp.headers.get("Content-Type", ""), data)
        except requests.exceptions.RetryError as exc:
            raise FetchError("retries_exhausted", url, str(exc.args[0])[:120]) from exc
        except requests.Timeout as exc:
            raise FetchError("timeout", url) from exc
        except requests.ConnectionError as exc:
            # requests reports a read timeout that exhausted urllib3's retries as a ConnectionError.
            reason = "timeout" if "timed out" in str(exc).lower() else "connection_error"
            raise FetchError(reason, url) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise FetchError("bad_url", url) from exc
        except requests.RequestException as exc:
            raise FetchError("request_error", url, type(exc).__name__) from exc

    def _read_capped(self, resp: requests.Response, url: str, max_bytes: int) -> bytes:
        """Read a streamed body, stopping at max_bytes or max_download_seconds."""
        chunks, size = [], 0
        deadline = self._clock() + self.cfg.max_download_seconds
        for chunk in resp.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError("too_large", url, f"more than {max_bytes} bytes")
            if self._clock() > deadline:
                raise FetchError("timeout", url, "body took too long")
            chunks.append(chunk)
        return b"".join(chunks)
