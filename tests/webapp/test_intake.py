"""Bring your own product: the SSRF guard (offline resolver stub), the intake API end to end on 127.0.0.1, privacy."""
from __future__ import annotations

import io
import ipaddress
import sqlite3

import pytest
from PIL import Image

from webapp.safefetch import FetchConfig, FetchRefused, SafeFetcher, literal_ip

from .shop_server import ShopServer, html, image, product_page, product_photo, redirect, slow

LOCAL = ("127.0.0.1/32",)  # the test-only allowlist: pages served by these tests


def stub_resolver(table: dict[str, list[str]]):
    """An offline resolver: host -> addresses, counting the lookups."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise FetchRefused("unreachable_url", f"the host {host!r} could not be found")
        return table[host]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize("url, code", [
    ("http://internal.shop.test/p/1", "url_not_allowed"),   # a DNS name resolving to 127.0.0.1
    ("http://intranet.shop.test/", "url_not_allowed"),      # ... to 10.x
    ("http://mixed.shop.test/", "url_not_allowed"),         # one public, one private answer
    ("http://metadata.shop.test/", "url_not_allowed"),      # ... to 169.254.169.254
    ("http://169.254.169.254/latest/meta-data/", "url_not_allowed"),
    ("http://[::1]/", "url_not_allowed"),
    ("http://[fd12:3456::1]/", "url_not_allowed"),           # IPv6 unique-local
    ("http://[fe80::1]/", "url_not_allowed"),                # IPv6 link-local
    ("http://[::ffff:127.0.0.1]/", "url_not_allowed"),       # IPv4-mapped loopback
    ("http://2130706433/", "url_not_allowed"),               # decimal 127.0.0.1
    ("http://0177.0.0.1/", "url_not_allowed"),               # octal 127.0.0.1
    ("http://0x7f.1/", "url_not_allowed"),                   # hex, short form
    ("http://0/", "url_not_allowed"),                        # 0.0.0.0
    ("http://224.0.0.1/", "url_not_allowed"),                # multicast
    ("http://240.0.0.1/", "url_not_allowed"),                # reserved
    ("http://100.64.0.1/", "url_not_allowed"),               # carrier-grade NAT (shared)
    ("http://192.168.1.1:8080/admin", "url_not_allowed"),
    ("ftp://shop.test/file", "invalid_url"),
    ("file:///etc/passwd", "invalid_url"),
    ("javascript:alert(1)", "invalid_url"),
    ("http://user:secret@public.shop.test/", "invalid_url"),
    ("http:///nohost", "invalid_url"),
    ("http://nowhere.shop.test/", "unreachable_url"),
])
def test_refusals(url, code):
    resolver = stub_resolver({"internal.shop.test": ["127.0.0.1"], "intranet.shop.test": ["10.1.2.3"],
                              "mixed.shop.test": ["93.184.216.34", "192.168.0.10"],
                              "metadata.shop.test": ["169.254.169.254"], "public.shop.test": ["93.184.216.34"]})
    with pytest.raises(FetchRefused) as info:
        SafeFetcher(FetchConfig(), resolver).check_url(url)
    assert info.value.code == code
    assert info.value.message and "Traceback" not in info.value.message


def test_a_public_address_passes_and_is_the_one_connected_to():
    resolver = stub_resolver({"shop.test": ["93.184.216.34"]})
    scheme, host, port, address = SafeFetcher(FetchConfig(), resolver).check_url("https://shop.test/p/1")
    assert (scheme, host, port, address) == ("https", "shop.test", 443, "93.184.216.34")
    assert literal_ip("0177.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_ip("shop.test") is None


def test_one_lookup_per_hop_and_the_checked_address_is_used(tmp_path):
    # shop.test resolves to the test server once; a second lookup (rebinding) would answer 10.0.0.1.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    calls = []

    def rebinding(host, port):
        calls.append(host)
        return next(answers)

    with ShopServer({"/p": html(b"<html><h1>ok</h1></html>")}) as shop:
        got = SafeFetcher(FetchConfig(allow_networks=LOCAL), rebinding).fetch(f"http://shop.test:{shop.port}/p", "*/*")
    assert got.body.startswith(b"<html>") and calls == ["shop.test"]
    assert shop.hosts == [f"shop.test:{shop.port}"]  # connected to 127.0.0.1, asked for the shop by name


def test_every_redirect_hop_is_checked():
    resolver = stub_resolver({"intranet.shop.test": ["10.0.0.7"]})
    routes = {"/to-private": redirect("http://intranet.shop.test/admin"), "/to-loopback": redirect("http://[::1]/"),
              "/to-metadata": redirect("http://169.254.169.254/latest/"), "/loop": redirect("/loop")}
    with ShopServer(routes) as shop:
        fetcher = SafeFetcher(FetchConfig(allow_networks=LOCAL), resolver)
        for path in ("/to-private", "/to-loopback", "/to-metadata"):
            with pytest.raises(FetchRefused) as info:
                fetcher.fetch(shop.base + path, "*/*")
            assert info.value.code == "url_not_allowed", path
        with pytest.raises(FetchRefused, match="redirects"):
            fetcher.fetch(shop.base + "/loop", "*/*")


def test_size_and_time_caps():
    big = b"x" * (300 * 1024)
    routes = {"/big": html(big), "/slow": slow(2.0),
              "/big-undeclared": lambda h: (200, {"Content-Type": "text/html", "Content-Length": str(len(big))}, big)}
    with ShopServer(routes) as shop:
        fetcher = SafeFetcher(FetchConfig(max_bytes=100 * 1024, total_timeout=1.0, read_timeout=0.5,
                                          allow_networks=LOCAL))
        with pytest.raises(FetchRefused) as info:
            fetcher.fetch(shop.base + "/big", "*/*")
        assert info.value.code == "fetch_too_large"
        with pytest.raises(FetchRefused) as info:
            fetcher.fetch(shop.base + "/slow", "*/*")
        assert info.value.code == "fetch_timeout"


def test_no_cookies_or_credentials_are_sent():
    seen = {}

    def record(h):
        seen.update({k.lower(): v for k, v in h.headers.items()})
        return 200, {"Content-Type": "text/html", "Set-Cookie": "s=1"}, b"<html></html>"

    with ShopServer({"/a": record, "/b": record}) as shop:
        fetcher = SafeFetcher(FetchConfig(allow_networks=LOCAL))
        fetcher.fetch(shop.base + "/a", "*/*")
        fetcher.fetch(shop.base + "/b", "*/*")
    assert "cookie" not in seen and "authorization" not in seen and "RoomFitBot" in seen["user-agent"]


# ---------------------------------------------------------------- the intake API, end to end on 127.0.0.1


@pytest.fixture
def shop():
    routes: dict = {}
    with ShopServer(routes) as server:
        routes.update({
            "/p/klippan": html(product_page(server.base)),
            "/img/sofa-main.jpg": image(product_photo((600, 400))),
            "/img/sofa-side.jpg": image(product_photo((500, 400))),
            "/img/other.jpg": image(product_photo((300, 300))),
            "/p/no-pictures": html(b"<html><h1>Empty</h1><p>Nothing to see</p></html>"),
            "/file.pdf": lambda h: (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4"),
            "/go": redirect("/p/klippan", 301),
        })
        yield server


@pytest.fixture
def intake_client(make_app):
    return make_app(FETCH_ALLOW_NETWORKS=LOCAL).test_client()


def test_a_product_page_url_becomes_a_private_product_with_its_pictures_and_size(intake_client, shop):
    r = intake_client.post("/api/intake", json={"url": shop.base + "/go"})
    assert r.status_code == 201, r.get_json()
    product = r.get_json()["product"]
    assert product["title"] == "KLIPPAN Loveseat"
    assert product["dimensions"]["width_cm"] == 180 and product["size_known"] is True
    assert product["source_url"] == shop.base + "/p/klippan"
    assert len(product["id"]) >= 20
    sizes = sorted((p["width"], p["height"]) for p in product["pictures"])
    assert sizes == [(500, 400), (600, 400)]  # the gallery's two pictures; not the related product's
    thumb = intake_client.get(product["pictures"][0]["url"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    cut = intake_client.get(product["pictures"][0]["cutout_url"])
    assert cut.status_code == 200 and cut.mimetype == "image/png"
    assert Image.open(io.BytesIO(cut.data)).mode == "RGBA"
    again = intake_client.get(f"/api/intake/{product['id']}")
    assert again.get_json()["product"]["pictures"] == product["pictures"]
    # Private: not in the catalogue, not listed anywhere.
    listing = intake_client.get("/api/products?per_page=100").get_json()
    assert all(p["name"] != "KLIPPAN Loveseat" for p in listing["products"])


def test_an_upload_becomes_a_product_with_the_typed_width(intake_client):
    r = intake_client.post("/api/intake", data={"image": (io.BytesIO(product_photo()), "my-chair.jpg"),
                                                "width_cm": "55"})
    assert r.status_code == 201
    product = r.get_json()["product"]
    assert product["title"] == "my-chair" and product["dimensions"]["width_cm"] == 55
    assert len(product["pictures"]) == 1
    no_size = intake_client.post("/api/intake", data={"image": (io.BytesIO(product_photo()), "x.jpg")})
    assert no_size.get_json()["product"]["size_known"] is False


@pytest.mark.parametrize("payload, status, code", [
    ({"json": {"url": "http://10.0.0.1/p"}}, 400, "url_not_allowed"),
    ({"json": {"url": "gopher://shop/"}}, 400, "invalid_url"),
    ({"json": {"url": 5}}, 400, "invalid_parameter"),
    ({"json": ["http://x"]}, 400, "invalid_json"),
    ({"data": {"image": (io.BytesIO(b"not an image"), "x.jpg")}}, 400, "invalid_image"),
    ({"data": {"image": (io.BytesIO(product_photo((60, 60))), "x.jpg")}}, 422, "image_too_small"),
    ({"data": {"image": (io.BytesIO(product_photo()), "x.jpg"), "width_cm": "wide"}}, 400, "invalid_parameter"),
    ({"data": {}}, 400, "missing_field"),
])
def test_bad_intakes_are_clear_json_errors(intake_client, payload, status, code):
    r = intake_client.post("/api/intake", **payload)
    assert r.status_code == status
    body = r.get_json()
    assert body["success"] is False and body["error"]["code"] == code and body["error"]["message"]


def test_pages_that_are_not_products_and_failed_fetches_lose_nothing(intake_client, shop):
    kept = intake_client.post("/api/intake", json={"url": shop.base + "/p/klippan"}).get_json()["product"]
    for path, code in (("/p/no-pictures", "no_pictures"), ("/file.pdf", "not_html"), ("/missing", "fetch_failed")):
        r = intake_client.post("/api/intake", json={"url": shop.base + path})
        assert r.get_json()["error"]["code"] == code, path
    assert intake_client.get(f"/api/intake/{kept['id']}").status_code == 200


def test_unknown_deleted_and_expired_products_are_404(make_app, shop, tmp_path):
    client = make_app(FETCH_ALLOW_NETWORKS=LOCAL, INTAKE_TTL_HOURS=-1).test_client()  # expires at once
    r = client.post("/api/intake", data={"image": (io.BytesIO(product_photo()), "x.jpg")})
    assert client.get(f"/api/intake/{r.get_json()['product']['id']}").status_code == 404
    live = make_app(FETCH_ALLOW_NETWORKS=LOCAL).test_client()
    pid = live.post("/api/intake", data={"image": (io.BytesIO(product_photo()), "x.jpg")}).get_json()["product"]["id"]
    assert live.delete(f"/api/intake/{pid}").status_code == 200
    assert not list((tmp_path / "shopper").glob("*.jpg"))  # the shopper's picture went with it
    assert live.get(f"/api/intake/{pid}").status_code == 404
    assert live.get("/api/intake/../../etc").status_code == 404
    assert live.get("/api/intake/AAAAAAAAAAAAAAAAAAAAAA").get_json()["error"]["code"] == "not_found"


def test_expired_products_and_their_pictures_are_purged(make_app, tmp_path):
    import os

    client = make_app(INTAKE_TTL_HOURS=-1).test_client()
    client.post("/api/intake", data={"image": (io.BytesIO(product_photo()), "x.jpg")})
    for old in (tmp_path / "shopper").glob("*.jpg"):  # stored an hour ago: past the grace for in-flight intakes
        os.utime(old, (old.stat().st_atime - 3600, old.stat().st_mtime - 3600))
    client.post("/api/intake", data={"image": (io.BytesIO(product_photo((300, 200))), "y.jpg")})  # purges the first
    db = sqlite3.connect(tmp_path / "shopper.sqlite")
    assert db.execute("SELECT count(*) FROM shopper_product").fetchone()[0] == 1
    assert len(list((tmp_path / "shopper").glob("*.jpg"))) == 1


def test_intake_is_rate_limited_per_client(make_app):
    client = make_app(RATELIMIT_ENABLED=True, INTAKE_RATELIMIT_BURST=2, INTAKE_RATELIMIT_PER_MINUTE=1).test_client()
    codes = [client.post("/api/intake", json={"url": "http://10.0.0.1/"}).status_code for _ in range(3)]
    assert codes[:2] == [400, 400] and codes[2] == 429


def test_the_allowlist_is_refused_outside_tests(make_app, monkeypatch):
    from webapp import create_app

    with pytest.raises(RuntimeError, match="test-only"):
        create_app({"TESTING": False, "SECRET_KEY": "x", "FETCH_ALLOW_NETWORKS": LOCAL})


def test_app_start_leaves_the_extraction_stack_unloaded(tmp_path):
    """extruct (rdflib, html5lib), lxml and BeautifulSoup cost ~19 MB a worker; only "add by URL" imports them."""
    import subprocess
    import sys

    code = ("import sys; from webapp import create_app; d = sys.argv[1]; "
            "create_app({'TESTING': True, 'DATABASE': d + '/c.sqlite', 'SHOPPER_DATABASE': d + '/s.sqlite', "
            "'CACHE_DIR': d + '/cache', 'SHOPPER_DIR': d + '/pictures'}); "
            "print(sorted(m for m in ('core.extract', 'extruct', 'lxml', 'bs4') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
