"""Politeness and fault handling of the HTTP client, and image verification, in isolation."""
import io
import socket
import time

import pytest
from PIL import Image

from scraper.config import HttpConfig, ImageConfig
from scraper.fetch import Body, FetchError, PoliteClient
from scraper.images import ImageRejected, inspect_image
from scraper.storage import ImageStore

UA = "RoomFitBot-test/0.1"


def _client(**kw) -> PoliteClient:
    cfg = dict(user_agent=UA, connect_timeout=2, read_timeout=0.3, retries=2, backoff=0.01, max_retry_after=0.3)
    return PoliteClient(HttpConfig(**{**cfg, **kw}))


def _jpeg(size=(400, 300), color="white", **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", **save)
    return buf.getvalue()


def test_min_delay_per_host_and_user_agent(shop):
    client = _client()
    client.set_min_delay(shop.base, 0.15)
    for name in ("a", "b", "c"):
        client.get_image(f"{shop.base}/custom/media/{name}_400.jpg")
    times = [t for t, _ in shop.log]  # robots.txt, then the three images
    assert len(times) == 4 and all(b - a >= 0.14 for a, b in zip(times, times[1:]))
    assert shop.agents == {UA}


def test_robots_disallow_is_never_requested(shop):
    client = _client()
    with pytest.raises(FetchError) as err:
        client.get_page(f"{shop.base}/custom/outlet/bea-bed")
    assert err.value.reason == "robots_disallowed"
    assert shop.requested("/custom/outlet") == [] and shop.requested("/robots.txt") == ["/robots.txt"]
    client.get_page(f"{shop.base}/custom/shop/beds")
    assert shop.requested("/robots.txt") == ["/robots.txt"]  # cached per host


def test_robots_wildcards_and_redirect_hops_are_checked(shop):
    client = _client()
    with pytest.raises(FetchError) as err:  # `Disallow: /*?sort=` (urllib.robotparser let this through)
        client.get_page(f"{shop.base}/custom/shop/beds?sort=price")
    assert err.value.reason == "robots_disallowed"
    with pytest.raises(FetchError) as err:  # 302 into /custom/outlet/: the hop is checked before it is fetched
        client.get_image(f"{shop.base}/custom/go/clearance.jpg")
    assert err.value.reason == "robots_disallowed"
    assert shop.requested("/custom/shop/beds?sort") == [] and shop.requested("/custom/outlet") == []


def test_a_redirect_the_caller_refuses_is_not_followed(shop):
    with pytest.raises(FetchError) as err:  # /custom/go/partner redirects to another host name
        _client().get_page(f"{shop.base}/custom/go/partner", allow=lambda url: url.startswith(shop.base))
    assert err.value.reason == "offsite_redirect"
    assert shop.requested("/custom/shop/beds") == []  # the target was never downloaded


def test_default_delay_covers_hosts_not_configured(shop):
    client = _client()
    client.set_default_delay(0.15)  # no set_min_delay for this host: as if reached through a redirect
    for name in ("a", "b", "c"):
        client.get_image(f"{shop.base}/custom/media/{name}_400.jpg")
    times = [t for t, _ in shop.log]
    assert len(times) == 4 and all(b - a >= 0.14 for a, b in zip(times, times[1:]))


@pytest.mark.parametrize("content_type, data, expected", [
    ("text/html; charset=utf-8", "<h1>Stühle</h1>".encode(), "Stühle"),
    ("text/html", "<meta charset='iso-8859-1'><h1>Stühle</h1>".encode("latin-1"), "Stühle"),  # page's own charset
    ("text/html", "<h1>Stühle</h1>".encode(), "Stühle"),  # nothing declared: UTF-8
    ("text/html; charset=idna", b"<h1>x</h1>", "x"),  # a codec that cannot decode a page: UTF-8
    ("text/html; charset=no-such", b"<h1>x</h1>", "x"),
])
def test_body_text_charset(content_type, data, expected):
    assert expected in Body("http://x/", 200, content_type, data).text


def test_unreachable_host_means_disallow_all():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(FetchError) as err:
        _client().get_page(f"http://127.0.0.1:{port}/shop")
    # RFC 9309: robots.txt unreachable -> assume disallow; transient, so a later run tries again.
    assert err.value.reason == "robots_unreachable" and err.value.transient


def test_retry_after_is_honoured_but_bounded(shop):
    start = time.monotonic()
    page = _client().get_page(f"{shop.base}/woo/product/linen-armchair/")  # 429, Retry-After: 120, then 200
    assert "Linen Armchair" in page.text
    assert 0.28 <= time.monotonic() - start < 3


def test_500_exhausting_retries_is_counted(shop):
    client = _client(retries=0)
    with pytest.raises(FetchError) as err:
        client.get_page(f"{shop.base}/shopify/products/sofa-oslo")
    assert err.value.reason == "http_500" and err.value.transient
    assert "Oslo corner sofa" in client.get_page(f"{shop.base}/shopify/products/sofa-oslo").text


@pytest.mark.parametrize("path, cap, reason", [
    ("/magento/media/catalog/product/g/l/glass-vase-tall-poster.png", 1_000_000, "too_large"),  # streamed, no length
    ("/custom/media/luna-bed_1600.jpg", 1000, "too_large"),  # declared Content-Length over the cap
    ("/woo/product/oak-dining-chair/", 1_000_000, "bad_content_type"),  # a page where an image should be
    ("/custom/media/missing.jpg", 1_000_000, "http_404"),
])
def test_image_download_rejections(shop, path, cap, reason):
    with pytest.raises(FetchError) as err:
        _client(max_image_bytes=cap).get_image(shop.base + path)
    assert err.value.reason == reason


def test_redirect_loop_is_bounded(shop):
    with pytest.raises(FetchError) as err:
        _client(max_redirects=2).get_page(f"{shop.base}/woo/product/windsor-chair")
    assert err.value.reason == "too_many_redirects"
    assert len(shop.requested("/woo/product/windsor-chair")) == 3


CFG = ImageConfig(min_side=200)


@pytest.mark.parametrize("data, reason", [
    (b"<!doctype html><html><body>Not found</body></html>", "not_an_image"),
    (_jpeg((150, 400)), "too_small"),
    (_jpeg()[:400], "corrupt_image"),
    (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00"
     b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;", "unsupported_format"),
])
def test_inspect_rejects(data, reason):
    with pytest.raises(ImageRejected) as err:
        inspect_image(data, CFG)
    assert err.value.reason == reason


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_inspect_bomb_guard_and_broken_exif():
    with pytest.raises(ImageRejected, match="too_many_pixels"):
        inspect_image(_jpeg((4000, 3000)), ImageConfig(min_side=10, max_pixels=1_000_000))
    # An EXIF block that is garbage must not cost the photo.
    info = inspect_image(_jpeg(exif=b"Exif\x00\x00II*\x00\xff\xff\xff\xff"), CFG)
    assert (info.format, info.ext, info.width, info.height) == ("JPEG", ".jpg", 400, 300)


def test_inspect_turns_a_photo_with_a_malformed_exif_tag_upright(malformed_exif_jpeg):
    # exif_transpose raised struct.error here, which escaped the crawler and stopped every resumed crawl.
    info = inspect_image(malformed_exif_jpeg(Image.new("RGB", (400, 300), "white")), CFG)
    assert (info.width, info.height) == (300, 400)


def test_store_keeps_a_resize_once_but_not_a_crop(tmp_path, make_photo, monkeypatch):
    store = ImageStore(tmp_path, near_distance=4)
    crop = io.BytesIO()
    Image.open(io.BytesIO(make_photo("chair"))).crop((0, 0, 400, 600)).save(crop, "JPEG", quality=90)
    results = []
    for i, data in enumerate((make_photo("chair"), make_photo("chair", 400), crop.getvalue(), make_photo("sofa"),
                              make_photo("chair"))):
        info = inspect_image(data, ImageConfig(min_side=100))
        results.append(store.add(data, info, f"http://x/{i}.jpg", source="t").status)
    store.close()
    assert results == ["saved", "near_duplicate", "saved", "saved", "duplicate"]
    # A re-run takes the fingerprints from the resume log instead of decoding every kept image again...
    decoded = []
    monkeypatch.setattr("scraper.storage.phash_of", lambda im: decoded.append(im) or 0)
    ImageStore(tmp_path, near_distance=4).close()
    assert decoded == []
    monkeypatch.undo()
    # ...and hashes the files only for lines the log lacks (a kill between the two appends).
    log = tmp_path / "crawl_state.jsonl"
    log.write_text("".join(line for line in log.read_text().splitlines(True) if '"saved"' not in line))
    reopened = ImageStore(tmp_path, near_distance=4)
    info = inspect_image(make_photo("sofa", 600), ImageConfig(min_side=100))
    assert reopened.add(make_photo("sofa", 600), info, "http://x/9.jpg").status == "near_duplicate"
    assert reopened.image_seen("http://x/1.jpg") and reopened.image_seen("http://x/0.jpg")
    reopened.close()


def test_store_removes_temp_files_a_killed_run_left(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    stale = images / ".3f9a.jpg.k2j3h4.tmp"  # atomic_write_bytes' temp name, never renamed
    stale.write_bytes(b"half an image")
    kept = images / "3f9a.jpg"
    kept.write_bytes(b"a stored image")
    ImageStore(tmp_path, near_distance=4).close()
    assert not stale.exists() and kept.exists()
