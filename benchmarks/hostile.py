"""Generated hostile uploads and raw HTTP requests, shared by the fuzz test (tests/webapp/test_fuzz.py) and
benchmarks/load_bench.py. Deterministic for a seed; everything is built in memory from tiny images.

    hostile_files(seed, count) -> [(name, bytes)]   broken/odd image files for POST /predict
    hostile_requests(seed, count) -> [(name, bytes)] raw HTTP/1.1 requests that break the protocol or the routes
"""
from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image

_ORIENTATION = 0x0112


def _tiff(entries: list[tuple[int, int, int, bytes]], big_endian: bool = False, next_ifd: int = 0) -> bytes:
    """A TIFF/EXIF block with one IFD of (tag, type, count, value-or-data) entries; data over 4 bytes goes after."""
    e = ">" if big_endian else "<"
    head = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8)
    ifd_len = 2 + 12 * len(entries) + 4
    extra = b""
    body = struct.pack(e + "H", len(entries))
    for tag, typ, count, value in entries:
        if len(value) <= 4:
            body += struct.pack(e + "HHI", tag, typ, count) + value.ljust(4, b"\x00")
        else:
            body += struct.pack(e + "HHII", tag, typ, count, 8 + ifd_len + len(extra)) + value
            extra += value
    body += struct.pack(e + "I", next_ifd)
    return head + body + extra


def exif_blobs() -> list[tuple[str, bytes]]:
    """EXIF blocks that have broken readers: ±inf/NaN float orientations, odd types and counts, loops, truncation."""
    blobs = []
    for value in (float("inf"), float("-inf"), float("nan"), 3e38, -1.0, 6.0):
        blobs.append((f"float-{value}", _tiff([(_ORIENTATION, 11, 1, struct.pack("<f", value))])))
        blobs.append((f"double-{value}", _tiff([(_ORIENTATION, 12, 1, struct.pack("<d", value))])))
        blobs.append((f"double-be-{value}", _tiff([(_ORIENTATION, 12, 1, struct.pack(">d", value))], True)))
    for value in (0, 9, 65535):
        blobs.append((f"short-{value}", _tiff([(_ORIENTATION, 3, 1, struct.pack("<H", value))])))
    blobs += [
        ("long-huge", _tiff([(_ORIENTATION, 4, 1, struct.pack("<I", 2**32 - 1))])),
        ("srational-zero", _tiff([(_ORIENTATION, 10, 1, struct.pack("<ii", 1, 0))])),
        ("rational-zero", _tiff([(_ORIENTATION, 5, 1, struct.pack("<II", 0, 0))])),
        ("ascii", _tiff([(_ORIENTATION, 2, 8, b"sixsix\x00\x00")])),
        ("count-huge", _tiff([(_ORIENTATION, 3, 2**30, struct.pack("<H", 6))])),
        ("type-bad", _tiff([(_ORIENTATION, 99, 1, struct.pack("<H", 6))])),
        ("ifd-loop", _tiff([(_ORIENTATION, 3, 1, struct.pack("<H", 6))], next_ifd=8)),
        ("ifd-out-of-range", _tiff([(_ORIENTATION, 3, 1, struct.pack("<H", 6))], next_ifd=2**31)),
        ("bigtiff", b"II+\x00\x08\x00\x00\x00" + bytes(24)),
        ("bigtiff-be", b"MM\x00+\x00\x08\x00\x00" + bytes(24)),
        ("magic-only", b"II*\x00"),
        ("empty", b""),
    ]
    good = _tiff([(_ORIENTATION, 3, 1, struct.pack("<H", 6)), (0x010F, 2, 12, b"RoomFitTest\x00")])
    blobs += [(f"truncated-{n}", good[:n]) for n in (5, 9, 12, 20, len(good) - 3)]
    return blobs


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _photo(size: tuple[int, int] = (64, 48)) -> Image.Image:
    img = Image.new("RGB", size, (250, 250, 250))
    img.paste((20, 20, 30), (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4))
    return img


def _png_with_exif_chunk(img: Image.Image, exif: bytes, after_idat: bool = False) -> bytes:
    """A PNG with a raw eXIf chunk (before or after IDAT), written by hand so Pillow does not check it."""
    data = _encode(img, "PNG")
    iend = data.rindex(b"IEND") - 4
    at = iend if after_idat else 33  # 33: right after the signature and IHDR
    return data[:at] + _png_chunk(b"eXIf", exif) + data[at:]


def _png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG whose IHDR claims a size, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose SOF0 frame header claims another size."""
    sof = data.index(b"\xff\xc0")
    return data[:sof + 5] + struct.pack(">HH", height, width) + data[sof + 9:]


def structured_files() -> list[tuple[str, bytes]]:
    """The hand-made cases: every EXIF blob in JPEG, PNG (both chunk places) and WebP, and the cases of issue 16."""
    img = _photo()
    out: list[tuple[str, bytes]] = []
    for name, blob in exif_blobs():
        out.append((f"jpeg-exif-{name}", _encode(img, "JPEG", exif=b"Exif\x00\x00" + blob)))
        out.append((f"png-exif-{name}", _png_with_exif_chunk(img, blob)))
        out.append((f"png-exif-late-{name}", _png_with_exif_chunk(img, blob, after_idat=True)))
        out.append((f"webp-exif-{name}", _encode(img, "WEBP", exif=blob)))
    png = _encode(img, "PNG")
    i = png.index(b"IDAT")
    n = struct.unpack(">I", png[i - 4:i])[0]
    out += [
        ("png-idat-not-zlib", png[:i - 4] + _png_chunk(b"IDAT", b"\xff" * n) + png[i + 4 + n + 4:]),
        ("png-idat-short", png[:i - 4] + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + png[i + 4 + n + 4:]),
        ("png-bad-crc", png[:i + 4 + n] + b"\x00\x00\x00\x00" + png[i + 8 + n:]),
        ("png-no-iend", png[:png.rindex(b"IEND") - 4]),
        ("png-huge-dims", _png_header(100_000, 100_000)),
        ("png-36mp-header", _png_header(6000, 6000)),
        ("png-zero-dims", _png_header(0, 0)),
        ("png-one-by-billion", _png_header(1, 1_000_000_000)),
        ("png-bad-depth", _png_header(10, 10, depth=3)),
        ("mpo-two-frames", _encode(img, "MPO", save_all=True, append_images=[img.transpose(Image.ROTATE_180)])),
        ("jpeg-huge-dims", _jpeg_with_size(_encode(img, "JPEG"), 65535, 65535)),
        ("jpeg-zero-dims", _jpeg_with_size(_encode(img, "JPEG"), 0, 48)),
        ("png-16bit", _encode(Image.new("I;16", (40, 30), 40000), "PNG")),
        ("png-1bit", _encode(Image.new("1", (40, 30), 1), "PNG")),
        ("png-palette-transparent", _encode(img.convert("P"), "PNG", transparency=0)),
        ("png-la", _encode(img.convert("LA"), "PNG")),
        ("webp-rgba", _encode(img.convert("RGBA"), "WEBP")),
        ("jpeg-cmyk", _encode(img.convert("CMYK"), "JPEG")),
        ("jpeg-bad-icc", _encode(img, "JPEG", icc_profile=b"\x00" * 200)),
        ("gif", _encode(img, "GIF")),
        ("bmp", _encode(img, "BMP")),
        ("tiff", _encode(img, "TIFF")),
        ("empty", b""),
        ("text", b"hello, this is not an image\n" * 10),
        ("html", b"<html><script>alert(1)</script></html>"),
        ("png-signature-only", b"\x89PNG\r\n\x1a\n"),
        ("jpeg-soi-only", b"\xff\xd8"),
        ("riff-webp-empty", b"RIFF\x04\x00\x00\x00WEBP"),
    ]
    return out


def hostile_files(seed: int = 16, count: int = 300) -> list[tuple[str, bytes]]:
    """The structured cases, then random damage (truncation, bit flips, random bytes) to valid files up to count."""
    rng = random.Random(seed)
    out = structured_files()
    bases = [(fmt, _encode(_photo((rng.randint(8, 90), rng.randint(8, 90))), fmt)) for fmt in ("JPEG", "PNG", "WEBP")
             for _ in range(3)]
    bases.append(("MPO", _encode(_photo(), "MPO", save_all=True, append_images=[_photo()])))
    while len(out) < count:
        fmt, data = rng.choice(bases)
        kind = rng.choice(("truncate", "flip", "flip", "splice", "random"))
        if kind == "truncate":
            mutated = data[:rng.randint(1, len(data) - 1)]
        elif kind == "flip":
            buf = bytearray(data)
            for _ in range(rng.randint(1, 12)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            mutated = bytes(buf)
        elif kind == "splice":
            at = rng.randrange(len(data))
            mutated = data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]
        else:
            mutated = data[:rng.randint(0, 16)] + rng.randbytes(rng.randint(1, 2048))
        out.append((f"{fmt.lower()}-{kind}-{len(out)}", mutated))
    return out[:max(count, len(structured_files()))]


def multipart(data: bytes, filename: str = "upload.bin", boundary: str = "roomfitboundary") -> tuple[bytes, str]:
    """A multipart/form-data body with one 'image' field."""
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def hostile_requests(seed: int = 16, count: int = 200) -> list[tuple[str, bytes]]:
    """Raw HTTP/1.1 requests that break the protocol, the headers or the routes (each on its own connection)."""
    rng = random.Random(seed)
    mp, ctype = multipart(_encode(_photo(), "JPEG"))
    head = f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n".encode()
    fixed = [
        ("chunk-size-zz", head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
        ("chunk-size-negative", head + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n"),
        ("chunk-no-terminator", head + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"),
        ("chunk-bad-extension", head + b"Transfer-Encoding: chunked\r\n\r\n3;\x01=\r\nabc\r\n0\r\n\r\n"),
        ("chunked-valid", head + b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(mp):x}\r\n".encode() + mp
         + b"\r\n0\r\n\r\n"),
        ("te-gzip", head + b"Transfer-Encoding: gzip\r\n\r\n"),
        ("cl-and-te", head + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("cl-conflict", head + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"),
        ("cl-negative", head + b"Content-Length: -1\r\n\r\n"),
        ("cl-huge", head + b"Content-Length: 99999999999\r\n\r\n"),
        ("host-double-dot", b"GET / HTTP/1.1\r\nHost: a..b\r\n\r\n"),
        ("host-long-label", b"GET / HTTP/1.1\r\nHost: " + b"a" * 64 + b".com\r\n\r\n"),
        ("host-long-label-api", b"GET /api/products HTTP/1.1\r\nHost: " + b"a" * 64 + b".com\r\n\r\n"),
        ("host-long-label-room", b"GET /room HTTP/1.1\r\nHost: a..b\r\n\r\n"),
        ("host-missing", b"GET /healthz HTTP/1.1\r\n\r\n"),
        ("request-line-garbage", b"GARBAGE\r\n\r\n"),
        ("request-line-long", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("method-bad", b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("version-bad", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("header-no-colon", b"GET / HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n"),
        ("header-huge", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"),
        ("headers-many", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n"),
        ("header-obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n"),
        ("expect-bad", b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n"),
        ("q-nul", b"GET /api/products?q=%00 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("q-bad-utf8", b"GET /api/products?q=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("page-huge", b"GET /api/products?page=99999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("product-id-huge", b"GET /api/products/99999999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("double-slash", b"GET //api//products HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
        ("absolute-uri", b"GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("path-traversal", b"GET /rooms/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("predict-get", b"GET /predict HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("predict-no-body", head + b"Content-Length: 0\r\n\r\n"),
        ("predict-json", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                         b"\r\n{}"),
        ("predict-bad-boundary", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\n"
                                 b"Content-Length: 10\r\n\r\n0123456789"),
        ("predict-format-bad", mp_request("/predict?format=gif", mp, ctype)),
        ("predict-crop-bad", mp_request("/predict?crop=maybe", mp, ctype)),
    ]
    out = list(fixed)
    files = hostile_files(seed, 60)
    paths = ["/predict", "/predict?format=png", "/predict?format=mask"]
    while len(out) < count:
        kind = rng.choice(("file", "file", "bytes", "path"))
        if kind == "file":
            name, data = rng.choice(files)
            body, ct = multipart(data)
            out.append((f"upload-{name}", mp_request(rng.choice(paths), body, ct)))
        elif kind == "bytes":
            out.append((f"garbage-{len(out)}", rng.randbytes(rng.randint(1, 300)) + b"\r\n\r\n"))
        else:
            junk = "".join(rng.choice("abc%/?&=.~:@!$'()*+,;\x7f") for _ in range(rng.randint(1, 60)))
            out.append((f"path-{len(out)}", f"GET /{junk} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1")))
    return out


def mp_request(path: str, body: bytes, ctype: str) -> bytes:
    """A raw POST of a multipart body."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body
