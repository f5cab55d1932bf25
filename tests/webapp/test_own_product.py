"""Browser test of "Add your own product": a product page on 127.0.0.1 by URL, an uploaded photo, refused URLs."""
from __future__ import annotations

import io

import pytest

from core.localproc import free_port
from webapp import create_app
from webapp.catalogue import import_file
from webapp.db import get_db, init_db

from .shop_server import ShopServer, html, image, product_page
from .test_room_view import CHROMIUM, DESKTOP, PHONE, _axe_serious, _box_photo, _page, _serve, _shot, _wait_items
from .test_room_view import browser  # noqa: F401  (the module-scoped Chromium fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser test skipped: /usr/bin/chromium is not installed"),
]


def _jpeg(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture
def shop():
    """A shop on 127.0.0.1 whose product page states a 180 cm wide sofa, with a front and a turned picture."""
    routes: dict = {}
    with ShopServer(routes) as server:
        routes.update({
            "/p/klippan": html(product_page(server.base, width_cm=180)),
            "/img/sofa-main.jpg": image(_jpeg(_box_photo(180, 88, 66, 0))),
            "/img/sofa-side.jpg": image(_jpeg(_box_photo(180, 88, 66, 35))),
            "/img/other.jpg": image(_jpeg(_box_photo(60, 60, 90, 0))),
        })
        yield server


@pytest.fixture
def own_server(tmp_path, model_dir, rooms_dir, catalogue_manifest):
    """The app with the tiny test model, allowed (test-only) to fetch pages served on 127.0.0.1."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "db.sqlite"), "MODEL_DIR": str(model_dir),
                      "CACHE_DIR": str(tmp_path / "cache"), "ROOMS_DIR": str(rooms_dir), "MODEL_RETRY_SECONDS": 0.0,
                      "SHOPPER_DATABASE": str(tmp_path / "shopper.sqlite"), "SHOPPER_DIR": str(tmp_path / "shop"),
                      "FETCH_ALLOW_NETWORKS": ("127.0.0.1/32",), "FETCH_TOTAL_TIMEOUT": 4.0})
    with app.app_context():
        init_db()
        import_file(get_db(), catalogue_manifest)
    url, stop = _serve(app)
    yield url
    stop()


def _calibrate(page, px: int = 100, cm: float = 50) -> None:
    """Draw a `px` line on the stage and call it `cm` long (a known scale: px / cm pixels a cm)."""
    page.click("#btn-calibrate")
    page.locator("#stage").scroll_into_view_if_needed()
    stage = page.locator("#stage").bounding_box()  # after the click: it may have scrolled the page
    x0, y0 = stage["x"] + 30, stage["y"] + 30
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + px, y0, steps=6)
    page.mouse.up()
    page.fill("#calib-cm", str(cm))
    page.click("#calib-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('Scale set')")


@pytest.mark.parametrize("name, viewport, phone", [("desktop", DESKTOP, False), ("phone", PHONE, True)])
def test_add_your_product_by_url_and_by_photo(own_server, shop, browser, tmp_path, name, viewport, phone):
    errors: list[str] = []
    page = _page(browser, viewport, errors, phone=phone)
    page.goto(f"{own_server}/room?add=own")
    page.wait_for_function("() => document.getElementById('room-photo').naturalWidth > 0")
    assert page.locator("#own-panel").is_visible()  # the gallery's link opens the panel
    _calibrate(page)

    # A product page by URL: thumbnails of its pictures (not the related product's), then the chosen one in the room.
    page.fill("#own-url", shop.base + "/p/klippan")
    page.click("#own-fetch")
    page.wait_for_function("() => document.querySelectorAll('#own-pictures button').length > 0")
    assert page.locator("#own-pictures button").count() == 2
    assert "KLIPPAN Loveseat" in page.locator("#own-name").inner_text()
    assert "W 180" in page.locator("#own-size").inner_text()
    _shot(page, f"own-pictures-{name}")
    assert _axe_serious(page) == []
    page.locator("#own-pictures button").first.click()
    _wait_items(page, 1)
    item = page.locator(".item").first
    page.wait_for_function("() => document.querySelector('.item').dataset.productWidthPx")
    drawn_cm = float(item.get_attribute("data-product-width-px")) / 2.0  # calibrated at 2 px a cm
    assert drawn_cm == pytest.approx(180, rel=0.10)
    assert item.get_attribute("data-size") == "real"
    assert "size the shop states" in page.locator("#own-status").inner_text()
    item.scroll_into_view_if_needed()
    _shot(page, f"own-placed-{name}")

    # A refused and an unreachable URL: a clear message, and the room keeps what it had.
    for url, words in (("http://10.0.0.1/sofa", "only public web addresses"),
                       (f"http://127.0.0.1:{free_port()}/gone", "could not be reached")):
        page.fill("#own-url", url)
        page.click("#own-fetch")
        page.wait_for_function("() => document.getElementById('own-status').classList.contains('error')")
        status = page.locator("#own-status").inner_text()
        assert words in status and "Your room is unchanged" in status, status
        assert page.locator(".item").count() == 1
        page.evaluate("() => document.getElementById('own-status').classList.remove('error')")
    _shot(page, f"own-refused-{name}")

    # An uploaded photo with the width the shopper typed.
    photo = tmp_path / "my-chair.jpg"
    photo.write_bytes(_jpeg(_box_photo(60, 60, 90, 0)))
    page.set_input_files("#own-file", str(photo))
    page.fill("#own-width", "60")
    page.click("#own-upload")
    _wait_items(page, 2)
    chair = page.locator('.item[aria-label^="my-chair"]')
    page.wait_for_function("() => document.querySelector('.item[aria-label^=\"my-chair\"]').dataset.productWidthPx")
    assert "with the width you gave" in page.locator("#own-status").inner_text()
    assert float(chair.get_attribute("data-product-width-px")) / 2.0 == pytest.approx(60, rel=0.10)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    assert errors == [] or all("404" in e or "Failed to load" in e for e in errors), errors


def test_the_gallery_links_to_add_your_own_product(own_server, browser):
    errors: list[str] = []
    page = _page(browser, DESKTOP, errors)
    page.goto(own_server + "/")
    page.click("text=Add your own product")
    page.wait_for_url("**/room?add=own")
    assert page.locator("#own-panel").is_visible()
