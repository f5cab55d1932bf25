"""Browser test: Playwright driving Debian's headless Chromium with a fake camera against a live test server."""
from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser test skipped: /usr/bin/chromium is not installed "
                       "(apt-get install chromium; .ci/run does this)"),
]


@pytest.fixture
def live_server(app):
    """The test app served over HTTP on a free 127.0.0.1 port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def browser():
    """Headless Chromium (the system build: Playwright's own browser downloads are not used)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _new_page(browser, errors: list[str]):
    """A page that records console errors and uncaught exceptions (a CSP violation shows up here)."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900}, has_touch=True)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(10_000)
    return page


def _item(page, index: int = 0) -> dict:
    """The state an overlay exposes in data attributes."""
    return page.locator(".item").nth(index).evaluate(
        "el => ({x: +el.dataset.x, y: +el.dataset.y, w: +el.dataset.w, rot: +el.dataset.rot, flip: el.dataset.flip})")


def _drag(page, x0: float, y0: float, x1: float, y1: float) -> None:
    """Press, move in steps and release the mouse (pointer events)."""
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()


def _snapshot(page) -> Image.Image:
    """Click Snapshot and open the downloaded PNG."""
    with page.expect_download() as info:
        page.click("#btn-snapshot")
    download = info.value
    assert download.suggested_filename == "roomfit-snapshot.png"
    return Image.open(io.BytesIO(Path(download.path()).read_bytes()))


def test_gallery_to_room_with_camera_drag_resize_snapshot(live_server, browser):
    errors: list[str] = []
    page = _new_page(browser, errors)
    page.goto(live_server + "/")
    assert page.locator(".card").count() == 2
    with page.expect_navigation():
        page.select_option("#class-filter", "chair")  # gallery.js submits the filter on change
    assert "class=chair" in page.url
    cards = page.locator(".card")
    assert cards.count() == 2 and "Chair" in cards.first.inner_text()  # the shop's category

    cards.filter(has_text="BERNHARD").locator("a").click()
    page.wait_for_selector("#cutout")
    assert "Chair" in page.inner_text("#category")
    page.wait_for_function("() => document.getElementById('cutout').naturalWidth > 0")

    page.click("#view-in-room")
    page.wait_for_selector(".item")
    page.click("#btn-camera")
    page.wait_for_function("() => document.getElementById('camera').videoWidth > 0")
    assert "Camera on" in page.inner_text("#message")

    before = _item(page)
    box = page.locator(".item").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _drag(page, cx, cy, cx - 120, cy - 60)
    moved = _item(page)
    assert moved["x"] < before["x"] - 0.05 and moved["y"] < before["y"] - 0.02
    assert moved["w"] == pytest.approx(before["w"], abs=1e-3)

    handle = page.locator(".item .handle.resize").bounding_box()
    assert handle["width"] >= 44 and handle["height"] >= 44  # a fingertip's target
    hx, hy = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    _drag(page, hx, hy, hx + 80, hy - 80)  # the handle sits at the top right corner: away from the centre
    resized = _item(page)
    assert resized["w"] > moved["w"] * 1.2

    page.locator(".item").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("+")
    page.keyboard.press("f")
    keyed = _item(page)
    assert keyed["x"] > resized["x"] and keyed["w"] > resized["w"] and keyed["flip"] == "1"
    box = page.locator(".item").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -200)  # wheel over the item: bigger
    page.wait_for_function(f"() => +document.querySelector('.item').dataset.w > {keyed['w']}")

    # Two-finger pinch and twist through real touch events (Chromium turns them into pointer events).
    before_pinch = _item(page)
    cdp = page.context.new_cdp_session(page)

    def touch(kind, points):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]})

    touch("touchStart", [(cx - 30, cy), (cx + 30, cy)])
    for k in range(1, 7):
        touch("touchMove", [(cx - 30 - 5 * k, cy - 3 * k), (cx + 30 + 5 * k, cy + 3 * k)])
    touch("touchEnd", [])
    pinched = _item(page)
    assert pinched["w"] > before_pinch["w"] * 1.5 and pinched["rot"] > before_pinch["rot"] + 10

    video_size = page.evaluate("[document.getElementById('camera').videoWidth, document.getElementById('camera').videoHeight]")
    shot = _snapshot(page)
    assert shot.size == tuple(video_size) and shot.mode in ("RGB", "RGBA")
    assert np.asarray(shot.convert("L")).std() > 5  # a real picture, not a blank canvas
    assert errors == []


def test_room_photo_fallback_when_camera_refused_and_calibration(live_server, browser, tmp_path):
    errors: list[str] = []
    page = _new_page(browser, errors)
    # Simulate a user who refuses camera permission.
    page.add_init_script("""navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));""")
    sofa = page.request.get(live_server + "/api/products?q=STOCKSUND").json()["products"][0]
    page.goto(f"{live_server}/room?product={sofa['id']}")
    page.wait_for_selector(".item")
    page.click("#btn-camera")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('refused')")
    assert page.locator("#message.error").count() == 1

    room = tmp_path / "my-room.png"
    Image.new("RGB", (640, 400), (200, 180, 150)).save(room)
    page.set_input_files("#room-file", str(room))
    page.wait_for_function("() => document.getElementById('room-photo').naturalWidth === 640")

    # Calibrate: a 200 px line is 100 cm, so the 200 cm wide sofa must become 400 px wide.
    stage = page.locator("#stage").bounding_box()
    page.click("#btn-calibrate")
    _drag(page, stage["x"] + 50, stage["y"] + 50, stage["x"] + 250, stage["y"] + 50)
    page.fill("#calib-cm", "100")
    page.click("#calib-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('Scale set')")
    state = _item(page)
    # The product's own width (the cut-out's crop margin left out).
    width = float(page.locator(".item").first.get_attribute("data-product-width-px"))
    assert width == pytest.approx(400, rel=0.02)
    assert page.locator(".item").first.get_attribute("data-size") == "real"

    chair = page.request.get(live_server + "/api/products?q=BERNHARD").json()["products"][0]
    page.click("#btn-add")  # several products at once, from the picker's thumbnails
    page.click(f".pick[data-product-id='{chair['id']}']")
    page.wait_for_function("() => document.querySelectorAll('.item').length === 2")

    shot = _snapshot(page)
    assert shot.size == (640, 400)
    pixels = np.asarray(shot.convert("RGB")).astype(int)
    assert tuple(pixels[5, 5]) == pytest.approx((200, 180, 150), abs=3)  # the room photo
    cx, cy = int(state["x"] * 640), int(state["y"] * 400)
    assert pixels[cy, cx].sum() < 150  # the dark product cut-out is composed over it
    assert errors == []


def test_upload_that_is_not_an_image_keeps_the_camera_or_room(live_server, browser, tmp_path):
    errors: list[str] = []
    page = _new_page(browser, errors)
    chair = page.request.get(live_server + "/api/products?q=BERNHARD").json()["products"][0]
    page.goto(f"{live_server}/room?product={chair['id']}")
    page.wait_for_selector(".item")
    page.click("#btn-camera")
    page.wait_for_function("() => document.getElementById('camera').videoWidth > 0")
    not_an_image = tmp_path / "room.jpg"
    not_an_image.write_text("a text file with a photo's name")
    camera_live = """() => { const v = document.getElementById('camera');
        return !v.hidden && v.srcObject.getVideoTracks()[0].readyState === 'live'; }"""

    page.set_input_files("#room-file", str(not_an_image))
    page.wait_for_function("() => document.getElementById('message').textContent.includes('could not be opened')")
    assert page.locator("#message.error").count() == 1
    assert page.evaluate(camera_live), "the camera keeps running"
    assert page.input_value("#room-file") == "", "reset, so picking the same file again fires change again"

    page.locator(".room-thumb").nth(1).click()
    page.wait_for_function("() => document.getElementById('message').textContent === 'Sample room 2.'")
    assert not page.evaluate(camera_live)
    page.set_input_files("#room-file", str(not_an_image))  # the same file again
    page.wait_for_function("() => document.getElementById('message').textContent.includes('could not be opened')")
    photo = page.locator("#room-photo")
    assert photo.is_visible() and photo.get_attribute("src").endswith("/rooms/room1.jpg")
    shot = _snapshot(page)
    assert shot.size == (640, 400)
    assert tuple(np.asarray(shot.convert("RGB"))[5, 5]) == pytest.approx((150, 170, 190), abs=3)  # sample room 2
    assert errors == []
