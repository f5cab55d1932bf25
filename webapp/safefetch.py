"""Fetch a URL a shopper typed without letting it reach inside our network (server-side request forgery).

Every hop: http/https only, no credentials in the URL, the host resolved once and every address checked (loopback,
private, link-local incl. 169.254.169.254, multicast, reserved, shared, IPv6 unique-local/link-local and IPv4-mapped
forms refused), then the connection made to that checked address (TLS still verifies the host name), so a second DNS
answer cannot rebind it. Redirects are followed by hand, each hop checked the same way, at most `max_redirects`.
Connect, read and total time and the body size are capped; no cookies or credentials are ever sent.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

import urllib3

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
USER_AGENT = "RoomFitBot/1.0 (+https://github.com/roomfit; fetches one product page a shopper asked for)"


class FetchRefused(Exception):
    """A URL we will not fetch, or a fetch that failed; `code` is the API error code, the message says why."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class FetchConfig:
    """Limits of one fetch (a page or a picture)."""

    connect_timeout: float = 4.0
    read_timeout: float = 6.0
    total_timeout: float = 12.0
    max_bytes: int = 4 * 1024 * 1024
    max_redirects: int = 4
    # Networks that may be fetched although not public: empty in production; tests put 127.0.0.1/32 here.
    allow_networks: tuple[str, ...] = ()


@dataclass
class Fetched:
    """A fetched body with the final URL (after redirects) and its content type."""

    url: str
    content_type: str
    body: bytes
    hops: list[str] = field(default_factory=list)


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for host (one lookup per hop; we connect to one we checked)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRefused("unreachable_url", f"the host {host!r} could not be found") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, in any form a resolver accepts: dotted, decimal (2130706433), octal
    (0177.0.0.1), hex (0x7f.1) or IPv6 in brackets; None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))  # the BSD forms that getaddrinfo also accepts
    except (OSError, UnicodeError, ValueError):
        return None


def refusal_reason(ip: IPAddress, allow: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> str | None:
    """Why an address may not be fetched (None: it is a public unicast address, or explicitly allowed)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in net for net in allow):
        return None
    for test, what in ((ip.is_loopback, "a loopback"), (ip.is_link_local, "a link-local"),
                       (ip.is_private, "a private"), (ip.is_multicast, "a multicast"),
                       (ip.is_reserved, "a reserved"), (ip.is_unspecified, "an unspecified")):
        if test:
            return f"{what} address"
    if not ip.is_global:
        return "a non-public address"
    return None


class SafeFetcher:
    """Fetch pages and pictures for the product intake; one per app, thread-safe (no shared connection state)."""

    def __init__(self, cfg: FetchConfig, resolver: Resolver | None = None) -> None:
        self.cfg = cfg
        self.resolver = resolver or system_resolver
        self.allow = tuple(ipaddress.ip_network(n, strict=False) for n in cfg.allow_networks)

    def check_url(self, url: str) -> tuple[str, str, int, str]:
        """Validate a URL and resolve its host to one checked address: (scheme, host, port, address)."""
        if len(url) > 2048:
            raise FetchRefused("invalid_url", "the URL is longer than 2048 characters")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise FetchRefused("invalid_url", f"the URL is malformed ({exc})") from exc
        if parts.scheme not in ("http", "https"):
            raise FetchRefused("invalid_url", "only http:// and https:// URLs can be fetched")
        if parts.username is not None or parts.password is not None:
            raise FetchRefused("invalid_url", "URLs with a user name or password are not fetched")
        host = parts.hostname
        if not host:
            raise FetchRefused("invalid_url", "the URL has no host")
        port = port or (443 if parts.scheme == "https" else 80)
        literal = literal_ip(host)
        addresses = [str(literal)] if literal is not None else self.resolver(host, port)
        if not addresses:
            raise FetchRefused("unreachable_url", f"the host {host!r} could not be found")
        for address in addresses:  # every answer, so a mixed public/private answer cannot slip through
            reason = refusal_reason(ipaddress.ip_address(address.split("%")[0]), self.allow)
            if reason:
                raise FetchRefused("url_not_allowed",
                                   f"{host} points to {reason}; only public web addresses can be fetched")
        return parts.scheme, host, port, addresses[0]

    def fetch(self, url: str, accept: str) -> Fetched:
        """GET url following checked redirects; the body is capped in bytes and time."""
        deadline = time.monotonic() + self.cfg.total_timeout
        hops: list[str] = []
        for _ in range(self.cfg.max_redirects + 1):
            scheme, host, port, address = self.check_url(url)
            hops.append(url)
            response = self._request(scheme, host, port, address, url, accept, deadline)
            try:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchRefused("fetch_failed", f"{host} answered a redirect without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchRefused("fetch_failed", f"{host} answered HTTP {response.status}", 502)
                body = self._read_capped(response, deadline)
                return Fetched(url, response.headers.get("Content-Type", ""), body, hops)
            finally:
                response.release_conn()
                response.close()
        raise FetchRefused("fetch_failed", f"more than {self.cfg.max_redirects} redirects")

    def _request(self, scheme: str, host: str, port: int, address: str, url: str, accept: str,
                 deadline: float) -> urllib3.BaseHTTPResponse:
        """One request to the checked address, with the original host in the Host header and for TLS."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchRefused("fetch_timeout", "the page took too long to answer", 504)
        timeout = urllib3.Timeout(connect=min(self.cfg.connect_timeout, left), read=min(self.cfg.read_timeout, left))
        target = urlsplit(url)
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        host_header = host if port in (80, 443) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if port in (80, 443) else f"[{host}]:{port}"
        kwargs = {"timeout": timeout, "retries": False, "maxsize": 1}
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(address, port, server_hostname=host, assert_hostname=host,
                                               cert_reqs="CERT_REQUIRED", **kwargs)
        else:
            pool = urllib3.HTTPConnectionPool(address, port, **kwargs)
        try:
            return pool.urlopen("GET", path, headers={"Host": host_header, "User-Agent": USER_AGENT,
                                                      "Accept": accept, "Accept-Encoding": "gzip, deflate"},
                                redirect=False, preload_content=False, assert_same_host=False)
        except urllib3.exceptions.NewConnectionError as exc:  # before TimeoutError: urllib3 makes it a subclass
            raise FetchRefused("fetch_failed", f"{host} could not be reached", 502) from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise FetchRefused("fetch_timeout", f"{host} took too long to answer", 504) from exc
        except urllib3.exceptions.SSLError as exc:
            raise FetchRefused("fetch_failed", f"{host}'s TLS certificate could not be verified", 502) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise FetchRefused("fetch_failed", f"{host} could not be reached", 502) from exc
        finally:
            pool.close()

    def _read_capped(self, response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        """The decoded body, refused past max_bytes or the deadline (checked between chunks)."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.cfg.max_bytes:
            raise FetchRefused("fetch_too_large", f"the answer is larger than {self.cfg.max_bytes // 1024} kB", 413)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.stream(64 * 1024, decode_content=True):
                size += len(chunk)
                if size > self.cfg.max_bytes:
                    raise FetchRefused("fetch_too_large",
                                       f"the answer is larger than {self.cfg.max_bytes // 1024} kB", 413)
                if time.monotonic() > deadline:
                    raise FetchRefused("fetch_timeout", "the answer took too long to arrive", 504)
                chunks.append(chunk)
        except urllib3.exceptions.TimeoutError as exc:
            raise FetchRefused("fetch_timeout", "the answer took too long to arrive", 504) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise FetchRefused("fetch_failed", f"the answer broke off ({type(exc).__name__})", 502) from exc
        return b"".join(chunks)
