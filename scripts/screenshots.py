"""Take the shopper-facing screenshots (gallery, product, room view) at desktop and phone sizes from a running app.

Usage: `make run` in one shell, then `.venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8000]`.
Writes build/screenshots/<page>-<w>x<h>.png; `--readme` also refreshes docs/images/room-view.png and docs/images/add-your-product.png (a demo photo uploaded
through "Add your own product").
"""
from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((1280, 800), (390, 844))
CHROMIUM_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox"]


def own_product_shot(page, args: argparse.Namespace) -> None:
    """The 'Add your own product' flow for the README: upload a photo with its width, wait until it is placed."""
    page.goto(args.url + "/room?add=own", wait_until="networkidle")
    page.set_input_files("#own-file", str(args.upload))
    page.fill("#own-width", args.upload_width)
    page.click("#own-upload")
    page.wait_for_selector(".item", timeout=20_000)
    page.wait_for_timeout(800)
    page.evaluate("() => window.scrollTo(0, 0)")
    target = ROOT / "docs" / "images" / "add-your-product.png"
    page.screenshot(path=str(target), full_page=True)
    print(target)


def main(argv: list[str] | None = None) -> int:
    """Visit the key pages at both sizes and save a screenshot of each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--product", default="8", help="product id shown on the product page and in the room")
    parser.add_argument("--upload", type=Path, default=ROOT / "data" / "demo" / "images" / "002.729.20.jpg",
                        help="photo uploaded through 'Add your own product' for the README")
    parser.add_argument("--upload-width", default="211", help="its width in cm, as the shopper types it")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "screenshots")
    parser.add_argument("--readme", action="store_true", help="also write docs/images/room-view.png")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    pages = {"gallery": "/", "product": f"/products/{args.product}",
             "room": f"/room?product={args.product}&room=sample", "docs": "/docs"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for width, height in SIZES:
            context = browser.new_context(viewport={"width": width, "height": height},
                                          has_touch=width < 600, is_mobile=width < 600)
            page = context.new_page()
            for name, path in pages.items():
                page.goto(args.url + path, wait_until="networkidle")
                page.wait_for_timeout(800)  # the room view places its products after the cut-outs load
                shot = args.out / f"{name}-{width}x{height}.png"
                page.screenshot(path=str(shot))
                print(shot)
                if args.readme and name == "room" and width == 1280:
                    target = ROOT / "docs" / "images" / "room-view.png"
                    page.screenshot(path=str(target))
                    print(target)
            if args.readme and width == 1280:
                own_product_shot(page, args)
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
