"""The room view as a shopper uses it, in headless Chromium at 1280×800 and 390×844 (issue 19's checks).

- phone layout: the room picture fills ≥ 60% of the viewport height, every visible control is ≥ 44×44 px, no page
  scrolls sideways, and axe-core finds no serious or critical accessibility violation (desktop too);
- see-through cut-outs: the demo catalogue's wicker sofa, slatted chair, glass vase and wine glass, cut out by the
  shipped model, show the room through their openings in the snapshot;
- true size: products with stated dimensions appear within 10% of their true width at a known calibration, in a
  front view and a three-quarter view.

Screenshots of the key states go to build/screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.matting import components
from webapp import create_app
from webapp.catalogue import import_file
from webapp.db import get_db, init_db

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream"]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SHOTS = ROOT / "build" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
ROOM_COLOUR = (46, 120, 170)  # a blue wall: far from the studio white that must not show

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser test skipped: /usr/bin/chromium is not installed"),
]


def _serve(app):
    """Serve app over HTTP on a free 127.0.0.1 port; returns (url, stop)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(5)
    return f"http://127.0.0.1:{server.server_port}", stop


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The shipped model and demo catalogue (what `make run` shows), served live."""
    if not (ROOT / "models" / "model.json").is_file():
        pytest.skip("no shipped model in models/")
    tmp = tmp_path_factory.mktemp("demo")
    app = create_app({"TESTING": True, "DATABASE": str(tmp / "demo.sqlite"), "MODEL_DIR": str(ROOT / "models"),
                      "CACHE_DIR": str(tmp / "cache"), "ROOMS_DIR": str(ROOT / "data" / "demo" / "rooms"),
                      "PAGE_SIZE": 24, "MODEL_RETRY_SECONDS": 0.0})
    with app.app_context():
        init_db()
        import_file(get_db(), ROOT / "data" / "demo" / "catalogue.jsonl")
    url, stop = _serve(app)
    yield url
    stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the system build)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser, viewport: dict, errors: list[str], *, phone: bool = False):
    """A page (a phone: touch, mobile viewport) that records console errors and uncaught exceptions."""
    context = browser.new_context(viewport=viewport, accept_downloads=True, has_touch=phone, is_mobile=phone,
                                  device_scale_factor=1)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(20_000)
    return page


def _shot(page, name: str) -> None:
    """Save a screenshot of the viewport for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _product(url: str, page, query: str) -> dict:
    """The API's product record for a name search with one hit."""
    products = page.request.get(f"{url}/api/products", params={"q": query}).json()["products"]
    assert len(products) == 1, (query, [p["name"] for p in products])
    return products[0]


def _horizontal_overflow(page) -> tuple[int, list[str]]:
    """How many CSS px the page is wider than the viewport (0: no sideways scrolling), and what sticks out."""
    return page.evaluate("""() => { const vw = document.documentElement.clientWidth;
      return [document.documentElement.scrollWidth - vw, [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > vw + 0.5)
        .map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 5)]; }""")


def _small_controls(page) -> list[str]:
    """Visible controls smaller than 44×44 px (buttons, links styled or placed as controls, inputs, selects)."""
    return page.evaluate("""() => [...document.querySelectorAll(
        'button, select, input:not([type=hidden]):not(.visually-hidden), .button, nav a, .card a, .pager a, .crumbs a, .item .handle')]
      .filter(el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                      return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'; })
      .map(el => { const r = el.getBoundingClientRect();
                   return [el.id || el.className || el.tagName, Math.round(r.width), Math.round(r.height)]; })
      .filter(([, w, h]) => w < 44 || h < 44).map(x => x.join(' '))""")


def _smallest_control(page) -> tuple[float, float]:
    """The smallest width and height among the visible controls."""
    return tuple(page.evaluate("""() => { const rs = [...document.querySelectorAll(
        'button, select, input:not([type=hidden]):not(.visually-hidden), .button, nav a')]
      .map(el => el.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0);
      return [Math.min(...rs.map(r => r.width)), Math.min(...rs.map(r => r.height))]; }"""))


def _axe_serious(page) -> list[str]:
    """axe-core's serious and critical violations on the page (WCAG 2.x A/AA rules and best practices)."""
    # Evaluated through the DevTools protocol: the app's CSP (script-src 'self') rightly refuses an injected tag.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} -- {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _stage_share(page, viewport: dict) -> float:
    """The room picture's (stage's) height as a share of the viewport height."""
    return page.locator("#stage").bounding_box()["height"] / viewport["height"]


def _wait_items(page, n: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('.item').length === {n}")


@pytest.mark.parametrize("name, viewport, phone", [("phone", PHONE, True), ("desktop", DESKTOP, False)])
def test_pages_fit_the_screen_with_touch_sized_controls_and_no_serious_axe_violations(demo_server, browser, name,
                                                                                       viewport, phone):
    errors: list[str] = []
    page = _page(browser, viewport, errors, phone=phone)
    sofa = _product(demo_server, page, "KUNGSHOLMEN")
    measured = {}

    page.goto(demo_server + "/")
    page.wait_for_selector(".card img")
    _shot(page, f"{name}-gallery")
    columns = page.evaluate("getComputedStyle(document.getElementById('products')).gridTemplateColumns.split(' ').length")
    if phone:
        assert columns == 2
    page.select_option("#class-filter", "couch")  # filters as soon as it is chosen
    page.wait_for_url("**class=couch**")
    pages = {"gallery": page.url}

    page.goto(f"{demo_server}/products/{sofa['id']}")
    page.wait_for_function("() => document.getElementById('cutout').naturalWidth > 0")
    assert "%" not in page.inner_text("main")  # no model confidence for shoppers
    assert page.inner_text("#category") == "2-seat sofa, outdoor"
    cta = page.locator("#view-in-room").bounding_box()
    assert cta["y"] + cta["height"] <= viewport["height"], "View in your room is above the fold"
    _shot(page, f"{name}-product")
    pages["product"] = page.url

    page.goto(f"{demo_server}/room?product={sofa['id']}")
    _wait_items(page, 1)
    page.wait_for_function("() => document.getElementById('room-photo').naturalWidth > 0")
    page.locator(".item").first.focus()  # selected: its handles and the product buttons show
    measured["stage_share"] = _stage_share(page, viewport)
    if phone:
        assert measured["stage_share"] >= 0.6
        stage = page.locator("#stage").bounding_box()
        assert stage["width"] == pytest.approx(viewport["width"], abs=1), "full-width stage"
        assert page.locator(".hint-touch").is_visible() and not page.locator(".hint-mouse").is_visible()
    else:
        assert page.locator(".hint-mouse").is_visible() and not page.locator(".hint-touch").is_visible()
    _shot(page, f"{name}-room")
    page.click("#btn-add")
    page.wait_for_selector(".pick img")
    page.select_option("#picker-class", "vase")  # the picker filters at once, thumbnails included
    page.wait_for_function("() => [...document.querySelectorAll('.pick .meta')].every(m => m.textContent.startsWith('Vase'))")
    page.wait_for_function("() => [...document.querySelectorAll('.pick img')].every(i => i.complete && i.naturalWidth > 0)")
    _shot(page, f"{name}-picker")
    assert _small_controls(page) == []
    measured["smallest_control"] = _smallest_control(page)
    assert _horizontal_overflow(page)[0] <= 0, _horizontal_overflow(page)
    assert _axe_serious(page) == []
    pages["room"] = page.url

    pages["docs"] = demo_server + "/docs"
    for label, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("load")
        if label == "docs":
            _shot(page, f"{name}-docs")
        assert _horizontal_overflow(page)[0] <= 0, (label, _horizontal_overflow(page))
        assert _small_controls(page) == [], label
        assert _axe_serious(page) == [], label
    print(f"\n{name}: stage {measured['stage_share']:.0%} of the viewport height, smallest control "
          f"{measured['smallest_control'][0]:.0f}×{measured['smallest_control'][1]:.0f} px")
    assert errors == []


def _room_photo(path: Path, size=(1280, 800)) -> Path:
    """A plain blue room photo: any studio white left in a cut-out's openings stands out against it."""
    Image.new("RGB", size, ROOM_COLOUR).save(path)
    return path


def _openings(photo: np.ndarray, shrink: int) -> np.ndarray:
    """The product photo's openings: studio-white areas the product encloses (not connected to the photo's border),
    shrunk by `shrink` px so that resampling in the snapshot does not mix in the product's own edge."""
    white = (photo >= 250).all(axis=2)
    lab = components(white)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    enclosed = white & ~np.isin(lab, border)
    for _ in range(shrink):
        e = enclosed.copy()
        e[1:] &= enclosed[:-1]
        e[:-1] &= enclosed[1:]
        e[:, 1:] &= enclosed[:, :-1]
        e[:, :-1] &= enclosed[:, 1:]
        enclosed = e
    return enclosed


@pytest.mark.parametrize("query, min_openings, shrink, width", [
    ("KUNGSHOLMEN", 300, 0, 0.9),   # the wicker weave: 1-3 px holes, so drawn large and sampled unshrunk
    ("NORRÅKER", 200, 3, 0.45),     # the gaps between the chair's back slats
    ("VASEN", 2000, 3, 0.45),       # a clear glass vase
    ("IVRIG", 500, 3, 0.45),        # a wine glass
])
def test_openings_show_the_room_in_the_snapshot(demo_server, browser, tmp_path, query, min_openings, shrink, width):
    errors: list[str] = []
    page = _page(browser, DESKTOP, errors)
    product = _product(demo_server, page, query)
    page.goto(f"{demo_server}/room?product={product['id']}")
    _wait_items(page, 1)
    page.set_input_files("#room-file", str(_room_photo(tmp_path / "room.png")))
    page.wait_for_function("() => document.getElementById('room-photo').naturalWidth === 1280")
    item = page.locator(".item").first
    item.focus()
    # Large enough to sample: resize with the keyboard (+ is 5% a press).
    w = float(item.get_attribute("data-w"))
    for _ in range(max(0, math.ceil(math.log(width / w) / math.log(1.05)))):
        page.keyboard.press("+")
    page.keyboard.press("Escape")
    state = item.evaluate("el => ({x: +el.dataset.x, y: +el.dataset.y, w: +el.dataset.w})")
    _shot(page, f"openings-{query.lower()}")
    with page.expect_download() as info:
        page.click("#btn-snapshot")
    shot = np.asarray(Image.open(io.BytesIO(Path(info.value.path()).read_bytes())).convert("RGB")).astype(int)
    H, W, _ = shot.shape
    assert (W, H) == (1280, 800)

    # Where each opening pixel of the shop photo lands in the snapshot: photo -> cut-out (crop) -> stage.
    photo = np.asarray(Image.open(io.BytesIO(page.request.get(demo_server + product["image_url"]).body()))
                       .convert("RGB"))
    meta = page.request.get(f"{demo_server}/api/products/{product['id']}").json()["cutout"]
    cx0, cy0, cx1, cy1 = meta["crop"]  # the part of the shop photo the cut-out is
    cw, ch = meta["width"], meta["height"]
    assert (cx1 - cx0, cy1 - cy0) == (cw, ch)
    ys, xs = np.nonzero(_openings(photo, shrink))
    inside = (xs >= cx0) & (xs < cx0 + cw) & (ys >= cy0) & (ys < cy0 + ch * 0.85)  # above the contact shadow
    xs, ys = xs[inside], ys[inside]
    assert len(xs) >= min_openings, f"{query}: only {len(xs)} opening pixels to check"
    wpx = state["w"] * W
    hpx = wpx * ch / cw
    sx = np.round(state["x"] * W - wpx / 2 + (xs - cx0 + 0.5) / cw * wpx - 0.5).astype(int)
    sy = np.round(state["y"] * H - hpx / 2 + (ys - cy0 + 0.5) / ch * hpx - 0.5).astype(int)
    seen = shot[np.clip(sy, 0, H - 1), np.clip(sx, 0, W - 1)]
    close = np.abs(seen - np.array(ROOM_COLOUR)).max(axis=1) <= 40
    share = close.mean()
    print(f"\n{query}: {share:.1%} of {len(xs)} opening pixels show the room")
    assert share >= (0.8 if shrink == 0 else 0.9), f"{query}: only {share:.1%} of the openings show the room"
    assert errors == []


def _box_photo(w_cm: float, d_cm: float, h_cm: float, yaw_deg: float, px_per_cm: float = 2.0) -> Image.Image:
    """A studio photo of a dark box (a stand-in product) of w × d × h cm turned by yaw from a front view, seen from
    15° above (orthographic): three shaded faces on white."""
    yaw, el = math.radians(yaw_deg), math.radians(15)
    corners = [(x, y, z) for x in (0, w_cm) for y in (0, d_cm) for z in (0, h_cm)]

    def project(p):
        x, y, z = p
        u = x * math.cos(yaw) + y * math.sin(yaw)
        depth = -x * math.sin(yaw) + y * math.cos(yaw)
        v = -z * math.cos(el) - depth * math.sin(el)  # image v points down; farther points appear higher
        return u, v
    pts = [project(c) for c in corners]
    umin, vmin = min(p[0] for p in pts), min(p[1] for p in pts)
    umax, vmax = max(p[0] for p in pts), max(p[1] for p in pts)
    margin = 40
    size = (int((umax - umin) * px_per_cm) + 2 * margin, int((vmax - vmin) * px_per_cm) + 2 * margin)
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)

    def xy(p):
        u, v = project(p)
        return ((u - umin) * px_per_cm + margin, (v - vmin) * px_per_cm + margin)
    front = [(0, 0, 0), (w_cm, 0, 0), (w_cm, 0, h_cm), (0, 0, h_cm)]
    side = [(w_cm, 0, 0), (w_cm, d_cm, 0), (w_cm, d_cm, h_cm), (w_cm, 0, h_cm)]
    top = [(0, 0, h_cm), (w_cm, 0, h_cm), (w_cm, d_cm, h_cm), (0, d_cm, h_cm)]
    for face, shade in ((top, 70), (side, 35), (front, 20)):
        draw.polygon([xy(p) for p in face], fill=(shade, shade, shade))
    return img


@pytest.fixture
def box_server(tmp_path, model_dir, rooms_dir):
    """The tiny test model (dark pixels are a product) and two boxes with stated sizes: a front view and a
    three-quarter view."""
    root = tmp_path / "boxes"
    (root / "images").mkdir(parents=True)
    lines = []
    for sku, yaw, (w, d, h) in (("front", 0, (120, 60, 80)), ("three-quarter", 35, (160, 80, 73))):
        img = _box_photo(w, d, h, yaw)
        img.save(root / "images" / f"{sku}.png")
        data = (root / "images" / f"{sku}.png").read_bytes()
        lines.append(json.dumps({
            "id": sku, "path": f"images/{sku}.png", "sha256": hashlib.sha256(data).hexdigest(), "width": img.width,
            "height": img.height, "category": "Sideboard", "class": "chair", "title": f"BOX {sku}", "sku": sku,
            "dimensions": {"text": f"{w}x{d}x{h} cm", "width_cm": w, "depth_cm": d, "height_cm": h,
                           "diameter_cm": None}}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "boxes.sqlite"), "MODEL_DIR": str(model_dir),
                      "CACHE_DIR": str(tmp_path / "cache"), "ROOMS_DIR": str(rooms_dir), "PAGE_SIZE": 10,
                      "MODEL_RETRY_SECONDS": 0.0})
    with app.app_context():
        init_db()
        import_file(get_db(), root / "manifest.jsonl")
    url, stop = _serve(app)
    yield url
    stop()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_stated_size_is_drawn_true_to_scale_front_and_three_quarter(box_server, browser, viewport):
    errors: list[str] = []
    page = _page(browser, viewport, errors, phone=viewport is PHONE)
    products = page.request.get(box_server + "/api/products").json()["products"]
    ids = "&".join(f"product={p['id']}" for p in products)
    page.goto(f"{box_server}/room?{ids}")
    _wait_items(page, 2)
    page.wait_for_function("() => document.getElementById('room-photo').naturalWidth > 0")
    if viewport is DESKTOP:  # room for both side by side: the second must not land on the first
        boxes = [el.bounding_box() for el in page.locator(".item").all()]
        a, b = boxes
        overlap = max(0.0, min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"]))
        assert overlap < 0.1 * min(a["width"], b["width"]), boxes
        stage_box = page.locator("#stage").bounding_box()
        for bx in boxes:  # standing on the floor: the lower part of the picture
            assert bx["y"] + bx["height"] > stage_box["y"] + 0.65 * stage_box["height"]
    # Known calibration: a 100 px line is 50 cm (2 px a cm).
    stage = page.locator("#stage").bounding_box()
    page.click("#btn-calibrate")
    x0, y0 = stage["x"] + 40, stage["y"] + 30
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 100, y0, steps=6)
    page.mouse.up()
    page.fill("#calib-cm", "50")
    page.click("#calib-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('Scale set')")
    _shot(page, f"true-size-{'phone' if viewport is PHONE else 'desktop'}")
    truth = {  # the picture's width in cm: a box turned by yaw spans w·cos(yaw) + d·sin(yaw)
        "BOX front": 120.0,
        "BOX three-quarter": 160 * math.cos(math.radians(35)) + 80 * math.sin(math.radians(35)),
    }
    for el in page.locator(".item").all():
        name = next(p["name"] for p in products if str(p["id"]) == el.get_attribute("data-product-id"))
        drawn_cm = float(el.get_attribute("data-product-width-px")) / 2.0
        print(f"\n{name}: drawn {drawn_cm:.1f} cm wide, true {truth[name]:.1f} cm")
        assert drawn_cm == pytest.approx(truth[name], rel=0.10)
        assert el.get_attribute("data-size") == "real"
    assert errors == []
